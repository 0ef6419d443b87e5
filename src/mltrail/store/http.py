"""A :class:`~mltrail.store.base.TrackingStore` that talks to an ``mltrail server`` over HTTP.

This is what ``init(store="https://host:port")`` (or ``MLTRAIL_STORE``) opens in the writer
thread. The training loop never waits on it: the SDK spools every event locally, and the
writer hands batches to :meth:`HttpTrackingStore.apply_batch`, which uploads them in the wire
form of :mod:`mltrail.store.wire`. Batches are idempotent by ``(source, start, end)``, so a
retry after a lost response never duplicates anything.

Failure model (what the writer relies on):

- the server cannot be reached, times out, or answers 5xx / 429 → :class:`StoreError`
  (retryable: the writer keeps the spool and retries with backoff, warning once);
- any other error answer becomes the :class:`MltrailError` subclass named by its ``code``
  (401 :class:`AuthenticationError`, 404 :class:`NotFoundError`, 422
  :class:`InvalidArgumentError`, ...), carrying the server's message.

The token comes from ``MLTRAIL_TOKEN`` (or the ``token`` argument); HTTP is
:class:`mltrail._http.ServerClient` (httpx, keep-alive; proxies, CA bundle and redirects as
described there).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from mltrail import errors
from mltrail._validation import normalize_key
from mltrail.entities import Project, RunRecord
from mltrail.errors import StoreError
from mltrail.store.base import ConsoleLine, MetricSeries, RunPage

if TYPE_CHECKING:
    from mltrail.store.batch import Batch, BatchResult
    from mltrail.store.http_artifacts import HttpArtifactStore
    from mltrail.store.http_registry import HttpModelRegistry
    from mltrail.store.registry import StoreLocation

__all__ = ["HttpTrackingStore"]

_RUN_ID_CHARS = re.compile(r"[A-Za-z0-9_.\-]{1,32}")


class HttpTrackingStore:
    """Runs kept by an ``mltrail server``; see the module docstring for the failure model."""

    def __init__(self, uri: str, token: str | None = None, timeout: float = 30.0) -> None:
        from mltrail._http import ServerClient

        self.uri = uri
        self._client = ServerClient(uri, token, timeout)
        self.request = self._client.request

    @classmethod
    def from_location(
        cls, location: StoreLocation, *, migrate: bool | None = None
    ) -> HttpTrackingStore:
        """Open the server a :class:`StoreLocation` names (``migrate`` is the server's
        business: its own database is never migrated by a client)."""
        del migrate
        return cls(location.uri)

    def _json(self, method: str, path: str, **kw: Any) -> Any:
        return self._client.json(method, path, **kw)

    def artifacts(self) -> HttpArtifactStore:
        """Artifact versions, aliases and lineage on the server (shares this connection)."""
        from mltrail.store.http_artifacts import HttpArtifactStore

        return HttpArtifactStore(self._client)

    def model_registry(self) -> HttpModelRegistry:
        """The server's model registry (shares this connection)."""
        from mltrail.store.http_registry import HttpModelRegistry

        return HttpModelRegistry(self._client)

    # -- TrackingStore --------------------------------------------------------------------

    def apply_batch(self, batch: Batch) -> BatchResult:
        from mltrail.store.batch import BatchResult
        from mltrail.store.wire import CONTENT_TYPE, encode_batch

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
        if not _RUN_ID_CHARS.fullmatch(prefix):  # the server refuses such a path segment
            raise errors.NotFoundError(f"no run id starts with {prefix!r}")
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

        key = normalize_key(key)

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
            np.frombuffer(data, dtype="<i8", count=n).astype(np.int64),
            np.frombuffer(data, dtype="<i8", count=n, offset=8 * n).astype(np.int64),
            np.frombuffer(data, dtype="<f8", count=n, offset=16 * n).astype(np.float64),
            key=key,
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
        self._client.close()


def _seg(text: str) -> str:
    return quote(text, safe="")
