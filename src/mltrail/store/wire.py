"""The wire form of a :class:`~mltrail.store.batch.Batch`: what the SDK uploads to a server.

A batch travels as one binary body (``application/x-mltrail-batch``)::

    b"MLTB" | u8 version | u32 header length | header (UTF-8 JSON) | payload

The header holds everything but the bulk: the run id, the batch id ``(source, start, end)``,
run creation, params, tags, heartbeat, status, captured state, console lines, and for each
metric key its point count; blob lengths. The payload holds, per metric key in header order,
the little-endian int64 steps, int64 timestamps and float64 values, then the blobs' bytes.
Decoding costs three ``np.frombuffer`` views per key: a server ingests at memory speed.

The body comes from the network: :func:`decode_batch` trusts nothing. Every field is type
checked, every name and value goes through the same validation as an SDK call
(:mod:`mltrail._validation`), lengths must add up exactly, and any violation raises
:class:`~mltrail.errors.InvalidArgumentError` naming the field.
"""

from __future__ import annotations

import json
import math
import struct
from typing import TYPE_CHECKING, Any

import numpy as np

from mltrail import _strict_json as strict_json
from mltrail import _validation as v
from mltrail.entities import RunStatus
from mltrail.errors import InvalidArgumentError
from mltrail.store.batch import Batch, MetricSeries, RunCreate, StatusChange

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["CONTENT_TYPE", "MAX_HEADER_BYTES", "decode_batch", "encode_batch"]

CONTENT_TYPE = "application/x-mltrail-batch"
MAGIC = b"MLTB"
VERSION = 1
_PREFIX = struct.Struct("<4sBI")
#: The JSON header is small (no metric points); a larger one is refused before parsing.
MAX_HEADER_BYTES = 16 * 1024 * 1024
_MAX_RUN_ID = 32
_MAX_SOURCE = 100
_MAX_STREAM = 8


def encode_batch(batch: Batch) -> bytes:
    """The wire bytes of ``batch`` (see the module docstring)."""
    keys = list(batch.metrics)
    blob_keys = list(batch.blobs)
    header: dict[str, Any] = {
        "run_id": batch.run_id,
        "source": batch.source,
        "start": batch.start,
        "end": batch.end,
        "create": _create_dict(batch.create) if batch.create else None,
        "resume_ms": batch.resume_ms,
        "params": {k: _param_out(val) for k, val in batch.params.items()},
        "tags": batch.tags,
        "project": batch.project,
        "heartbeat_ms": batch.heartbeat_ms,
        "status": (
            {
                "status": str(batch.status.status),
                "end_ms": batch.status.end_ms,
                "only_if_running": batch.status.only_if_running,
            }
            if batch.status
            else None
        ),
        "state": batch.state,
        "console": [list(line) for line in batch.console],
        "metrics": [[k, len(batch.metrics[k])] for k in keys],
        "blobs": [[d, len(batch.blobs[d])] for d in blob_keys],
    }
    head = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    parts = [_PREFIX.pack(MAGIC, VERSION, len(head)), head]
    for k in keys:
        col = batch.metrics[k]
        parts.append(np.ascontiguousarray(col.steps, dtype="<i8").tobytes())
        parts.append(np.ascontiguousarray(col.timestamps, dtype="<i8").tobytes())
        parts.append(np.ascontiguousarray(col.values, dtype="<f8").tobytes())
    parts.extend(batch.blobs[d] for d in blob_keys)
    return b"".join(parts)


def decode_batch(body: bytes) -> Batch:
    """Parse and validate wire bytes into a :class:`Batch`.

    Raises:
        InvalidArgumentError: malformed framing, header, names or values; the message names
            the field.
    """
    if len(body) < _PREFIX.size:
        raise InvalidArgumentError("batch body is shorter than its 9-byte prefix")
    magic, version, head_len = _PREFIX.unpack_from(body)
    if magic != MAGIC:
        raise InvalidArgumentError("batch body does not start with the MLTB magic")
    if version != VERSION:
        raise InvalidArgumentError(f"batch wire version {version} is not supported (want 1)")
    if head_len > MAX_HEADER_BYTES or _PREFIX.size + head_len > len(body):
        raise InvalidArgumentError(f"batch header length {head_len} exceeds the body")
    try:
        # strict: a repeated key or 1e309 is refused naming its place (bare NaN is ours)
        text = body[_PREFIX.size : _PREFIX.size + head_len].decode("utf-8")
        header = strict_json.loads(text, "header", nonfinite=True)
    except strict_json.JsonValueError:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InvalidArgumentError(f"batch header is not valid UTF-8 JSON: {exc}") from None
    if not isinstance(header, dict):
        raise InvalidArgumentError("batch header must be a JSON object")
    return _Decoder(header, memoryview(body)[_PREFIX.size + head_len :]).batch()


