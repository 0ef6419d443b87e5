"""Crash recovery: apply orphaned spools and mark their runs crashed.

A spool is orphaned when no process holds its lock: its owner died (SIGKILL, OOM, power
loss of the process) before draining it. Any process that opens the store (a new run, a CLI
command, the server) calls :func:`recover_spools`; the lock also keeps two recoverers apart.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mltrail.entities import RunStatus
from mltrail.errors import IntegrityError, MltrailError, StoreError
from mltrail.events.decode import SpoolDecoder
from mltrail.events.spool import (
    SPOOL_SUFFIX,
    TEMP_SUFFIX,
    move_spool,
    remove_spool,
    try_lock,
)
from mltrail.store.batch import Batch, StatusChange

if TYPE_CHECKING:
    from collections.abc import Container
    from pathlib import Path

    from mltrail.events.resync import Damage
    from mltrail.store.base import TrackingStore

__all__ = [
    "BAD_SUFFIX",
    "DAMAGED_SUFFIX",
    "DAMAGE_TAG",
    "Recovered",
    "damage_summary",
    "drain_spool",
    "leftover_spools",
    "recover_spools",
    "recovery_due",
]

log = logging.getLogger("mltrail")

#: A spool that cannot be applied is renamed ``<name>.spool.bad`` and kept for inspection.
BAD_SUFFIX = ".bad"
#: A spool that was applied but had damage (skipped bytes) is kept as ``<name>.spool.damaged``:
#: the tool never destroys bytes it could not read.
DAMAGED_SUFFIX = ".damaged"
#: The tag that records on a run what recovery had to skip of its spool.
DAMAGE_TAG = "mltrail.spool_damage"
_STALE_TEMP_S = 600.0  # a spool still under its temporary name after this was abandoned
_TAG_MAX = 4000


@dataclass(frozen=True, slots=True)
class Recovered:
    """What recovery did with one spool.

    Attributes:
        damage: byte ranges that could not be read (CRC mismatch, damaged length, a tail
            cut short, metric frames whose keyset was lost), with the frames and points lost;
            every intact frame around them was applied.
        error: why the spool could not be applied (``None`` when it was); such a spool is
            kept as ``<name>.spool.bad`` and never retried.
        kept: where the spool was set aside (damaged or not applied); ``None`` when it was
            applied whole and removed.
    """

    run_id: str
    source: str
    batches: int
    points: int
    damage: tuple[Damage, ...] = ()
    error: str | None = None
    kept: str | None = None

    @property
    def corrupt_at(self) -> int | None:
        """Offset of the first damaged byte, if any."""
        return self.damage[0].start if self.damage else None

    @property
    def skipped_points(self) -> int | None:
        """Metric points lost to damage (``None`` when some damage does not tell)."""
        total = 0
        for d in self.damage:
            if d.points is None:
                return None
            total += d.points
        return total

    def to_dict(self) -> dict[str, object]:
        return {
            "run_id": self.run_id,
            "source": self.source,
            "batches": self.batches,
            "points": self.points,
            "corrupt_at": self.corrupt_at,
            "damage": [d.to_dict() for d in self.damage],
            "skipped_points": self.skipped_points,
            "error": self.error,
            "kept": self.kept,
        }


def damage_summary(damage: list[Damage] | tuple[Damage, ...], kept: str | None) -> str:
    """One line for a run's :data:`DAMAGE_TAG`: what was skipped and where the spool is."""
    parts = [d.describe() for d in damage]
    text = "skipped " + "; ".join(parts)
    if kept:
        text += f"; spool kept at {kept}"
    if len(text) > _TAG_MAX:
        text = text[: _TAG_MAX - 40] + f" ... ({len(parts)} ranges in all)"
    return text


#: A process recovers orphaned spools of a store at most this often (runs started in a
#: tight loop must not rescan the spool folder each time).
RECOVERY_INTERVAL_S = 30.0
_last_recovery: dict[str, float] = {}
_recovery_lock = threading.Lock()


def recovery_due(uri: str) -> bool:
    """Whether this process should scan ``uri``'s spool folder now (and note that it did)."""
    now = time.monotonic()
    with _recovery_lock:
        last = _last_recovery.get(uri)
        if last is not None and now - last < RECOVERY_INTERVAL_S:
            return False
        _last_recovery[uri] = now
        return True


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


def leftover_spools(spool_root: Path) -> dict[str, list[Path]]:
    """Orphaned spools under ``spool_root`` (the cache's ``spool/`` folder), by store.

    Each spool's header names the store it was written for (passwords removed), so spools
    left for a server whose URL has since changed can be found and applied elsewhere
    (``mltrail sync --from``). Spools still locked by a live process are not listed.
    """
    out: dict[str, list[Path]] = {}
    if not spool_root.is_dir():
        return out
    for path in sorted(spool_root.glob(f"*/*{SPOOL_SUFFIX}")):
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            continue
        try:
            if not try_lock(fd):
                continue
            decoder = SpoolDecoder(path, path.name[: -len(SPOOL_SUFFIX)])
            try:
                store = str(decoder.read_header().get("store") or "")
            finally:
                decoder.close()
        finally:
            os.close(fd)
        out.setdefault(store or f"unknown store ({path.parent})", []).append(path)
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
    decoder.final = True  # its owner is gone: an unreadable tail is damage
    run_id = decoder.run_id()
    try:
        start = store.ingest_position(decoder.source)
        first = decoder.next_batch(start)
        if start == 0 and (first is None or first.is_empty()):
            # Nothing past the header was written whole (the owner died creating the run):
            # no run to create, nothing to apply; bytes that could not be read are kept.
            if not decoder.damage:
                remove_spool(path)
                return None
            kept = _set_aside(path, DAMAGED_SUFFIX)
            log.warning(
                "mltrail: spool %s holds no whole event; %s",
                path,
                damage_summary(decoder.damage, kept),
            )
            return Recovered(run_id, decoder.source, 0, 0, tuple(decoder.damage), kept=kept)
        _, batches, points = drain_spool(store, decoder, start)
        if not decoder.header.get("attached"):  # the run's owner died: the run crashed
            store.apply_batch(
                Batch(run_id, status=StatusChange(RunStatus.CRASHED, None, only_if_running=True))
            )
            from mltrail.lineage_export import live

            live.run_recovered(store.uri, run_id)  # its OpenLineage ABORT (or end), if on
    except StoreError as exc:
        if not isinstance(exc, IntegrityError):
            raise  # the store is down: leave the spool for the next recovery
        return _quarantine(path, run_id, decoder, exc)
    except Exception as exc:  # undecodable, or refused by the store: set it aside
        return _quarantine(path, run_id, decoder, exc)
    if not decoder.damage:
        remove_spool(path)
        return Recovered(run_id, decoder.source, batches, points)
    kept = _set_aside(path, DAMAGED_SUFFIX)
    _tag_damage(store, run_id, decoder.damage, kept)
    log.warning(
        "mltrail: spool %s of run %s was damaged; every intact frame was applied, %s",
        path,
        run_id,
        damage_summary(decoder.damage, kept),
    )
    return Recovered(run_id, decoder.source, batches, points, tuple(decoder.damage), kept=kept)


def _tag_damage(store: TrackingStore, run_id: str, damage: list[Damage], kept: str | None) -> None:
    """Record the skipped ranges on the run (best effort: the run may not exist)."""
    try:
        store.apply_batch(Batch(run_id, tags={DAMAGE_TAG: damage_summary(damage, kept)}))
    except MltrailError as exc:
        log.warning("mltrail: cannot tag run %s with its spool damage: %s", run_id, exc)


def _set_aside(path: Path, suffix: str) -> str | None:
    kept = path.with_name(path.name + suffix)
    try:
        move_spool(path, kept)
    except OSError:
        return None
    return str(kept)


def _quarantine(path: Path, run_id: str, decoder: SpoolDecoder, exc: Exception) -> Recovered:
    kept = _set_aside(path, BAD_SUFFIX)
    reason = f"{type(exc).__name__}: {exc}"
    log.error("mltrail: cannot recover spool %s (%s); kept as %s", path, reason, kept)
    return Recovered(run_id, decoder.source, 0, 0, tuple(decoder.damage), error=reason, kept=kept)
