"""MLTRAIL_DURABILITY: what an acknowledged call survives, chosen and kept."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

import mltrail
from mltrail.errors import InvalidArgumentError
from mltrail.events.spool import SpoolAppender
from mltrail.settings import settings
from mltrail.store.registry import open_store, resolve_location


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def syncs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The descriptors synced (fdatasync/fsync) by this process."""
    seen: list[int] = []
    real = os.fdatasync

    def counting(fd: int) -> None:
        seen.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fdatasync", counting)
    return seen


def test_default_is_batch_and_a_bad_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("MLTRAIL_DURABILITY", raising=False)
    assert settings().durability == "batch"
    monkeypatch.setenv("MLTRAIL_DURABILITY", "CALL")
    assert settings().durability == "call"
    monkeypatch.setenv("MLTRAIL_DURABILITY", "always")
    with pytest.raises(InvalidArgumentError, match="MLTRAIL_DURABILITY='always'.*process"):
        settings()
    with pytest.raises(InvalidArgumentError, match="MLTRAIL_DURABILITY"):
        mltrail.init(project="p", store=str(tmp_path / "s"), capture=False)


def test_spool_sync_syncs_only_what_is_new(tmp_path: Path, syncs: list[int]) -> None:
    spool = SpoolAppender(tmp_path / "a.spool", header=b"h" * 8)
    assert spool.synced == 0 and syncs == []
    spool.append(b"x" * 10)
    spool.sync()
    assert spool.synced == spool.size == 18 and len(syncs) == 1
    spool.sync()  # nothing new: no system call
    assert len(syncs) == 1
    spool.close()
    each = SpoolAppender(tmp_path / "b.spool", header=b"h", sync_each_append=True)
    before = len(syncs)
    for _ in range(5):
        each.append(b"y")
        assert each.synced == each.size
    assert len(syncs) == before + 5
    each.close()


def _durable_after_each_log(run: mltrail.Run) -> bool:
    spool = run._spool
    return all((run.log({"m": float(i)}), spool.synced == spool.size)[1] for i in range(50))


def test_call_mode_syncs_every_acknowledged_call(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MLTRAIL_DURABILITY", "call")
    monkeypatch.setenv("MLTRAIL_CACHE_DIR", str(tmp_path / "cache"))
    url = f"http://127.0.0.1:{_closed_port()}"  # the store is down: only the spool holds it
    run = mltrail.init(project="p", store=url, capture=False)
    assert _durable_after_each_log(run)
    run.finish(timeout=0.2)


@pytest.mark.parametrize("mode", ["batch", "process"])
def test_batch_mode_syncs_each_interval_even_with_the_store_down(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, mode: str
) -> None:
    monkeypatch.setenv("MLTRAIL_DURABILITY", mode)
    monkeypatch.setenv("MLTRAIL_FLUSH_INTERVAL_S", "0.05")
    monkeypatch.setenv("MLTRAIL_CACHE_DIR", str(tmp_path / "cache"))
    url = f"http://127.0.0.1:{_closed_port()}"
    run = mltrail.init(project="p", store=url, capture=False)
    spool = run._spool
    assert not _durable_after_each_log(run)  # a call returns before any sync
    for round_ in range(3):  # the writer backs off from the store but keeps syncing
        for i in range(100):
            run.log({"m": float(i)}, step=round_ * 100 + i)
        time.sleep(1.0)
        if mode == "batch":
            assert spool.synced == spool.size, round_
        else:
            assert spool.synced == 0
    run.finish(timeout=0.2)
    assert run.spool_path.exists()  # kept for `mltrail sync`, and synced in every mode
    assert spool.synced == spool.size


@pytest.mark.parametrize(("mode", "expected"), [("process", 1), ("batch", 1), ("call", 2)])
def test_embedded_store_syncs_each_commit_in_call_mode(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, mode: str, expected: int
) -> None:
    monkeypatch.setenv("MLTRAIL_DURABILITY", mode)
    store = open_store(resolve_location(str(tmp_path / "s")), shared=False)
    try:
        engine = store._engine  # type: ignore[attr-defined]
        with engine.connect() as conn:
            got = conn.exec_driver_sql("PRAGMA synchronous").scalar()
    finally:
        store.close()
    assert got == expected  # 1: NORMAL, 2: FULL


@pytest.fixture
def wal_syncs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The write-ahead logs fsynced by this process."""
    seen: list[str] = []
    real = os.fsync

    def recording(fd: int) -> None:
        target = os.readlink(f"/proc/self/fd/{fd}")
        if target.endswith("-wal"):
            seen.append(target)
        real(fd)

    monkeypatch.setattr(os, "fsync", recording)
    return seen


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
@pytest.mark.parametrize("mode", ["batch", "process"])
def test_batch_mode_syncs_the_store_at_run_end_and_each_interval(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, wal_syncs: list[str], mode: str
) -> None:
    monkeypatch.setenv("MLTRAIL_DURABILITY", mode)
    monkeypatch.setenv("MLTRAIL_FLUSH_INTERVAL_S", "0.05")
    root = str(tmp_path / "s")
    run = mltrail.init(project="p", store=root, capture=False)
    run.flush()  # the store is open (a first open may take a while on a busy machine)
    before = len(wal_syncs)
    for i in range(10):  # a live run: its commits are synced about once per interval
        run.log({"m": float(i)}, step=i)
        time.sleep(0.1)
    live = len(wal_syncs)
    during = live - before
    run.finish(wait=True)
    if mode == "process":
        assert wal_syncs == []
        return
    assert 3 <= during <= 12, during
    assert len(wal_syncs) == live + 1  # and once more when the run ends
    assert all(p.startswith(str(tmp_path)) for p in wal_syncs)
    short = mltrail.init(project="p", store=root, capture=False)  # shorter than an interval
    short.log({"m": 1.0})
    short.finish(wait=True)
    assert len(wal_syncs) == live + 2


def test_batch_mode_run_lands_whole(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MLTRAIL_DURABILITY", "batch")
    root = str(tmp_path / "s")
    run = mltrail.init(project="p", store=root, capture=False)
    for i in range(1000):
        run.log({"a": float(i), "b": -float(i)})
    run.finish()
    got = mltrail.Api(root).run(run.run_id)
    assert got.status.value == "finished"
    assert not run.spool_path.exists()
