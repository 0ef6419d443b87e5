"""Request body limits and content types, enforced before anything parses a body.

:class:`BodyLimitMiddleware` sits between the auth middleware and the app:

- a compressed body (``Content-Encoding`` other than ``identity``) is 415: nothing inflates
  a body here, so a gzip bomb cannot cost memory;
- ``Content-Length`` over the route's limit is 413 at once, before a byte is read;
- JSON routes (``/api`` POST/PUT/PATCH) must send ``application/json`` and the batch ingest
  route ``application/x-mltrail-batch`` (415 otherwise); their bodies are read here up to the
  limit (413 past it, also for chunked bodies without a length) and handed on whole;
- JSON bodies are parsed strictly here (:mod:`mltrail._strict_json`): a number outside
  float64 (``1e309``, which Python reads as infinity), a bare ``NaN``/``Infinity`` and a
  repeated key are 422 naming the field, before a handler could store them; text that is not
  JSON at all is left to FastAPI's own error;
- uploads (``PUT .../files``, ``PUT /api/v1/objects/...``) stream through, counted: past the
  limit the handler's next read raises a 413.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mltrail._strict_json import JsonValueError, loads
from mltrail._validation import MAX_KEY_BYTES, MAX_VALUE_BYTES
from mltrail.server.responses import send_error

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodyLimitMiddleware", "Limits"]

_MIB = 1024 * 1024
_UPLOAD_PATHS = (
    re.compile(r"^/api/v1/runs/[^/]+/files$"),
    re.compile(r"^/api/v1/objects/.+$"),
    re.compile(r"^/api/2\.0/mlflow-artifacts/artifacts/.+$"),  # MLflow's artifact proxy
)
_BATCH_TYPE = "application/x-mltrail-batch"
#: JSON bodies larger than this are checked in a worker thread, off the event loop
_THREAD_JSON_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    """Size limits of the server (bytes unless said otherwise).

    Attributes:
        max_upload_bytes: one uploaded run file (64 MiB).
        max_object_bytes: one content-addressed object (data and artifacts; 16 GiB: streamed
            to disk, never held in memory).
        max_batch_bytes: one ingest batch body (16 MiB).
        max_json_bytes: any other request body (16 MiB).
        max_points_per_call: metric points in one JSON ``/log`` call (10,000).
        max_key_bytes, max_value_bytes: names and param/tag values, as in
            :mod:`mltrail._validation` (the same for REST and the SDK).
    """

    max_upload_bytes: int = 64 * _MIB
    max_object_bytes: int = 16 * 1024 * _MIB
    max_batch_bytes: int = 16 * _MIB
    max_json_bytes: int = 16 * _MIB
    max_points_per_call: int = 10_000
    max_key_bytes: int = MAX_KEY_BYTES
    max_value_bytes: int = MAX_VALUE_BYTES


class _TooLarge(Exception):
    pass


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _media_type(scope: Scope) -> str:
    raw = _header(scope, b"content-type") or ""
    return raw.split(";", 1)[0].strip().lower()


class BodyLimitMiddleware:
    """See the module docstring."""

    def __init__(self, app: ASGIApp, limits: Limits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        encoding = (_header(scope, b"content-encoding") or "identity").strip().lower()
        if encoding not in ("", "identity"):
            await send_error(
                send, 415, "unsupported_media_type", "compressed request bodies are not accepted"
            )
            return
        upload = method == "PUT" and any(p.match(path) for p in _UPLOAD_PATHS)
        api_body = path.startswith("/api/") and method in ("POST", "PUT", "PATCH") and not upload
        if upload:
            limit = (
                self.limits.max_object_bytes
                if path.startswith("/api/v1/objects/")
                else self.limits.max_upload_bytes
            )
        elif path == "/api/v1/ingest":
            limit = self.limits.max_batch_bytes
        else:
            limit = self.limits.max_json_bytes
        length = _header(scope, b"content-length")
        if length is not None:
            if not length.strip().isdigit():
                await send_error(send, 400, "bad_request", "Content-Length is not a number")
                return
            if int(length) > limit:
                await _too_large(send, limit)
                return
        if api_body:
            wanted = _BATCH_TYPE if path == "/api/v1/ingest" else "application/json"
            if _media_type(scope) != wanted:
                await send_error(
                    send,
                    415,
                    "unsupported_media_type",
                    f"{method} {path} takes Content-Type: {wanted}",
                )
                return
            try:
                body = await _read_all(receive, limit)
            except _TooLarge:
                await _too_large(send, limit)
                return
            if body is None:  # the client went away
                return
            if wanted == "application/json":
                refused = await _strict_json_error(body)
                if refused is not None:
                    await send_error(
                        send, 422, "invalid_argument", str(refused), field=refused.field
                    )
                    return
            await self.app(scope, _replay(body, receive), send)
            return
        await self.app(scope, _counting(receive, limit), send)


async def _strict_json_error(body: bytes) -> JsonValueError | None:
    """What :func:`mltrail._strict_json.loads` refuses in ``body``, if anything."""
    if not body:
        return None
    if len(body) <= _THREAD_JSON_BYTES:
        return _check_json(body)
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(_check_json, body)


def _check_json(body: bytes) -> JsonValueError | None:
    try:
        loads(body)
    except JsonValueError as exc:
        return exc
    except (ValueError, RecursionError):  # not JSON at all: FastAPI answers that one
        return None
    return None


async def _too_large(send: Send, limit: int) -> None:
    await send_error(
        send,
        413,
        "payload_too_large",
        f"request body is over the limit of {limit} bytes",
        ((b"connection", b"close"),),
    )


async def _read_all(receive: Receive, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _counting(receive: Receive, limit: int) -> Receive:
    size = 0

    async def counted() -> Message:
        nonlocal size
        message = await receive()
        if message["type"] == "http.request":
            size += len(message.get("body", b""))
            if size > limit:
                from starlette.exceptions import HTTPException

                raise HTTPException(413, f"request body is over the limit of {limit} bytes")
        return message

    return counted