class _Decoder:
    def __init__(self, header: dict[str, Any], payload: memoryview) -> None:
        self.h = header
        self.payload = payload
        self.offset = 0

    def batch(self) -> Batch:
        h = self.h
        run_id = _text(h.get("run_id"), "run_id", _MAX_RUN_ID)
        if not run_id:
            raise InvalidArgumentError("run_id must not be empty")
        source = h.get("source")
        if source is not None:
            source = _text(source, "source", _MAX_SOURCE)
        start, end = _int(h.get("start", 0), "start"), _int(h.get("end", 0), "end")
        if start < 0 or end < start:
            raise InvalidArgumentError(f"batch range start={start} end={end} is invalid")
        batch = Batch(run_id=run_id, source=source, start=start, end=end)
        if h.get("create") is not None:
            batch.create = _create(h["create"])
        batch.resume_ms = _opt_int(h.get("resume_ms"), "resume_ms")
        batch.heartbeat_ms = _opt_int(h.get("heartbeat_ms"), "heartbeat_ms")
        for key, value in _obj(h.get("params", {}), "params").items():
            k = v.check_key(key, "param")
            value = _param_in(value)
            if value is not None and not isinstance(value, str | int | float):
                raise InvalidArgumentError(
                    f"param {k!r} value must be a string, number, boolean or null"
                )
            batch.params[k] = v.check_param_value(k, value)
        for key, value in _obj(h.get("tags", {}), "tags").items():
            k = v.check_key(key, "tag")
            batch.tags[k] = v.check_tag_value(k, _text(value, f"tag {k!r} value", 1 << 62))
        if h.get("status") is not None:
            batch.status = _status(h["status"])
        if h.get("project") is not None:
            batch.project = v.check_key(_text(h["project"], "project", 1 << 10), "project")
        for kind, data in _obj(h.get("state", {}), "state").items():
            _text(kind, "state kind", 64)
            batch.state[kind] = _obj(data, f"state[{kind!r}]")
        batch.console = [_console_line(line, i) for i, line in enumerate(_list(h, "console"))]
        for i, entry in enumerate(_list(h, "metrics")):
            if not (isinstance(entry, list) and len(entry) == 2):
                raise InvalidArgumentError(f"metrics[{i}] must be [key, count]")
            key = v.check_key(entry[0])
            n = _int(entry[1], f"metrics[{i}] count")
            if n < 0:
                raise InvalidArgumentError(f"metrics[{i}] count must be >= 0")
            steps = np.frombuffer(self._take(n * 8, f"metric {key!r}"), dtype="<i8")
            stamps = np.frombuffer(self._take(n * 8, f"metric {key!r}"), dtype="<i8")
            values = np.frombuffer(self._take(n * 8, f"metric {key!r}"), dtype="<f8")
            if n and int(steps.min()) < 0:
                raise InvalidArgumentError(f"metric {key!r}: step must be >= 0")
            col = MetricSeries(
                steps.astype(np.int64), stamps.astype(np.int64), values.astype(np.float64)
            )
            old = batch.metrics.get(key)
            batch.metrics[key] = col if old is None else _concat(old, col)
        for i, entry in enumerate(_list(h, "blobs")):
            if not (isinstance(entry, list) and len(entry) == 2):
                raise InvalidArgumentError(f"blobs[{i}] must be [digest, length]")
            digest = _text(entry[0], f"blobs[{i}] digest", 80)
            size = _int(entry[1], f"blobs[{i}] length")
            if size < 0:
                raise InvalidArgumentError(f"blobs[{i}] length must be >= 0")
            data = bytes(self._take(size, f"blob {digest}"))
            _check_blob(digest, data)
            batch.blobs[digest] = data
        if self.offset != len(self.payload):
            raise InvalidArgumentError(
                f"batch payload has {len(self.payload) - self.offset} trailing bytes"
            )
        return batch

    def _take(self, n: int, what: str) -> memoryview:
        if self.offset + n > len(self.payload):
            raise InvalidArgumentError(f"batch payload is truncated inside {what}")
        view = self.payload[self.offset : self.offset + n]
        self.offset += n
        return view


