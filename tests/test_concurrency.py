"""B1: many writers on one SQLite store, threads sharing a run, and a store that goes away.

Writers never see "database is locked": SQLite runs in WAL with ``BEGIN IMMEDIATE`` and a
30 s busy timeout, and the training loop only ever appends to its spool, so a slow or
locked store delays the data but never blocks ``log()`` or loses a point.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

import mltrail
from mltrail.entities import RunStatus
from mltrail.store.registry import forget_open_stores
from mltrail.testing import user_tags

if TYPE_CHECKING:
    from collections.abc import Iterator

CHILD = Path(__file__).parent / "helpers" / "conc_child.py"
HEARTBEAT_S = 0.5
TIMEOUT_S = 240.0  # 16 cold interpreters on 2 cores


def _load_child() -> object:
    spec = importlib.util.spec_from_file_location("_mltrail_conc_child", CHILD)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


child_mod = _load_child()


@pytest.fixture(autouse=True)
def _close_stores() -> Iterator[None]:
    yield
    forget_open_stores()


def _integrity_ok(store: Path) -> None:
    con = sqlite3.connect(store / "mltrail.db")
    try:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        con.close()


def _spool_files(store: Path) -> list[Path]:
    folder = store / "spool"
    return sorted(folder.iterdir()) if folder.is_dir() else []


def _child_env() -> dict[str, str]:
    drop = {"PYTHONPATH", "MLTRAIL_STORE", "MLTRAIL_FLUSH_INTERVAL_S"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["MLTRAIL_HEARTBEAT_S"] = str(HEARTBEAT_S)
    return env


def _wait_for_lines(paths: list[Path], prefix: str, procs: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        missing = [
            p
            for p in paths
            if not any(line.startswith(prefix) for line in p.read_text().split("\n"))
        ]
        if not missing:
            return
        for proc, path in zip(procs, paths, strict=True):
            if proc.poll() is not None and path in missing:
                err = path.with_suffix(".stderr").read_text()
                pytest.fail(f"{path.stem} exited ({proc.returncode}) before {prefix!r}:\n{err}")
        assert time.monotonic() < deadline, f"{len(missing)} workers never printed {prefix!r}"
        time.sleep(0.05)


# -- B1: 16 processes ----------------------------------------------------------------------


@pytest.mark.parametrize("flush_every", [20, pytest.param(1, marks=pytest.mark.slow)])
def test_sixteen_processes_write_one_sqlite_store(tmp_path: Path, flush_every: int) -> None:
    """16 processes log at once to one new SQLite store: every point lands, no error surfaces."""
    # flush_every=1 makes each step its own transaction: 16 x 200 contended commits.
    n_workers = 16
    store = tmp_path / "store"
    go = tmp_path / "go"
    procs: list[subprocess.Popen[bytes]] = []
    outs = [tmp_path / f"worker{w}.stdout" for w in range(n_workers)]
    try:
        for w, out_path in enumerate(outs):
            with out_path.open("wb") as out, out_path.with_suffix(".stderr").open("wb") as err:
                procs.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-u",
                            str(CHILD),
                            str(store),
                            str(w),
                            str(go),
                            str(flush_every),
                        ],
                        stdout=out,
                        stderr=err,
                        env=_child_env(),
                        cwd=tmp_path,
                    )
                )
        _wait_for_lines(outs, "READY ", procs)
        go.touch()  # all 16 log from here on, at the same time
        codes = [p.wait(timeout=TIMEOUT_S) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=TIMEOUT_S)
    errors = {w: outs[w].with_suffix(".stderr").read_text() for w in range(n_workers)}
    assert codes == [0] * n_workers, errors
    # no "database is locked", no warning
    assert not {w: e for w, e in errors.items() if e}, errors
    run_ids = {}
    for w, out_path in enumerate(outs):
        lines = out_path.read_text().split("\n")
        assert "DONE" in lines
        run_ids[w] = next(line.split()[1] for line in lines if line.startswith("READY "))

    api = mltrail.Api(store)
    assert api.recovered == []
    steps = np.arange(child_mod.STEPS)  # type: ignore[attr-defined]
    total = 0
    for w, run_id in run_ids.items():
        record = api.run(run_id)
        assert record.status is RunStatus.FINISHED
        assert record.params["worker"] == w
        assert record.params["net.depth"] == w % 4
        assert user_tags(record.tags) == {"worker": str(w), "done": "yes"}
        user_keys = sorted(k for k in record.metrics if not k.startswith("system/"))
        assert user_keys == sorted(child_mod.KEYS)  # type: ignore[attr-defined]
        for j, key in enumerate(child_mod.KEYS):  # type: ignore[attr-defined]
            series = api.history(run_id, key)
            np.testing.assert_array_equal(series.steps, steps)
            np.testing.assert_array_equal(series.values, w * 1_000_000.0 + steps * 10.0 + j)
            total += len(series)
    assert total == n_workers * 200 * 10
    _integrity_ok(store)
    assert _spool_files(store) == []


# -- threads -------------------------------------------------------------------------------


def test_threads_logging_to_one_run_keep_every_point(tmp_path: Path) -> None:
    """8 threads log to one run at once (explicit steps): no point is lost or duplicated."""
    n_threads, n_steps = 8, 400
    store = tmp_path / "store"
    barrier = threading.Barrier(n_threads)
    failures: list[BaseException] = []
    with mltrail.init(project="threads", store=store, heartbeat_s=HEARTBEAT_S) as run:

        def work(t: int) -> None:
            try:
                barrier.wait()
                run.log_params({f"thread{t}": t})
                for i in range(n_steps):
                    run.log({f"t{t}/x": float(i), f"t{t}/y": -float(i), "shared": float(t)}, step=i)
                    if i % 100 == 99:
                        assert run.flush(timeout=120)
                        run.set_tags({f"t{t}": str(i)})
            except BaseException as exc:  # pragma: no cover - reported below
                failures.append(exc)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    assert failures == []
    api = mltrail.Api(store)
    record = api.run(run.run_id)
    assert record.status is RunStatus.FINISHED
    steps = np.arange(n_steps)
    for t in range(n_threads):
        assert record.params[f"thread{t}"] == t
        assert record.tags[f"t{t}"] == str(n_steps - 1)
        np.testing.assert_array_equal(api.history(run.run_id, f"t{t}/x").values, steps)
        np.testing.assert_array_equal(api.history(run.run_id, f"t{t}/y").values, -steps)
    shared = api.history(run.run_id, "shared")
    np.testing.assert_array_equal(shared.steps, np.repeat(steps, n_threads))
    for i in range(0, n_steps, 37):  # each step holds one point from every thread
        at = shared.values[shared.steps == i]
        assert sorted(at) == list(map(float, range(n_threads)))


def test_threads_sharing_automatic_steps_get_unique_steps(tmp_path: Path) -> None:
    """Threads logging without a step each get distinct steps: 0..N-1, every point once."""
    n_threads, n_steps = 6, 500
    store = tmp_path / "store"
    barrier = threading.Barrier(n_threads)
    with mltrail.init(project="threads", store=store, heartbeat_s=HEARTBEAT_S) as run:

        def work(t: int) -> None:
            barrier.wait()
            for i in range(n_steps):
                run.log({"who": t * 10_000.0 + i})

        threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    series = mltrail.Api(store).history(run.run_id, "who")
    np.testing.assert_array_equal(series.steps, np.arange(n_threads * n_steps))
    for t in range(n_threads):  # each thread's points in its own order
        mine = series.values[(series.values >= t * 10_000) & (series.values < (t + 1) * 10_000)]
        np.testing.assert_array_equal(mine, t * 10_000.0 + np.arange(n_steps))


def test_two_threads_with_their_own_runs(tmp_path: Path) -> None:
    """Two threads, each with its own run in one store, finish with complete series."""
    store = tmp_path / "store"
    run_ids: dict[int, str] = {}
    failures: list[BaseException] = []
    barrier = threading.Barrier(2)

    def work(t: int) -> None:
        try:
            with mltrail.init(
                project="pair",
                name=f"thread-{t}",
                config={"t": t},
                store=store,
                heartbeat_s=HEARTBEAT_S,
            ) as run:
                run_ids[t] = run.run_id
                barrier.wait()
                for i in range(1000):
                    run.log({"a": t + i, "b": float(i)})
                    if i % 250 == 249:
                        assert run.flush(timeout=120)
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert failures == []
    api = mltrail.Api(store)
    for t, run_id in run_ids.items():
        record = api.run(run_id)
        assert record.status is RunStatus.FINISHED
        assert record.params == {"t": t}
        np.testing.assert_array_equal(api.history(run_id, "a").values, t + np.arange(1000.0))
        np.testing.assert_array_equal(api.history(run_id, "b").steps, np.arange(1000))
    assert _spool_files(store) == []


# -- store unavailable ---------------------------------------------------------------------


def _log_for(run: mltrail.Run, seconds: float, first_step: int) -> tuple[int, list[float]]:
    """Log 20 keys per step, about a step per ms, for ``seconds``; returns the next step and
    the latency of each ``log()`` call."""
    latencies = []
    step = first_step
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t0 = time.perf_counter()
        run.log({f"m{i}": step + i / 100 for i in range(20)}, step=step)
        latencies.append(time.perf_counter() - t0)
        step += 1
        time.sleep(0.001)
    return step, latencies


def _check_steps(store: Path, run_id: str, n_steps: int) -> None:
    api = mltrail.Api(store)
    steps = np.arange(n_steps)
    for i in (0, 19):
        series = api.history(run_id, f"m{i}")
        np.testing.assert_array_equal(series.steps, steps)
        np.testing.assert_array_equal(series.values, steps + i / 100)


def _check_latency(latencies: list[float]) -> None:
    assert max(latencies) < 0.5, f"log() blocked for {max(latencies):.3f} s"
    assert statistics.median(latencies) < 0.002


def test_logging_continues_while_another_connection_holds_the_db_lock(tmp_path: Path) -> None:
    """BEGIN EXCLUSIVE held 2 s elsewhere: log() neither blocks nor raises; the data lands after."""
    store = tmp_path / "store"
    with mltrail.init(project="locked", store=store, heartbeat_s=HEARTBEAT_S) as run:
        step, before = _log_for(run, 0.2, 0)
        assert run.flush(timeout=60)
        holder = sqlite3.connect(store / "mltrail.db", timeout=30, isolation_level=None)
        try:
            holder.execute("BEGIN EXCLUSIVE")
            step, during = _log_for(run, 2.0, step)
            assert run.flush(timeout=0.2) is False  # not in the store yet; nothing raised
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert run.flush(timeout=60) is True
        step, after = _log_for(run, 0.1, step)
    _check_latency(before + during + after)
    assert mltrail.Api(store).run(run.run_id).status is RunStatus.FINISHED
    _check_steps(store, run.run_id, step)
    _integrity_ok(store)


def test_logging_continues_while_the_db_cannot_be_opened(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A store that cannot be opened at first: logging goes on, one warning, data lands later."""
    store = tmp_path / "store"
    blocker = store / "mltrail.db"
    blocker.mkdir(parents=True)  # SQLite cannot open a directory: the store is unavailable
    with caplog.at_level(logging.WARNING, logger="mltrail"):
        with mltrail.init(project="down", store=store, heartbeat_s=HEARTBEAT_S) as run:
            step, during = _log_for(run, 1.5, 0)
            assert run.flush(timeout=0.5) is False
            step, more = _log_for(run, 0.5, step)
            blocker.rmdir()
            assert run.flush(timeout=60) is True
        messages = [r.getMessage() for r in caplog.records]
    _check_latency(during + more)
    assert sum("unavailable" in m for m in messages) == 1, messages  # one warning, not a stream
    assert sum("is back" in m for m in messages) == 1, messages
    assert mltrail.Api(store).run(run.run_id).status is RunStatus.FINISHED
    _check_steps(store, run.run_id, step)
    _integrity_ok(store)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_logging_continues_while_the_store_directory_is_read_only(tmp_path: Path) -> None:
    """Store folder chmod 0555 (no DB yet): logging goes on; after chmod 0755 the data lands."""
    store = tmp_path / "store"
    (store / "spool").mkdir(parents=True)
    store.chmod(0o555)
    try:
        with mltrail.init(project="ro", store=store, heartbeat_s=HEARTBEAT_S) as run:
            step, during = _log_for(run, 1.0, 0)
            assert run.flush(timeout=0.5) is False
            store.chmod(0o755)
            assert run.flush(timeout=60) is True
    finally:
        store.chmod(0o755)
    _check_latency(during)
    _check_steps(store, run.run_id, step)
    _integrity_ok(store)
