"""Inclusion proofs of a run's entries against the latest signed checkpoint."""

from __future__ import annotations

from typing import Any

from mltrail.audit.base import AuditLog
from mltrail.audit.merkle import MerkleTree, leaf_hash

__all__ = ["run_inclusion", "subject_of_run"]


def subject_of_run(run_id: str) -> str:
    """The subject the entries of a run carry."""
    return f"run:{run_id}"


def run_inclusion(store: object, run_id: str) -> dict[str, Any] | None:
    """See :func:`mltrail.audit.api.run_inclusion`."""
    if not isinstance(store, AuditLog):
        return None
    checkpoints = store.audit_checkpoints()
    if not checkpoints:
        return None
    cp = checkpoints[-1]
    n = cp.tree_size
    leaves = [leaf_hash(bytes.fromhex(e.hash)) for e in store.audit_entries(1, n)]
    tree = MerkleTree(leaves)
    out: list[dict[str, Any]] = []
    uncovered = 0
    for e in store.audit_entries(subject=subject_of_run(run_id)):
        if e.seq > n:
            uncovered += 1
            continue
        out.append(
            {
                "seq": e.seq,
                "leaf_index": e.seq - 1,
                "entry": e.to_dict(),
                "entry_hash": e.hash,
                "proof": [p.hex() for p in tree.inclusion_proof(e.seq - 1, n)],
            }
        )
    return {
        "checkpoint": cp.to_dict(),
        "run_id": run_id,
        "tree_size": n,
        "leaf": "SHA-256(0x00 || bytes.fromhex(entry_hash)) (RFC 6962)",
        "entries": out,
        "uncovered": uncovered,
    }
