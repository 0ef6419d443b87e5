"""Concurrent writers keep the audit sequence gapless and the chain whole (PostgreSQL's
advisory lock; SQLite's BEGIN IMMEDIATE)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from _audit_trail import run_batches

from mltrail.audit.verify import verify_log

WRITERS = 4
RUNS_EACH = 4


def test_concurrent_writers_keep_the_sequence_gapless(
    store_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mltrail.store.registry import open_store

    monkeypatch.setenv("MLTRAIL_AUDIT_KEY", str(tmp_path / "absent.pem"))
    stores = [open_store(store_uri, shared=False) for _ in range(WRITERS)]
    errors: list[BaseException] = []
    start = threading.Barrier(WRITERS)

    def write(i: int) -> None:
        try:
            start.wait()
            for r in range(RUNS_EACH):
                for batch in run_batches(f"w{i}r{r}" + "x" * 6, 1_700_000_000_000):
                    stores[i].apply_batch(batch)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        seqs = [e.seq for e in stores[0].audit_entries()]
        assert seqs == list(range(1, WRITERS * RUNS_EACH * 5 + 1))
        report = verify_log(stores[0])
        assert report.ok, report.problems[:3]
        assert report.series == WRITERS * RUNS_EACH
    finally:
        for s in stores:
            s.close()
