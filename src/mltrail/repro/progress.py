"""What a reproduction tells the person watching while it runs.

:func:`~mltrail.repro.reproduce` and :func:`~mltrail.repro.verify_determinism` report the plan,
each step (the code checked out, the data verified, the run started) and long waits (an
environment rebuild) to a :class:`Progress`. The library is quiet by default
(:data:`QUIET`); the command line prints them with Rich.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from mltrail.repro.plan import Plan

__all__ = ["QUIET", "Progress", "Quiet"]


class Progress(Protocol):
    """Receives a reproduction's progress; called on the calling thread, in order."""

    def planned(self, plan: Plan) -> None:
        """The plan is made (before anything runs, and on a dry run)."""

    def note(self, message: str, *, warning: bool = False) -> None:
        """A step is done; ``warning`` marks something the person should look at."""

    def busy(self, message: str) -> AbstractContextManager[object]:
        """A long step runs inside the returned context (a spinner, say)."""


class Quiet:
    """A :class:`Progress` that says nothing."""

    def planned(self, plan: Plan) -> None:
        """Ignored."""

    def note(self, message: str, *, warning: bool = False) -> None:
        """Ignored."""

    def busy(self, message: str) -> AbstractContextManager[object]:
        """A context that does nothing."""
        return contextlib.nullcontext()


QUIET = Quiet()
