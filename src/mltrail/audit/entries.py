"""Audit entries: what one change to the store leaves in the log, and how it is hashed.

An entry is ``(seq, ts_ms, actor, action, subject, payload, blobs, prev_hash)``. The payload is
the canonical JSON (:func:`canonical`) of the rows the change wrote (as they are in the
database), or of digests standing for them (a metric batch is the SHA-256 of its columns per
key), so ``audit verify`` can rebuild it from the live rows. The entry's hash covers
everything but the payload's text, which it covers through ``payload_digest``; the first
entry's ``prev_hash`` is :data:`GENESIS`. The Merkle leaf of an entry is its 32-byte hash.
"""

from __future__ import annotations

import hashlib
import json
import struct
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "ENTRY_VERSION",
    "GENESIS",
    "Entry",
    "canonical",
    "compact",
    "digest",
    "entry_hash",
    "column_bytes",
    "metric_digest",
]

#: The version of the entry encoding (hashed into every entry).
ENTRY_VERSION = 1
#: ``prev_hash`` of the first entry.
GENESIS = "0" * 64


_LENGTHS = struct.Struct("<3Q").pack
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def canonical(value: Any) -> str:
    """Canonical JSON: sorted keys, no spaces, UTF-8 kept (NaN written as ``NaN``)."""
    return _CANONICAL(value)


def compact(value: Any) -> str:
    """Compact JSON, keys in their order: a payload's text (its digest is over this text, so
    it needs no canonical order; the verifier parses it)."""
    return _COMPACT(value)


def digest(data: bytes | str) -> str:
    """SHA-256 hex of ``data`` (text as UTF-8)."""
    if isinstance(data, str):
        data = data.encode()
    return hashlib.sha256(data).hexdigest()


def metric_digest(parts: Iterable[tuple[bytes | memoryview, ...]]) -> str:
    """The digest of a batch's metric points, ``blake3:<hex>``: BLAKE3 over, for each key in
    the payload's order, the three byte lengths (u64 LE) then the little-endian int64 steps,
    int64 timestamps and float64 values (BLAKE3: a 10^5-point batch is 2.4 MB to hash in the
    writer's transaction, at twice SHA-256's speed here; buffers are hashed without copies)."""
    from blake3 import blake3

    h = blake3()
    for steps, timestamps, values in parts:
        h.update(_LENGTHS(len(steps), len(timestamps), len(values)))
        h.update(steps)
        h.update(timestamps)
        h.update(values)
    return "blake3:" + h.hexdigest()


def column_bytes(column: Any, dtype: str) -> memoryview:
    """A NumPy column as little-endian bytes of ``dtype`` (no copy when it already is)."""
    import numpy as np

    return np.ascontiguousarray(column, dtype=dtype).data.cast("B")


def entry_bytes(
    seq: int,
    ts_ms: int,
    actor: str,
    action: str,
    subject: str,
    payload_digest: str,
    blobs: tuple[str, ...],
    prev_hash: str,
) -> bytes:
    """The bytes an entry's hash is taken over."""
    return _COMPACT(
        [ENTRY_VERSION, seq, ts_ms, actor, action, subject, payload_digest, list(blobs), prev_hash]
    ).encode()


def entry_hash(
    seq: int,
    ts_ms: int,
    actor: str,
    action: str,
    subject: str,
    payload_digest: str,
    blobs: tuple[str, ...],
    prev_hash: str,
) -> str:
    """SHA-256 hex of :func:`entry_bytes`: the link the next entry carries."""
    return hashlib.sha256(
        entry_bytes(seq, ts_ms, actor, action, subject, payload_digest, blobs, prev_hash)
    ).hexdigest()


class Entry(NamedTuple):
    """One entry of the audit log, as stored (a named tuple: verify builds 10^6 of them)."""

    seq: int
    ts_ms: int
    actor: str
    action: str
    subject: str
    payload: str
    payload_digest: str
    prev_hash: str
    hash: str
    blobs: tuple[str, ...] = ()

    def computed_hash(self) -> str:
        """The hash this entry's fields give (equal to ``hash`` unless tampered with)."""
        return entry_hash(
            self.seq,
            self.ts_ms,
            self.actor,
            self.action,
            self.subject,
            self.payload_digest,
            self.blobs,
            self.prev_hash,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (the payload parsed)."""
        return {
            "seq": self.seq,
            "ts_ms": self.ts_ms,
            "actor": self.actor,
            "action": self.action,
            "subject": self.subject,
            "payload": json.loads(self.payload),
            "payload_digest": self.payload_digest,
            "blobs": list(self.blobs),
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }
