"""A small HTTP client for an ``mltrail server``: keep-alive connections, errors as ours.

Shared by the tracking store over HTTP (:mod:`mltrail.store.http`) and the object DB over HTTP
(:mod:`mltrail.objects.http`). It is the standard library's ``http.client`` with one keep-alive
connection per thread, so the SDK needs no HTTP dependency and imports nothing heavy.

Failure model:

- the server cannot be reached, times out, or answers 5xx / 429 → :class:`StoreError`
  (retryable: callers back off and try again; nothing was applied);
- any other error answer becomes the :class:`MltrailError` subclass named by the body's
  ``error.code`` (401 :class:`AuthenticationError`, 404 :class:`NotFoundError`, 422
  :class:`InvalidArgumentError`, ...), carrying the server's message.

The token comes from the ``token`` argument or ``MLTRAIL_TOKEN`` and is sent as
``Authorization: Bearer``.
"""

from __future__ import annotations

import functools
import http.client
import json
import os
import threading
import weakref
from typing import IO, Any
from urllib.parse import urlencode, urlsplit

from mltrail import errors
from mltrail.errors import InvalidArgumentError, MltrailError, StoreError

__all__ = ["ServerClient"]

_TIMEOUT_S = 30.0
_RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504, 507})
_CHUNK = 1 << 20


@functools.cache
def _error_classes() -> dict[str, type[MltrailError]]:
    found: dict[str, type[MltrailError]] = {}
    todo: list[type[MltrailError]] = [MltrailError]
    while todo:
        cls = todo.pop()
        found.setdefault(cls.code, cls)
        todo.extend(cls.__subclasses__())
    return found


class ServerClient:
    """Requests to one server; thread-safe (a connection per thread). See the module doc."""

    def __init__(self, url: str, token: str | None = None, timeout: float = _TIMEOUT_S) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidArgumentError(f"server {url!r}: expected http(s)://host[:port]")
        self.url = url
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._base = parts.path.rstrip("/")
        self._token = token if token is not None else os.environ.get("MLTRAIL_TOKEN", "")
        self._timeout = timeout
        self._local = threading.local()
        self._all: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._codes = _error_classes()
        # a client dropped without close() (an ODB made for one transfer) closes its sockets
        weakref.finalize(self, _close_all, self._all, self._lock)

    def _conn(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self._https:
                conn = http.client.HTTPSConnection(self._host, self._port, timeout=self._timeout)
            else:
                conn = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def _drop_conn(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
            with self._lock:
                if conn in self._all:
                    self._all.remove(conn)

    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: bytes | IO[bytes] | None = None,
        content_type: str | None = None,
        accept: str = "application/json",
        sink: IO[bytes] | None = None,
        ok_404: bool = False,
    ) -> tuple[int, dict[str, str], bytes]:
        """One request; returns ``(status, headers, body)`` for a 2xx answer.

        Args:
            body: bytes, or a seekable binary file (streamed; its size is sent as
                ``Content-Length``).
            sink: stream a 2xx response body into this file instead of returning it.
            ok_404: return a 404 answer instead of raising (``HEAD`` existence checks).

        Raises:
            StoreError: unreachable, timed out, or a 5xx/429 answer (retryable).
            MltrailError: the error the server named, for other 4xx answers.
        """
        target = self._base + path
        if query:
            target += "?" + urlencode({k: v for k, v in query.items() if v is not None})
        headers = {"Accept": accept}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        if content_type:
            headers["Content-Type"] = content_type
        start = None
        if body is not None and not isinstance(body, bytes):
            start = body.tell()
            headers["Content-Length"] = str(os.fstat(body.fileno()).st_size - start)
        for attempt in (0, 1):
            conn = self._conn()
            try:
                if start is not None and not isinstance(body, bytes | None):
                    body.seek(start)
                conn.request(method, target, body=body, headers=headers)
                resp = conn.getresponse()
                status = resp.status
                resp_headers = {k.lower(): v for k, v in resp.getheaders()}
                if sink is not None and 200 <= status < 300:
                    while chunk := resp.read(_CHUNK):
                        sink.write(chunk)
                    data = b""
                else:
                    data = resp.read()
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                self._drop_conn()  # a keep-alive connection the server closed: retry once
                if attempt or sink is not None:
                    raise StoreError(f"server {self.url} dropped the connection: {exc}") from exc
            except (OSError, http.client.HTTPException) as exc:
                self._drop_conn()
                reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
                raise StoreError(f"server {self.url} unreachable: {reason}") from exc
        if resp_headers.get("connection", "").lower() == "close":
            self._drop_conn()
        if 200 <= status < 300 or (ok_404 and status == 404):
            return status, resp_headers, data
        raise self._error(status, data)

    def json(self, method: str, path: str, **kw: Any) -> Any:
        """:meth:`request` and parse the JSON answer."""
        _, _, data = self.request(method, path, **kw)
        try:
            return json.loads(data)
        except ValueError as exc:
            raise StoreError(f"server {self.url} sent invalid JSON for {path}") from exc

    def _error(self, status: int, data: bytes) -> MltrailError:
        code, message = "", data[:200].decode("utf-8", "replace")
        try:
            err = json.loads(data)["error"]
            code, message = str(err.get("code", "")), str(err.get("message", message))
        except (ValueError, KeyError, TypeError, AttributeError):
            pass
        cls = self._codes.get(code)
        if status in _RETRYABLE_STATUS and (cls is None or not issubclass(cls, StoreError)):
            return StoreError(f"server {self.url} answered {status}: {message}")
        if cls is None:
            cls = {401: errors.AuthenticationError, 403: errors.PermissionDeniedError}.get(
                status, errors.NotFoundError if status == 404 else InvalidArgumentError
            )
        return cls(message)

    def close(self) -> None:
        """Close every connection (the client stays usable: it reconnects on demand)."""
        _close_all(self._all, self._lock)
        self._local = threading.local()


def _close_all(conns: list[http.client.HTTPConnection], lock: threading.Lock) -> None:
    with lock:
        todo = conns[:]
        conns.clear()
    for conn in todo:
        conn.close()
