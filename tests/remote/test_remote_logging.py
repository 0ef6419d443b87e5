"""The SDK logging to a real mltrail server: exact data, outages, late sync, auth failures."""

from __future__ import annotations

import logging
import math
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import mltrail
from mltrail.entities import RunStatus
from mltrail.errors import PermissionDeniedError
from mltrail.store.registry import open_store, resolve_location
from mltrail.testing.server import ThreadedServer

MLTRAIL = str(Path(sys.executable).with_name("mltrail"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def remote_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MLTRAIL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MLTRAIL_HEARTBEAT_S", "0.5")
    return tmp_path


@pytest.fixture
def server(
    store_uri: str, remote_env: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ThreadedServer]:
    with ThreadedServer(store_uri, str(remote_env / "artifacts")) as srv:
        monkeypatch.setenv("MLTRAIL_TOKEN", srv.token("write"))
        yield srv


def _log_run(url: str, steps: int = 2000) -> str:
    run = mltrail.init(project="remote", store=url, config={"lr": 0.1, "nested": {"d": 2}})
    run.log_params({"bad": math.nan, "opt": "adam"})
    run.set_tags({"note": "<script>alert(1)</script>", "é": "ok"})
    for step in range(steps):
        run.log({"loss": 1.0 / (step + 1), "odd": math.inf if step == 3 else -0.0}, step=step)
    run.finish()
    return run.run_id


def test_sdk_logs_everything_through_the_server(server: ThreadedServer, store_uri: str):
    run_id = _log_run(server.url)
    direct = open_store(store_uri, shared=False)  # what the server wrote, read straight
    try:
        rec = direct.get_run(run_id)
        assert rec.status is RunStatus.FINISHED and rec.project == "remote"
        assert rec.params["opt"] == "adam" and math.isnan(rec.params["bad"])  # type: ignore[arg-type]
        assert rec.config == {"lr": 0.1, "nested": {"d": 2}}
        assert rec.tags["note"] == "<script>alert(1)</script>" and rec.tags["é"] == "ok"
        loss = direct.metric_history(run_id, "loss")
        assert loss.steps.tolist() == list(range(2000))
        assert np.array_equal(loss.values, 1.0 / (np.arange(2000) + 1.0))
        odd = direct.metric_history(run_id, "odd")
        assert math.isinf(odd.values[3]) and math.copysign(1, odd.values[0]) == -1
    finally:
        direct.close()
    # and the same through the HTTP client
    via = mltrail.Api(server.url)
    assert via.run(run_id[:8]).status is RunStatus.FINISHED
    assert len(via.history(run_id, "loss")) == 2000
    assert not any(resolve_location(server.url).spool_dir.glob("*.spool"))  # spool removed


def test_server_down_then_back_loses_nothing(
    store_uri: str, remote_env: Path, monkeypatch: pytest.MonkeyPatch, caplog
):
    """The server is down when training starts; logging goes on; upload resumes by itself."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    # a token made in the store before the server exists
    store = open_store(store_uri, shared=False)
    _, token = store.tokens().create("write")
    store.close()
    monkeypatch.setenv("MLTRAIL_TOKEN", token)
    caplog.set_level(logging.WARNING, logger="mltrail")
    run = mltrail.init(project="outage", store=url, capture=False)
    for step in range(5000):
        run.log({"x": float(step)}, step=step)
    assert not run.flush(timeout=0.3)  # nothing can arrive yet
    with ThreadedServer(store_uri, str(remote_env / "a"), port=port):
        assert run.flush(timeout=20)
        for step in range(5000, 6000):
            run.log({"x": float(step)}, step=step)
        run.finish()
        got = mltrail.Api(url).history(run.run_id, "x")
        assert got.steps.tolist() == list(range(6000))
        assert mltrail.Api(url).run(run.run_id).status is RunStatus.FINISHED
    warnings = [r for r in caplog.records if "unavailable" in r.getMessage()]
    assert len(warnings) == 1  # one warning for the outage, not one per call or retry


def test_process_ends_before_the_server_returns_then_sync(
    store_uri: str, remote_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A training process that exits while the server is down leaves its spool;
    ``mltrail sync`` uploads it later and the run ends finished, not crashed."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    store = open_store(store_uri, shared=False)
    _, token = store.tokens().create("write")
    store.close()
    monkeypatch.setenv("MLTRAIL_TOKEN", token)
    env = {
        "MLTRAIL_TOKEN": token,
        "MLTRAIL_CACHE_DIR": str(remote_env / "cache"),
        "MLTRAIL_ALLOW_DIRTY": "1",
        "PATH": "/usr/bin:/bin",
    }
    script = (
        "import mltrail\n"
        f"run = mltrail.init(project='late', store={url!r}, capture=False)\n"
        "for s in range(300): run.log({'m': s * 0.5}, step=s)\n"
        "print(run.run_id)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    run_id = out.stdout.strip().splitlines()[-1]
    assert "sync" in out.stderr  # the user is told how the data gets there
    with ThreadedServer(store_uri, str(remote_env / "a"), port=port):
        res = subprocess.run(
            [MLTRAIL, "sync", "--store", url, "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert res.returncode == 0, res.stderr
        api = mltrail.Api(url)
        rec = api.run(run_id)
        assert rec.status is RunStatus.FINISHED
        assert api.history(run_id, "m").values.tolist() == [s * 0.5 for s in range(300)]
    assert not any(resolve_location(url).spool_dir.glob("*.spool"))


def test_bad_token_is_reported_and_data_kept(server: ThreadedServer, monkeypatch, caplog):
    monkeypatch.setenv("MLTRAIL_TOKEN", "mlt_0000000000000000_nope")
    caplog.set_level(logging.ERROR, logger="mltrail")
    run = mltrail.init(project="p", store=server.url, capture=False)
    run.log({"a": 1.0})
    with pytest.raises(mltrail.MltrailError, match="token|401|invalid"):
        run.flush(timeout=10)
    with pytest.raises(mltrail.MltrailError, match="token"):  # finish says it again
        run.finish(timeout=1)
    assert any(resolve_location(server.url).spool_dir.glob("*.spool"))  # kept for sync


def test_read_token_cannot_log(server: ThreadedServer, monkeypatch):
    monkeypatch.setenv("MLTRAIL_TOKEN", server.token("read"))
    run = mltrail.init(project="p", store=server.url, capture=False)
    run.log({"a": 1.0})
    with pytest.raises(PermissionDeniedError):
        run.flush(timeout=10)
    with pytest.raises(PermissionDeniedError):
        run.finish(timeout=1)
