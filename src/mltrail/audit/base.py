"""The audit capability a store offers (the SQL store implements it in store/sql/audit*)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mltrail.audit.checkpoints import Checkpoint
    from mltrail.audit.entries import Entry
    from mltrail.audit.verify import LiveState

__all__ = ["AuditLog"]


@runtime_checkable
class AuditLog(Protocol):
    """A store that keeps an audit trail."""

    def audit_size(self) -> int:
        """The number of entries (the last sequence number)."""
        ...

    def audit_entries(
        self, start: int = 1, stop: int | None = None, subject: str | None = None
    ) -> Iterator[Entry]:
        """Entries ``start..stop`` (inclusive) in sequence order, optionally of one subject
        (exact match)."""
        ...

    def audit_checkpoints(self) -> list[Checkpoint]:
        """The checkpoints kept in the store, by tree size."""
        ...

    def audit_checkpoint(self, reason: str = "manual") -> Checkpoint | None:
        """Sign a checkpoint of the whole log now with the configured key (and write it
        off-box when configured); None when there is no key."""
        ...

    def audit_live_state(self) -> LiveState:
        """What the database holds now, in the form the trail's payloads describe it."""
        ...
