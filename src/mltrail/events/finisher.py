"""Runs that have finished but are not in the store yet: their drains, in the background.

``Run.finish(wait=False)`` (``MLTRAIL_FINISH_WAIT=0``) returns once the run's final status is
in its spool (where every ``log()`` already is: it survives the process's death, and
``MLTRAIL_DURABILITY`` says what else). The rest of a finish (waiting for the state
capture, draining the spool into the store, removing it) is handed to this module's one
thread per process, so a loop that creates many short runs never waits for the store.

Nobody reads a stale store because of it, within the process: every open of a store
(:func:`mltrail.store.registry.open_store`, hence ``Api`` and every CLI command) first waits
for the pending finishes of that store, and so does the process's exit. Another process
sees the run ``running`` for the milliseconds the drain takes (its spool is still locked
by this process: it is never taken for a crash).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mltrail._serial import SerialWorker
from mltrail.store import registry

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["internal_thread", "pending", "submit", "wait"]


@dataclass
class _Finish:
    uri: str
    done: threading.Event


_lock = threading.Lock()
_pending: list[_Finish] = []  # queued or being closed
_local = threading.local()


def internal_thread() -> None:
    """Mark the calling thread as mltrail's own (a writer, this finisher): its store opens
    never wait for pending finishes, which may be waiting for it."""
    _local.internal = True


_worker = SerialWorker(
    "mltrail-finisher", "finishing a run in the background failed", traceback=True,
    on_start=internal_thread,
)  # fmt: skip


def submit(uri: str, close: Callable[[], None]) -> threading.Event:
    """Run ``close`` (the rest of a run's finish, for the store ``uri``) in the background.

    ``close`` must not raise for anything but a bug: what it cannot do it reports itself.
    Returns the event set once ``close`` has returned.
    """

    def run() -> None:
        try:
            close()
        finally:
            with _lock:
                _pending.remove(item)

    with _lock:
        item = _Finish(uri, _worker.submit(run).done)
        _pending.append(item)
    return item.done


def pending(uri: str | None = None) -> int:
    """How many finishes (of the store ``uri``, or of any) have not completed yet."""
    with _lock:
        return sum(1 for f in _pending if uri is None or f.uri == uri)


def wait(uri: str | None = None, timeout: float | None = None) -> bool:
    """Wait until the finishes pending now (of ``uri``, or all) have completed.

    Called from one of mltrail's own threads it returns at once (False if any is pending):
    they may be what the pending finishes wait for.

    Returns:
        True when none is left pending.
    """
    with _lock:
        items = [f for f in _pending if uri is None or f.uri == uri]
    if not items:
        return True
    if getattr(_local, "internal", False):
        return False
    deadline = None if timeout is None else time.monotonic() + timeout
    for item in items:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        if not item.done.wait(left):
            return False
    return True


def _after_fork_in_child() -> None:
    # the runs being closed belong to the parent (the worker resets itself)
    global _lock
    _lock = threading.Lock()
    _pending.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)
registry.before_open(wait)  # every open of a store first waits for its runs' finishes
