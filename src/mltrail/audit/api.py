"""What other parts of mltrail (attestations, exports) ask of the audit trail."""

from __future__ import annotations

from typing import Any

__all__ = ["run_inclusion"]


def run_inclusion(store: object, run_id: str) -> dict[str, Any] | None:
    """The latest signed checkpoint of ``store``'s audit trail and the inclusion proofs of
    ``run_id``'s entries against it, JSON-ready; None when the store has no checkpoint yet
    (or keeps no audit trail).

    The shape::

        {"checkpoint": {"tree_size", "root", "timestamp", "key_id", "signature", ...},
         "run_id": ..., "entries": [{"seq", "entry": {...}, "entry_hash", "leaf_index",
         "proof": [hex, ...]}, ...]}

    Entries written after the checkpoint are not covered by it and are left out (their
    count is ``"uncovered"``).
    """
    from mltrail.audit.proofs import run_inclusion as _impl

    return _impl(store, run_id)
