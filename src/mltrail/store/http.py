"""A :class:`~mltrail.store.base.TrackingStore` that talks to an ``mltrail server`` over HTTP.

This is what ``init(store="https://host:port")`` (or ``MLTRAIL_STORE``) opens in the writer
thread. The training loop never waits on it: the SDK spools every event locally, and the
writer hands batches to :meth:`HttpTrackingStore.apply_batch`, which uploads them in the wire
form of :mod:`mltrail.events.wire`. Batches are idempotent by ``(source, start, end)``, so a
retry after a lost response never duplicates anything.

Failure model (what the writer relies on):

- the server cannot be reached, times out, or answers 5xx / 429 → :class:`StoreError`
  (retryable: the writer keeps the spool and retries with backoff, warning once);
- any other error answer becomes the :class:`MltrailError` subclass named by its ``code``
  (401 :class:`AuthenticationError`, 404 :class:`NotFoundError`, 422
  :class:`InvalidArgumentError`, ...), carrying the server's message.

The token comes from ``MLTRAIL_TOKEN`` (or the ``token`` argument) and is sent as
``Authorization: Bearer``. HTTP is the standard library's ``http.client`` with one keep-alive
connection per thread: no extra dependency, and nothing heavy imported by the SDK.
"""

from __future__ import annotations

import http.client
import json
import os
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode, urlsplit

from mltrail import errors
from mltrail.entities import Project, RunRecord
from mltrail.errors import InvalidArgumentError, MltrailError, StoreError
from mltrail.store.base import ConsoleLine, MetricSeries, RunPage

if TYPE_CHECKING:
    from mltrail.events.batch import Batch, BatchResult
    from mltrail.store.registry import StoreLocation

__all__ = ["HttpTrackingStore"]

_TIMEOUT_S = 30.0
_RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504, 507})


def _error_classes() -> dict[str, type[MltrailError]]:
    found: dict[str, type[MltrailError]] = {}
    todo: list[type[MltrailError]] = [MltrailError]
    while todo:
        cls = todo.pop()
        found.setdefault(cls.code, cls)
        todo.extend(cls.__subclasses__())
    return found