def _concat(a: MetricSeries, b: MetricSeries) -> MetricSeries:
    return MetricSeries(
        np.concatenate([a.steps, b.steps]),
        np.concatenate([a.timestamps, b.timestamps]),
        np.concatenate([a.values, b.values]),
    )


def _check_blob(digest: str, data: bytes) -> None:
    import hashlib

    if not digest.startswith("sha256:"):
        raise InvalidArgumentError(f"blob digest {digest!r} must be sha256:<hex>")
    if hashlib.sha256(data).hexdigest() != digest[7:]:
        raise InvalidArgumentError(f"blob {digest} does not match its bytes")


def _create_dict(c: RunCreate) -> dict[str, Any]:
    return {
        "project": c.project,
        "name": c.name,
        "created_ms": c.created_ms,
        "heartbeat_s": c.heartbeat_s,
        "user": c.user,
        "host": c.host,
        "command": c.command,
        "config": c.config,
    }


def _create(d: object) -> RunCreate:
    obj = _obj(d, "create")
    heartbeat = obj.get("heartbeat_s")
    if (
        isinstance(heartbeat, bool)
        or not isinstance(heartbeat, int | float)
        or not math.isfinite(heartbeat)
        or heartbeat <= 0
    ):
        raise InvalidArgumentError("create.heartbeat_s must be a positive number")
    return RunCreate(
        project=v.check_key(obj.get("project"), "project"),
        name=_text(obj.get("name", ""), "create.name", v.MAX_KEY_BYTES),
        created_ms=_int(obj.get("created_ms"), "create.created_ms"),
        heartbeat_s=float(heartbeat),
        user=_text(obj.get("user", ""), "create.user", v.MAX_KEY_BYTES),
        host=_text(obj.get("host", ""), "create.host", v.MAX_KEY_BYTES),
        command=_text(obj.get("command", ""), "create.command", v.MAX_VALUE_BYTES),
        config=_obj(obj.get("config", {}), "create.config"),
    )


def _status(d: object) -> StatusChange:
    obj = _obj(d, "status")
    try:
        status = RunStatus(str(obj.get("status")))
    except ValueError:
        raise InvalidArgumentError(
            f"status.status {obj.get('status')!r} is not one of {[str(s) for s in RunStatus]}"
        ) from None
    only = obj.get("only_if_running", False)
    if not isinstance(only, bool):
        raise InvalidArgumentError("status.only_if_running must be a boolean")
    return StatusChange(status, _opt_int(obj.get("end_ms"), "status.end_ms"), only)


def _console_line(line: object, i: int) -> tuple[int, str, str]:
    if not (isinstance(line, list) and len(line) == 3):
        raise InvalidArgumentError(f"console[{i}] must be [timestamp_ms, stream, text]")
    ts = _int(line[0], f"console[{i}] timestamp_ms")
    stream = _text(line[1], f"console[{i}] stream", _MAX_STREAM)
    text = _text(line[2], f"console[{i}] text", v.MAX_VALUE_BYTES)
    return ts, stream, text


# JSON has no NaN/inf; params are encoded as tagged floats so they survive strict parsers
def _param_out(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return {"float": repr(value)}
    return value


def _param_in(value: object) -> object:
    if isinstance(value, dict):
        text = value.get("float")
        if len(value) != 1 or text not in ("nan", "inf", "-inf"):
            raise InvalidArgumentError(f"param value {value!r} is not a supported type")
        return float(text)
    return value


def _text(x: object, field: str, limit: int) -> str:
    if not isinstance(x, str):
        raise InvalidArgumentError(f"{field} must be a string, got {type(x).__name__}")
    return v._check_text(x, field, limit)


def _int(x: object, field: str) -> int:
    if isinstance(x, bool) or not isinstance(x, int):
        raise InvalidArgumentError(f"{field} must be an integer, got {type(x).__name__}")
    if not -(2**63) <= x < 2**63:
        raise InvalidArgumentError(f"{field} {x} is outside the 64-bit range")
    return x


def _opt_int(x: object, field: str) -> int | None:
    return None if x is None else _int(x, field)


def _obj(x: object, field: str) -> dict[str, Any]:
    if not isinstance(x, dict):
        raise InvalidArgumentError(f"{field} must be a JSON object, got {type(x).__name__}")
    return x


def _list(h: Mapping[str, Any], field: str) -> list[Any]:
    x = h.get(field, [])
    if not isinstance(x, list):
        raise InvalidArgumentError(f"{field} must be a JSON array, got {type(x).__name__}")
    return x
