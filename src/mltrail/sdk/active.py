"""Which run is active: per thread, as MLflow's fluent API has it.

A run started in a thread is that thread's active run; a thread that started none sees the
main thread's active run (the common case: a data-loader or callback thread logging into
the training run). Runs nest: finishing the innermost makes the previous one active again.
Every live run is also listed process-wide, for the exit hooks.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from mltrail.errors import MltrailError

if TYPE_CHECKING:
    from mltrail.sdk.run import Run

__all__ = ["active_run", "forget", "live_runs", "push", "require", "thread_runs"]

_lock = threading.Lock()
_local = threading.local()
_main: list[Run] = []  # the main thread's stack
_live: list[Run] = []  # every run not yet finished, oldest first
_owner: dict[int, list[Run]] = {}  # id(run) -> the stack it was pushed on


def _stack() -> list[Run]:
    stack: list[Run] | None = getattr(_local, "runs", None)
    if stack is None:
        main = threading.current_thread() is threading.main_thread()
        stack = _local.runs = _main if main else []
    return stack


def push(run: Run) -> None:
    """Make ``run`` the calling thread's active run."""
    stack = _stack()
    with _lock:
        stack.append(run)
        _live.append(run)
        _owner[id(run)] = stack


def forget(run: Run) -> None:
    """``run`` has finished: it is nobody's active run any more."""
    with _lock:
        stack = _owner.pop(id(run), None)
        if stack is not None and run in stack:
            stack.remove(run)
        if run in _live:
            _live.remove(run)


def active_run() -> Run | None:
    """The calling thread's active run, else the main thread's, else None."""
    stack = getattr(_local, "runs", None) or _stack()
    if stack:
        return stack[-1]
    return _main[-1] if _main else None


def require() -> Run:
    """The active run.

    Raises:
        MltrailError: there is none (``mltrail.init()`` was not called).
    """
    run = active_run()
    if run is None:
        raise MltrailError("no active run: call mltrail.init() first")
    return run


def live_runs() -> list[Run]:
    """Every run of this process that has not finished, newest first."""
    with _lock:
        return list(reversed(_live))


def thread_runs() -> list[Run]:
    """The calling thread's own runs (not the main thread's), newest first."""
    with _lock:
        return list(reversed(getattr(_local, "runs", None) or []))
