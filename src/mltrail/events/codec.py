"""Binary frames of the spool.

A frame is ``<u32 length><u32 crc32(payload)><payload>``; the payload's first byte is the
event kind. Metric events are fixed-layout structs that refer to a *keyset* (the tuple of
metric names of one ``log()`` call) declared once by a KEYSET frame, so the hot path packs a
few numbers and never encodes a name twice. Every other event carries compact JSON.
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any, Final

__all__ = [
    "FRAME_HEADER",
    "KIND_HEADER",
    "KIND_HEARTBEAT",
    "KIND_KEYSET",
    "KIND_METRICS",
    "KIND_PARAMS",
    "KIND_RESUME",
    "KIND_BLOB",
    "KIND_CONSOLE",
    "KIND_RUN",
    "KIND_STATE",
    "KIND_STATUS",
    "KIND_PROJECT",
    "KIND_TAGS",
    "decode_blob",
    "decode_json",
    "encode_blob",
    "encode_json",
    "frame",
    "metrics_struct",
]

KIND_HEADER: Final = 0  # owner of the spool: run_id, pid, host, process start time
KIND_KEYSET: Final = 1  # keyset id -> list of metric names
KIND_METRICS: Final = 2  # keyset id, step, timestamp_ms, one float64 per key
KIND_RUN: Final = 3  # run creation: project, name, config, params, tags ...
KIND_PARAMS: Final = 4
KIND_TAGS: Final = 5
KIND_STATUS: Final = 6  # terminal status and end time
KIND_HEARTBEAT: Final = 7  # timestamp_ms
KIND_RESUME: Final = 8  # a later process continues the run
KIND_STATE: Final = 9  # captured state of one kind: {"kind": ..., "data": {...}}
KIND_BLOB: Final = 10  # <u8 digest length><digest ascii><content>
KIND_CONSOLE: Final = 11  # {"lines": [[timestamp_ms, stream, text], ...]}
KIND_PROJECT: Final = 12  # {"project": name}: the run belongs there (a child's init(project=))

FRAME_HEADER: Final = struct.Struct("<II")
_HEARTBEAT = struct.Struct("<Bq")
_METRICS_PREFIX = "<BIqq"
METRICS_PREFIX_FIELDS: Final = 4  # kind, keyset id, step, timestamp_ms

_structs: dict[int, struct.Struct] = {}


def metrics_struct(n_keys: int) -> struct.Struct:
    """The struct of a METRICS payload with ``n_keys`` values (cached)."""
    s = _structs.get(n_keys)
    if s is None:
        s = _structs[n_keys] = struct.Struct(f"{_METRICS_PREFIX}{n_keys}d")
    return s


def frame(payload: bytes) -> bytes:
    """Wrap a payload in a length + CRC header."""
    return FRAME_HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def encode_json(kind: int, body: dict[str, Any]) -> bytes:
    """A JSON event payload; non-JSON values are stored by ``str()``."""
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=False, default=str)
    return bytes((kind,)) + text.encode("utf-8")


def decode_json(payload: bytes | memoryview) -> dict[str, Any]:
    """The body of a JSON event payload."""
    body: dict[str, Any] = json.loads(bytes(payload[1:]).decode("utf-8"))
    return body


def encode_heartbeat(timestamp_ms: int) -> bytes:
    """A HEARTBEAT payload."""
    return _HEARTBEAT.pack(KIND_HEARTBEAT, timestamp_ms)


def decode_heartbeat(payload: bytes | memoryview) -> int:
    """The timestamp of a HEARTBEAT payload."""
    return int(_HEARTBEAT.unpack_from(payload)[1])


def encode_blob(digest: str, content: bytes) -> bytes:
    """A BLOB payload: the digest it is stored under, then the bytes."""
    key = digest.encode("ascii")
    return bytes((KIND_BLOB, len(key))) + key + content


def decode_blob(payload: bytes | memoryview) -> tuple[str, bytes]:
    """``(digest, content)`` of a BLOB payload."""
    n = payload[1]
    return bytes(payload[2 : 2 + n]).decode("ascii"), bytes(payload[2 + n :])
