"""The writer thread: moves a run's spool into the store, off the training loop's path.

It opens the store through the opener it was given (importing the backend there, not in
``init()``; the SDK's opener also recovers orphaned spools), then loops: wake on a flush
request or every ``flush_interval_s``, append a heartbeat frame when one is due, and apply
whatever whole frames the spool holds past the store's position, about 4 MB per transaction.
Store failures never reach the training loop: the spool grows, one warning is printed, and
the backlog drains when the store comes back. Errors surface on :meth:`Writer.flush` and at
finish.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import TYPE_CHECKING, Any

from mltrail.errors import MltrailError, ParamConflictError, SpoolError, StoreError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path

    from mltrail.events.decode import SpoolDecoder
    from mltrail.events.resync import Damage
    from mltrail.store.base import TrackingStore

__all__ = ["Writer"]

log = logging.getLogger("mltrail")

_MAX_BACKOFF_S = 5.0
WINDOW = 4 << 20
BIG_WINDOW = 16 << 20
WIDE_KEYS = 1024  # a keyset this wide makes a run "wide" (see Writer._window)
#: ``close`` says what it waits for when a healthy store's drain takes longer than this (a
#: store that is down is reported at once). Short enough that a user never wonders why the
#: process hangs, long enough that a store busy with other writers does not print noise.
SAY_WAITING_AFTER_S = 5.0
#: The writer gives the disk of applied spool back (see SpoolAppender.release) each time
#: this much more has been applied: a long run's spool stays within about this plus what
#: the store has not taken yet.
RELEASE_BYTES = 32 << 20


class _Pool:
    """The threads writers run on: a finished writer's thread takes the next writer, so a
    process that creates many runs starts a thread only when every one is busy (a thread
    start waits for the new thread to be scheduled: milliseconds on a loaded machine)."""

    IDLE_S = 30.0  # an idle thread this long ends

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._jobs: list[Callable[[], None]] = []
        self._idle = 0

    def submit(self, job: Callable[[], None]) -> None:
        with self._cond:
            self._jobs.append(job)
            if self._idle > len(self._jobs) - 1:
                self._cond.notify()
                return
        threading.Thread(target=self._work, name="mltrail-writer", daemon=True).start()

    def _work(self) -> None:
        from mltrail.events.finisher import internal_thread

        internal_thread()  # its store opens never wait for finishes (which wait for it)
        while True:
            with self._cond:
                self._idle += 1
                try:
                    deadline = time.monotonic() + self.IDLE_S
                    while not self._jobs:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            return
                        self._cond.wait(left)
                    job = self._jobs.pop(0)
                finally:
                    self._idle -= 1
            job()


_pool = _Pool()


def _after_fork_in_child() -> None:
    global _pool
    _pool = _Pool()


os.register_at_fork(after_in_child=_after_fork_in_child)  # its threads did not survive the fork


class Writer:
    """Applies one spool to the store, on a thread of the process's writer pool.

    Args:
        open_store: opens the store (called on this thread, once, and again after a failure):
            the SDK passes one that also recovers orphaned spools.
        display: the store's URI for messages (no password).
        spool_path: the run's spool file; its name (less ``.spool``) is the ingest source.
        spool_size: returns how many bytes have been appended so far.
        heartbeat: appends a heartbeat frame (called from this thread).
        heartbeat_s: seconds between heartbeats.
        flush_interval_s: seconds between idle drains.
        sync: puts the spool on stable storage (``MLTRAIL_DURABILITY=batch``: group commit),
            or None. Given, the writer syncs the spool once per flush interval (also while the
            store is down) and a store that :class:`~mltrail.store.optional.SyncsLog` once per
            interval and at the run's end, so a finished run survives power loss and a live
            one loses at most its last interval.
        release: ``(upto, header, keysets) -> bytes given back``: releases the applied spool
            before ``upto`` (SpoolAppender.release), or None to keep it whole.
    """

    def __init__(
        self,
        open_store: Callable[[], TrackingStore],
        display: str,
        spool_path: Path,
        spool_size: Callable[[], int],
        heartbeat: Callable[[], None],
        heartbeat_s: float,
        flush_interval_s: float,
        sync: Callable[[], None] | None = None,
        release: Callable[[int, dict[str, Any], dict[int, list[str]]], int] | None = None,
    ) -> None:
        self.name = f"mltrail-writer-{spool_path.stem}"
        self._alive = False
        self._done = threading.Event()
        self._open_store = open_store
        self.display = display
        self.spool_path = spool_path
        self.source = spool_path.name.removesuffix(".spool")
        self._spool_size = spool_size
        self._heartbeat = heartbeat
        self._heartbeat_s = heartbeat_s
        self._interval = flush_interval_s
        self._sync = sync
        self._synced_at = time.monotonic()
        self._unsynced_commits = False  # the store committed since its log was last synced
        self._release = release
        self._released = 0  # position at the last release
        self._wide = False
        self._cond = threading.Condition()
        self._wake = False
        self._closing = False
        self._stopping = False
        self._fatal = False  # the last drain failed with a non-retryable error
        self.position = 0  # bytes of the spool applied to the store
        self.error: MltrailError | None = None  # a failure not yet reported
        self.store_down: StoreError | None = None
        self._warned = False
        self._logged: set[str] = set()
        self.store: TrackingStore | None = None
        #: byte ranges of the spool that could not be read (see SpoolDecoder.damage)
        self.damage: list[Damage] = []

    # -- lifecycle (thread-like) ----------------------------------------------------------

    def start(self) -> None:
        """Begin applying, on a pooled thread."""
        self._alive = True
        _pool.submit(self._work)

    def is_alive(self) -> bool:
        """True from :meth:`start` until the writer has stopped."""
        return self._alive

    def join(self, timeout: float | None = None) -> None:
        """Wait (up to ``timeout`` s) for the writer to stop."""
        self._done.wait(timeout)

    def _work(self) -> None:
        try:
            self.run()
        finally:
            with self._cond:
                self._alive = False
                self._cond.notify_all()
            self._done.set()

    # -- called by the run ----------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything appended so far is in the store.

        Returns:
            True when drained; False on timeout (the data stays in the spool).

        Raises:
            MltrailError: a non-retryable failure of the writer (reported once).
        """
        target = self._spool_size()
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._wake = True
            self._cond.notify_all()
            while self.position < target and self.is_alive():
                if self.error is not None:
                    break
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._cond.wait(left if left is not None else 1.0)
            self._raise_error()
            return self.position >= target

    def close(
        self,
        timeout: float | None,
        on_wait: Callable[[str, float | None], None] | None = None,
        down_s: float | None = None,
    ) -> bool:
        """Drain and stop the thread; True when everything reached the store.

        Args:
            timeout: seconds to wait for the drain (None: as long as it takes).
            on_wait: called once, ``(what it waits for, seconds it will wait)``, when the
                drain has not ended after :data:`SAY_WAITING_AFTER_S` or the store is
                known to be down.
            down_s: stop waiting this long after the store is known to be unreachable.
        """
        with self._cond:
            self._closing = True
            self._wake = True
            self._cond.notify_all()
        start = time.monotonic()
        deadline = None if timeout is None else start + timeout
        down_since: float | None = None
        said = on_wait is None
        while self.is_alive():
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                break
            if down_s is not None and self.store_down is not None:
                down_since = now if down_since is None else down_since
                if now - down_since >= down_s:
                    break
            if not said and (now - start >= SAY_WAITING_AFTER_S or down_since is not None):
                said = True
                bound = None if deadline is None else deadline - now
                if down_since is not None and down_s is not None:
                    bound = down_s if bound is None else min(bound, down_s)
                assert on_wait is not None
                on_wait(self._waiting_for(), bound)
            self.join(0.05)
        with self._cond:
            self._stopping = True  # gave up waiting: leave the rest in the spool
            self._cond.notify_all()
        return self.position >= self._spool_size()

    def _waiting_for(self) -> str:
        """What a closing writer waits for, in words."""
        left = max(0, self._spool_size() - self.position)
        size = f"{left / 1024:.0f} KiB" if left < 1 << 20 else f"{left / (1 << 20):.1f} MiB"
        down = self.store_down
        if down is not None:
            return f"the store {self.display} to come back ({down}); {size} to apply"
        if self.store is None:
            return f"the store {self.display} to open; {size} to apply"
        return f"the store {self.display} to apply {size}"

    def _raise_error(self) -> None:
        err, self.error = self.error, None
        if err is not None:
            raise err

    # -- the thread -----------------------------------------------------------------------

    def run(self) -> None:
        try:
            # imported here: decoding needs NumPy, which must load off the caller's thread
            from mltrail.events.decode import SpoolDecoder

            decoder = SpoolDecoder(self.spool_path, self.source)
        except OSError as exc:  # flush() sees the thread gone and raises this
            self._report(SpoolError(f"cannot read spool {self.spool_path}: {exc.strerror}"))
            return
        next_beat = time.monotonic() + self._heartbeat_s
        backoff = 0.05
        retry_at = 0.0  # after a failed drain, the next one waits for this moment
        try:
            while True:
                with self._cond:
                    if not self._wake and not self._closing:
                        wait = min(self._interval, max(0.0, next_beat - time.monotonic()))
                        if retry_at:
                            wait = min(wait, max(0.0, retry_at - time.monotonic()))
                        self._cond.wait(wait)
                    if self._wake:  # flush() or close() asks: retry at once
                        retry_at = 0.0
                    self._wake = False
                    closing = self._closing
                    if self._stopping:
                        return
                self._sync_if_due()
                left = retry_at - time.monotonic()
                if left > 0:  # the store failed: back off, syncing each interval meanwhile
                    if closing:  # (not closing, the wait at the top did it)
                        with self._cond:
                            if not self._stopping and not self._wake:
                                self._cond.wait(min(self._interval, left))
                    continue
                # closing: the run appends nothing more, so an unreadable tail is damage
                decoder.final = closing
                if not closing and time.monotonic() >= next_beat:
                    next_beat = time.monotonic() + self._heartbeat_s
                    self._safe_heartbeat()
                ok = self._drain(decoder)
                if ok:
                    backoff = 0.05
                    retry_at = 0.0
                    if closing and self.position >= self._spool_size():
                        self._sync_store()  # the run ends: its last commits outlive a power cut
                        return
                else:
                    if closing and self._fatal:
                        return
                    retry_at = time.monotonic() + backoff
                    backoff = min(backoff * 2, _MAX_BACKOFF_S)
        finally:
            decoder.close()
            with self._cond:
                self._cond.notify_all()

    def _release_applied(self, decoder: SpoolDecoder) -> None:
        upto = self.position
        self._sync_store()  # the hole must never outlive (on disk) the commits it held
        try:
            assert self._release is not None
            self._release(upto, decoder.read_header(), dict(decoder.keysets))
        except MltrailError as exc:  # the spool stays whole: disk, not data, is at stake
            self._release = None
            log.warning("mltrail: applied spool is kept whole: %s", exc)
        self._released = upto

    def _sync_if_due(self) -> None:
        """Batch durability: the spool and the store's log, once per flush interval."""
        if self._sync is None or time.monotonic() - self._synced_at < self._interval:
            return
        self._synced_at = time.monotonic()
        try:
            self._sync()
        except MltrailError as exc:  # a device error: said once, the data path goes on
            self._say_once(exc)
        self._sync_store()

    def _sync_store(self) -> None:
        from mltrail.store.optional import SyncsLog

        if self._sync is None or not self._unsynced_commits:
            return
        store = self.store
        if store is None or not isinstance(store, SyncsLog):
            return
        try:
            store.sync_log()
            self._unsynced_commits = False
        except MltrailError as exc:
            self._say_once(exc)

    def _say_once(self, exc: MltrailError, what: str = "") -> None:
        """Warn about a failure that does not stop the data path, once per message."""
        if exc.message not in self._logged:
            self._logged.add(exc.message)
            log.warning("mltrail: %s%s", what, exc)

    def _safe_heartbeat(self) -> None:
        # A heartbeat is a liveness hint, not data: one that cannot be written (a full disk)
        # is warned about once and never fails the run's finish.
        try:
            self._heartbeat()
        except MltrailError as exc:
            self._say_once(exc, "heartbeat not recorded: ")

    def _open(self) -> TrackingStore:
        if self.store is None:
            store = self._open_store()
            self.position = 0  # a writer's spool is always new: its source name is unique
            self.store = store
        return self.store

    def _drain(self, decoder: SpoolDecoder) -> bool:
        """Apply what the spool holds; False when the store failed (retry later)."""
        self._fatal = False
        try:
            store = self._open()
            while (batch := decoder.next_batch(self.position, self._window(decoder))) is not None:
                result = store.apply_batch(batch)
                self._unsynced_commits = True
                self._store_back()  # said before anyone waiting on the position is told
                with self._cond:
                    self.position = batch.end
                    self._cond.notify_all()
                if result.param_conflicts:
                    self._report(_conflict_error(result.param_conflicts))
                if self._release is not None and self.position - self._released >= RELEASE_BYTES:
                    self._release_applied(decoder)
        except StoreError as exc:
            self._store_down(exc)
            return False
        except MltrailError as exc:
            self._fatal = True
            self._report(exc)
            return False
        except Exception as exc:  # never let the thread die silently
            self._fatal = True
            self._report(StoreError(f"writer failed: {type(exc).__name__}: {exc}"))
            return False
        finally:
            self._note_damage(decoder)
        self._store_back()
        return True

    def _store_back(self) -> None:
        if self.store_down is not None:
            log.warning(
                "mltrail: store %s is back; the spool backlog is being applied", self.display
            )
            self.store_down = None
            self._warned = False

    def _window(self, decoder: SpoolDecoder) -> int:
        """Bytes of spool per batch: 4 MiB; 16 MiB for a big backlog (fewer, larger
        transactions and requests while catching up) and for a wide run (thousands of keys
        per step: a batch costs per key as much as per point, so fewer, longer batches)."""
        if self._spool_size() - self.position > BIG_WINDOW:
            return BIG_WINDOW
        if self._wide or any(len(k) >= WIDE_KEYS for k in decoder.keysets.values()):
            self._wide = True
            return BIG_WINDOW
        return WINDOW

    def _note_damage(self, decoder: SpoolDecoder) -> None:
        """Warn about, and tag the run with, damage the decoder skipped since last time."""
        fresh = decoder.damage[len(self.damage) :]
        if not fresh or self.store is None:
            return
        from mltrail.events.recovery import DAMAGE_TAG, damage_summary
        from mltrail.store.batch import Batch

        self.damage.extend(fresh)
        for d in fresh:
            log.error("mltrail: spool %s is damaged, %s skipped", self.spool_path, d.describe())
        kept = str(self.spool_path) + ".damaged"
        tag = {DAMAGE_TAG: damage_summary(self.damage, kept)}
        try:
            self.store.apply_batch(Batch(decoder.run_id(), tags=tag))
        except MltrailError as exc:  # the tag is a report; the data path goes on
            log.warning("mltrail: cannot tag run with its spool damage: %s", exc)

    def _store_down(self, exc: StoreError) -> None:
        self.store_down = exc
        if not self._warned:
            self._warned = True
            log.warning(
                "mltrail: store %s unavailable (%s); logging continues into the spool %s "
                "and will be applied when it returns",
                self.display,
                exc,
                self.spool_path,
            )

    def _report(self, exc: MltrailError) -> None:
        with self._cond:
            if self.error is None:
                self.error = exc
            self._cond.notify_all()
        if exc.message not in self._logged:
            self._logged.add(exc.message)
            log.error("mltrail: %s", exc)


def _conflict_error(conflicts: Mapping[str, tuple[object, object]]) -> ParamConflictError:
    key, (old, new) = next(iter(conflicts.items()))
    return ParamConflictError(
        f"param {key!r} is already {old!r} in the store; {new!r} was not applied "
        "(params are immutable)"
    )
