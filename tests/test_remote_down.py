"""A remote store that is down: training goes on at full speed, one warning, a bounded spool."""

from __future__ import annotations

import logging
import socket
import time

import mltrail
from mltrail.store.registry import resolve_location


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_logging_never_waits_on_a_dead_server(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("MLTRAIL_CACHE_DIR", str(tmp_path / "cache"))
    url = f"http://127.0.0.1:{_closed_port()}"
    caplog.set_level(logging.WARNING, logger="mltrail")
    run = mltrail.init(project="p", store=url, capture=False)
    lat = []
    for step in range(20_000):
        t = time.perf_counter_ns()
        run.log({"a": 1.0, "b": 2.0}, step=step)
        lat.append(time.perf_counter_ns() - t)
    time.sleep(0.5)  # let the writer try (and fail) a few times
    lat.sort()
    assert lat[int(len(lat) * 0.99)] < 5_000_000  # p99 < 5 ms with the server down
    run.finish(timeout=1.0)
    down = [r for r in caplog.records if "unavailable" in r.getMessage()]
    assert len(down) == 1, [r.getMessage() for r in caplog.records]
    spool = resolve_location(url).spool_dir / run.spool_path.name
    assert spool.exists() and spool.stat().st_size > 20_000 * 8  # everything kept for sync


def test_backlog_cap_drops_and_counts_metric_points(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("MLTRAIL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MLTRAIL_SPOOL_MAX_MB", "0.05")  # 50 KiB
    url = f"http://127.0.0.1:{_closed_port()}"
    caplog.set_level(logging.WARNING, logger="mltrail")
    run = mltrail.init(project="p", store=url, capture=False)
    for step in range(20_000):
        run.log({"a": 1.0}, step=step)
    run.set_tags({"kept": "yes"})
    assert run.dropped_points > 0
    size = run.spool_path.stat().st_size
    assert size < 0.05 * (1 << 20) + 4096
    run.finish(timeout=0.5)
    errors = [r for r in caplog.records if "MLTRAIL_SPOOL_MAX_MB" in r.getMessage()]
    assert len(errors) == 1