class HttpTrackingStore:
    """Runs kept by an ``mltrail server``; see the module docstring for the failure model."""

    def __init__(self, uri: str, token: str | None = None, timeout: float = _TIMEOUT_S) -> None:
        parts = urlsplit(uri)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidArgumentError(f"store {uri!r}: expected http(s)://host[:port]")
        self.uri = uri
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

    @classmethod
    def from_location(cls, location: StoreLocation) -> HttpTrackingStore:
        return cls(location.uri)

    # -- plumbing -------------------------------------------------------------------------

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
        body: bytes | None = None,
        content_type: str | None = None,
        accept: str = "application/json",
    ) -> tuple[int, dict[str, str], bytes]:
        """One request; returns ``(status, headers, body)`` for a 2xx answer.

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
        for attempt in (0, 1):
            conn = self._conn()
            try:
                conn.request(method, target, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                status = resp.status
                resp_headers = {k.lower(): v for k, v in resp.getheaders()}
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                self._drop_conn()  # a keep-alive connection the server closed: retry once
                if attempt:
                    raise StoreError(f"server {self.uri} dropped the connection: {exc}") from exc
            except (OSError, http.client.HTTPException) as exc:
                self._drop_conn()
                reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
                raise StoreError(f"server {self.uri} unreachable: {reason}") from exc
        if resp_headers.get("connection", "").lower() == "close":
            self._drop_conn()
        if 200 <= status < 300:
            return status, resp_headers, data
        raise self._error(status, data)

    def _error(self, status: int, data: bytes) -> MltrailError:
        code, message = "", data[:200].decode("utf-8", "replace")
        try:
            err = json.loads(data)["error"]
            code, message = str(err.get("code", "")), str(err.get("message", message))
        except (ValueError, KeyError, TypeError, AttributeError):
            pass
        if status in _RETRYABLE_STATUS:
            return StoreError(f"server {self.uri} answered {status}: {message}")
        cls = self._codes.get(code)
        if cls is None or cls.http_status >= 500:
            cls = {401: errors.AuthenticationError, 403: errors.PermissionDeniedError}.get(
                status, errors.NotFoundError if status == 404 else InvalidArgumentError
            )
        return cls(message)

    def _json(self, method: str, path: str, **kw: Any) -> Any:
        _, _, data = self.request(method, path, **kw)
        try:
            return json.loads(data)
        except ValueError as exc:
            raise StoreError(f"server {self.uri} sent invalid JSON for {path}") from exc

    # -- TrackingStore --------------------------------------------------------------------

    def apply_batch(self, batch: Batch) -> BatchResult:
        from mltrail.events.batch import BatchResult
        from mltrail.events.wire import CONTENT_TYPE, encode_batch

        out = self._json(
            "POST", "/api/v1/ingest", body=encode_batch(batch), content_type=CONTENT_TYPE
        )
        conflicts = {k: (v[0], v[1]) for k, v in out.get("param_conflicts", {}).items()}
        return BatchResult(bool(out["applied"]), conflicts)

    def ingest_position(self, source: str) -> int:
        return int(
            self._json("GET", "/api/v1/ingest/position", query={"source": source})["position"]
        )

    def get_run(self, run_id: str) -> RunRecord:
        return RunRecord.from_dict(self._json("GET", f"/api/v1/runs/{_seg(run_id)}"))

    def resolve_run_id(self, prefix: str) -> str:
        return str(self._json("GET", f"/api/v1/run-ids/{_seg(prefix)}")["run_id"])

    def search_runs(
        self,
        project: str | None = None,
        filter: str | None = None,
        order_by: str | None = None,
        limit: int = 100,
        page_token: str | None = None,
    ) -> RunPage:
        out = self._json(
            "GET",
            "/api/v1/runs",
            query={
                "project": project,
                "filter": filter,
                "order_by": order_by,
                "max_results": limit,
                "page_token": page_token,
            },
        )
        runs = [RunRecord.from_dict(r) for r in out["runs"]]
        return RunPage(runs, out.get("next_page_token"))

    def list_projects(self) -> list[Project]:
        return [Project.from_dict(p) for p in self._json("GET", "/api/v1/projects")["projects"]]

    def metric_history(self, run_id: str, key: str) -> MetricSeries:
        import numpy as np

        _, headers, data = self.request(
            "GET",
            f"/api/v1/runs/{_seg(run_id)}/series",
            query={"key": key, "raw": 1},
            accept="application/octet-stream",
        )
        n = int(headers.get("x-mltrail-points", "-1"))
        if n < 0 or len(data) != 24 * n:
            raise StoreError(f"server {self.uri} sent a malformed series for {key!r}")
        return MetricSeries(
            key,
            np.frombuffer(data, dtype="<i8", count=n).astype(np.int64),
            np.frombuffer(data, dtype="<i8", count=n, offset=8 * n).astype(np.int64),
            np.frombuffer(data, dtype="<f8", count=n, offset=16 * n).astype(np.float64),
        )

    def get_state(self, run_id: str) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = self._json("GET", f"/api/v1/runs/{_seg(run_id)}/state")
        return out

    def get_blob(self, digest: str) -> bytes:
        return self.request("GET", f"/api/v1/blobs/{_seg(digest)}", accept="*/*")[2]

    def read_console(self, run_id: str, tail: int | None = None) -> list[ConsoleLine]:
        out = self._json("GET", f"/api/v1/runs/{_seg(run_id)}/console", query={"tail": tail})
        return [ConsoleLine(x["timestamp_ms"], x["stream"], x["text"]) for x in out["lines"]]

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()


def _seg(text: str) -> str:
    return quote(text, safe="")
