"""Crash recovery: apply orphaned spools and mark their runs crashed.

A spool is orphaned when no process holds its lock: its owner died (SIGKILL, OOM, power
loss of the process) before draining it. Any process that opens the store (a new run, a CLI
command, the server) calls :func:`recover_spools`; the lock also keeps two recoverers apart.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mltrail.entities import RunStatus
from mltrail.errors import IntegrityError, StoreError
from mltrail.events.batch import Batch, StatusChange
from mltrail.events.decode import SpoolDecoder
from mltrail.events.spool import SPOOL_SUFFIX, TEMP_SUFFIX, try_lock

if TYPE_CHECKING:
    from collections.abc import Container
    from pathlib import Path

    from mltrail.store.base import TrackingStore

__all__ = ["BAD_SUFFIX", "Recovered", "drain_spool", "recover_spools"]

log = logging.getLogger("mltrail")

#: A spool that cannot be applied is renamed ``<name>.spool.bad`` and kept for inspection.
BAD_SUFFIX = ".bad"
_STALE_TEMP_S = 600.0  # a spool still under its temporary name after this was abandoned


@dataclass(frozen=True, slots=True)
class Recovered:
    """What recovery did with one spool.

    Attributes:
        corrupt_at: the byte offset of a frame that failed its CRC check: nothing from there
            on could be read. A truncated tail (a write cut short) is not corruption.
        error: why the spool could not be applied (``None`` when it was); such a spool is
            kept as ``<name>.spool.bad`` and never retried.
    """

    run_id: str
    source: str
    batches: int
    points: int
    corrupt_at: int | None
    error: str | None = None


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

    Spools locked by a live process, and names in ``exclude``, are left alone. One bad spool
    never blocks the others: it is logged, renamed ``.bad`` and reported in ``error``.

    Raises:
        StoreError: the store is unavailable (nothing is removed; recovery runs again later).
    """
    if not spool_dir.is_dir():
        return []
    _sweep_abandoned(spool_dir)
    out: list[Recovered] = []
    for path in sorted(spool_dir.glob(f"*{SPOOL_SUFFIX}")):
        if path.name in exclude:
            continue
        got = _recover_one(store, path)
        if got is not None:
            out.append(got)
    return out


def _sweep_abandoned(spool_dir: Path) -> None:
    """Remove spools that never left their temporary name (their owner died creating them)."""
    cutoff = time.time() - _STALE_TEMP_S
    for path in spool_dir.glob(f".*{SPOOL_SUFFIX}{TEMP_SUFFIX}"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
        except OSError:
            pass


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
            return _apply_orphan(store, path, decoder)
        finally:
            decoder.close()
    finally:
        os.close(fd)


def _apply_orphan(store: TrackingStore, path: Path, decoder: SpoolDecoder) -> Recovered | None:
    run_id = ""
    try:
        run_id = str(decoder.read_header().get("run_id", ""))
        start = store.ingest_position(decoder.source)
        first = decoder.next_batch(start)
        if start == 0 and (first is None or first.is_empty()):
            # Nothing past the header was written whole (the owner died creating the run,
            # or the data is unreadable from the start): no run to create, nothing to apply.
            _warn_corrupt(path, decoder)
            path.unlink(missing_ok=True)
            if decoder.corrupt_at is None:
                return None
            run_id = run_id or decoder.source.split(".", 1)[0]
            return Recovered(run_id, decoder.source, 0, 0, decoder.corrupt_at)
        _, batches, points = drain_spool(store, decoder, start)
        if not decoder.header.get("attached"):  # the run's owner died: the run crashed
            store.apply_batch(
                Batch(run_id, status=StatusChange(RunStatus.CRASHED, None, only_if_running=True))
            )
    except StoreError as exc:
        if not isinstance(exc, IntegrityError):
            raise  # the store is down: leave the spool for the next recovery
        return _quarantine(path, run_id, decoder, exc)
    except Exception as exc:  # undecodable, or refused by the store: set it aside
        return _quarantine(path, run_id, decoder, exc)
    _warn_corrupt(path, decoder)
    path.unlink(missing_ok=True)
    return Recovered(run_id, decoder.source, batches, points, decoder.corrupt_at)


def _warn_corrupt(path: Path, decoder: SpoolDecoder) -> None:
    if decoder.corrupt_at is not None:
        log.warning(
            "mltrail: spool %s is corrupt at byte %d (CRC mismatch); everything before it "
            "was applied, nothing after it could be read",
            path,
            decoder.corrupt_at,
        )


def _quarantine(path: Path, run_id: str, decoder: SpoolDecoder, exc: Exception) -> Recovered:
    bad = path.with_name(path.name + BAD_SUFFIX)
    try:
        os.replace(path, bad)
    except OSError:
        pass
    reason = f"{type(exc).__name__}: {exc}"
    log.error("mltrail: cannot recover spool %s (%s); kept as %s", path, reason, bad)
    return Recovered(run_id, decoder.source, 0, 0, decoder.corrupt_at, error=reason)
