"""One background thread per purpose that runs jobs in order: started on first use,
started anew in a forked child (its thread did not survive the fork).

Used where a thread per run would cost a start and a join per run (many short runs): the
state capture (:mod:`mltrail.sdk.session`) and the background finishes
(:mod:`mltrail.events.finisher`).
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["Job", "SerialWorker"]

log = logging.getLogger("mltrail")


class Job:
    """A submitted function; ``done`` is set once it has run (or was skipped)."""

    __slots__ = ("cancelled", "done", "fn")

    def __init__(self, fn: Callable[[], None]) -> None:
        self.fn = fn
        self.done = threading.Event()
        #: set before it begins: it never runs (``done`` is still set)
        self.cancelled = False


class SerialWorker:
    """Runs submitted jobs one after the other on one daemon thread.

    Args:
        name: the thread's name.
        failure: what a job that raised failed to do, for the warning (the next job goes
            on); with ``traceback`` the warning carries it (a bug rather than a condition).
        on_start: called first on the thread (e.g. to mark it as mltrail's own).
    """

    def __init__(
        self,
        name: str,
        failure: str,
        *,
        traceback: bool = False,
        on_start: Callable[[], None] | None = None,
    ) -> None:
        self._name, self._failure, self._traceback = name, failure, traceback
        self._on_start = on_start
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._cond = threading.Condition()
        self._jobs: deque[Job] = deque()
        self._thread: threading.Thread | None = None

    def submit(self, fn: Callable[[], None]) -> Job:
        """Queue ``fn``; returns its job at once."""
        job = Job(fn)
        with self._cond:
            self._jobs.append(job)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()
            self._cond.notify_all()
        return job

    def _loop(self) -> None:
        if self._on_start is not None:
            self._on_start()
        while True:
            with self._cond:
                while not self._jobs:
                    self._cond.wait()
                job = self._jobs.popleft()
            try:
                if not job.cancelled:
                    job.fn()
            except Exception as exc:  # the next job goes on
                log.warning("mltrail: %s: %s", self._failure, exc, exc_info=self._traceback)
            finally:
                job.done.set()
