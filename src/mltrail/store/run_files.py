"""Run files: a run's files by logical path, each pointing at a content digest.

The bytes live in a content-addressed file store (:mod:`mltrail.server.filestore`); the index
only maps ``(run_id, path)`` to ``(digest, size)``. The path is a name chosen by the client
and is never used to locate anything on a disk.

Contract of :class:`RunFiles` (SQL stores; reached through
:class:`~mltrail.store.optional.HasRunFiles`): thread-safe; records are immutable; ``put``
replaces an earlier upload of the same path; unknown runs and paths raise
:class:`~mltrail.errors.NotFoundError`; driver failures :class:`~mltrail.errors.StoreError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import builtins

__all__ = ["RunFile", "RunFiles"]


@dataclass(frozen=True, slots=True)
class RunFile:
    """One file of a run: its logical path, content digest (``sha256:<hex>``) and size."""

    run_id: str
    path: str
    digest: str
    size: int
    created_ms: int

    def to_dict(self) -> dict[str, Any]:
        """The REST form (without the run id)."""
        return {
            "path": self.path,
            "digest": self.digest,
            "size": self.size,
            "created_ms": self.created_ms,
        }


@runtime_checkable
class RunFiles(Protocol):
    """The index of run files (see the module docstring)."""

    def put(self, run_id: str, path: str, digest: str, size: int) -> RunFile:
        """Point ``path`` of ``run_id`` at ``digest`` (replacing an earlier upload).

        Raises:
            NotFoundError: no such run.
        """
        ...

    def list(self, run_id: str) -> builtins.list[RunFile]:
        """The run's files, by path."""
        ...

    def get(self, run_id: str, path: str) -> RunFile:
        """One file of a run.

        Raises:
            NotFoundError: the run has no file at ``path``.
        """
        ...

    def is_referenced(self, digest: str) -> bool:
        """Whether any run's file points at ``digest``."""
        ...
