"""Crash recovery: apply orphaned spools and mark their runs crashed.

A spool is orphaned when no process holds its lock: its owner died (SIGKILL, OOM, power
loss of the process) before draining it. Any process that opens the store (a new run, a CLI
command, the server) calls :func:`recover_spools`; the lock also keeps two recoverers apart.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mltrail.entities import RunStatus
from mltrail.events.batch import Batch, StatusChange
from mltrail.events.decode import SpoolDecoder
from mltrail.events.spool import SPOOL_SUFFIX, try_lock

if TYPE_CHECKING:
    from collections.abc import Container
    from pathlib import Path

    from mltrail.store.base import TrackingStore

__all__ = ["Recovered", "drain_spool", "recover_spools"]


@dataclass(frozen=True, slots=True)
class Recovered:
    """What recovery did with one spool."""

    run_id: str
    source: str
    batches: int
    points: int
    corrupt_at: int | None


def drain_spool(
    store: TrackingStore, decoder: SpoolDecoder, start: int | None = None
) -> tuple[int, int, int]:
    """Apply every whole frame of a spool past the store's position.

    Returns:
        ``(position, batches applied, points applied)``.
    """
    pos = store.ingest_position(decoder.source) if start is None else start
    batches = points = 0
    while (batch := decoder.next_batch(pos)) is not None:
        if store.apply_batch(batch).applied:
            batches += 1
            points += batch.point_count
        pos = batch.end
    return pos, batches, points


def recover_spools(
    store: TrackingStore, spool_dir: Path, exclude: Container[str] = ()
) -> list[Recovered]:
    """Apply and remove every orphaned spool in ``spool_dir``; mark their runs crashed.

    Spools locked by a live process, and names in ``exclude``, are left alone.
    """
    if not spool_dir.is_dir():
        return []
    out: list[Recovered] = []
    for path in sorted(spool_dir.glob(f"*{SPOOL_SUFFIX}")):
        if path.name in exclude:
            continue
        got = _recover_one(store, path)
        if got is not None:
            out.append(got)
    return out


def _recover_one(store: TrackingStore, path: Path) -> Recovered | None:
    try:
        fd = os.open(path, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return None
    try:
        if not try_lock(fd):
            return None  # its owner is alive
        try:
            if os.fstat(fd).st_ino != os.stat(path).st_ino:
                return None  # removed and replaced meanwhile
        except FileNotFoundError:
            return None  # drained and removed by its owner or another recoverer
        source = path.name[: -len(SPOOL_SUFFIX)]
        decoder = SpoolDecoder(path, source)
        try:
            run_id = str(decoder.read_header().get("run_id", ""))
            if not run_id:  # died before the header reached the disk: nothing to recover
                path.unlink(missing_ok=True)
                return None
            _, batches, points = drain_spool(store, decoder)
            store.apply_batch(
                Batch(run_id, status=StatusChange(RunStatus.CRASHED, None, only_if_running=True))
            )
            path.unlink(missing_ok=True)
            return Recovered(run_id, source, batches, points, decoder.corrupt_at)
        finally:
            decoder.close()
    finally:
        os.close(fd)
