"""The native REST API under ``/api/v1`` (see docs/rest-api.md, the contract).

Handlers are thin: they check who may see what (project-scoped tokens see one project; a run
of another project is 404 before anything is written), build :class:`Batch` objects for every
write (so REST and the SDK go through the same ``apply_batch``), and answer JSON with
non-finite floats as strings. Store calls block, so plain ``def`` handlers run in the
thread pool; the ones that stream bodies are ``async`` and push store calls to threads.
"""

from __future__ import annotations

import math
import re
import time
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from mltrail import _validation as v
from mltrail.entities import RunRecord, RunStatus, json_safe
from mltrail.errors import (
    BadPageTokenError,
    InvalidArgumentError,
    NotFoundError,
    ParamConflictError,
    PayloadTooLargeError,
    RunFinishedError,
)
from mltrail.server import models as m
from mltrail.server.auth import principal_of
from mltrail.server.filestore import check_digest
from mltrail.server.paths import logical_path
from mltrail.server.responses import FILE_CSP
from mltrail.server.scoping import read_blob, visible_run_ids
from mltrail.server.scoping import resolve_run_id as resolve_visible_run_id
from mltrail.server.series import chart, pack_binary, raw_page
from mltrail.store.batch import Batch, MetricSeries, RunCreate, StatusChange
from mltrail.store.optional import HasRunFiles

if TYPE_CHECKING:
    from mltrail.server.filestore import FileStore
    from mltrail.server.limits import Limits
    from mltrail.store.base import TrackingStore
    from mltrail.store.run_files import RunFiles

__all__ = ["ERROR_RESPONSES", "BadPageTokenError", "router"]

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": m.ErrorBody, "description": what}
    for status, what in (
        (400, "bad request (malformed body, unsafe path, digest mismatch, filter syntax)"),
        (401, "missing or invalid token"),
        (403, "the token's scope does not allow this"),
        (404, "not found (or in a project the token cannot see)"),
        (409, "conflict (param re-logged with another value, run finished, ambiguous id)"),
        (500, "internal error (no details are given; the server logs them)"),
        (413, "body or batch over its limit"),
        (415, "wrong content type"),
        (422, "validation error; names the field"),
        (503, "the store is unavailable"),
    )
}
router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES)

RUN_ID_PATTERN = r"^[A-Za-z0-9_.\-]{1,32}$"
RunIdPath = Annotated[str, Path(pattern=RUN_ID_PATTERN, description="the full run id")]
_MAX_RESULTS = 10_000


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _store(request: Request) -> TrackingStore:
    store: TrackingStore = request.app.state.store
    return store


def _json(obj: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(json_safe(obj), status_code=status)


def _run(request: Request, run_id: str) -> RunRecord:
    """The run, if the principal may see it; 404 alike for missing and foreign runs."""
    record = _store(request).get_run(run_id)
    if not principal_of(request).can_see(record.project):
        raise NotFoundError(f"run {run_id!r} does not exist")
    return record


def visible_run(request: Request, run_id: RunIdPath) -> RunRecord:
    """Dependency: the path's run, checked against the principal's project (before any write)."""
    return _run(request, run_id)


VisibleRun = Annotated[RunRecord, Depends(visible_run)]


def _key(value: str, kind: str = "metric") -> str:
    return v.check_key(value, kind)


# -- health ----------------------------------------------------------------------------------

health_router = APIRouter()


@health_router.get("/health", response_model=m.HealthOut, tags=["health"])
def health() -> dict[str, str]:
    """Liveness: no auth, no store access."""
    from mltrail import __version__

    return {"status": "ok", "version": __version__}


# -- projects and runs -----------------------------------------------------------------------


@router.get("/projects", response_model=m.ProjectsOut, tags=["runs"])
def list_projects(request: Request) -> JSONResponse:
    """Every project the token can see, with run counts."""
    who = principal_of(request)
    projects = [p for p in _store(request).list_projects() if who.can_see(p.name)]
    return _json({"projects": [p.to_dict() for p in projects]})


def _params_of(body: m.RunCreateBody) -> dict[str, Any]:
    """The config flattened like the SDK does, plus the params; a key in both must agree."""
    params = v.flatten_params(body.config)
    clash = [k for k, x in body.params.items() if k in params and not _same_param(params[k], x)]
    if clash:
        raise InvalidArgumentError(
            f"param {clash[0]!r} is given in config as {params[clash[0]]!r} and in params as "
            f"{body.params[clash[0]]!r}; give one value"
        )
    return {**params, **body.params}


@router.post("/runs", status_code=201, response_model=m.RunOut, tags=["runs"])
def create_run(request: Request, body: m.RunCreateBody) -> JSONResponse:
    """Create a run (status running); config is flattened into params like the SDK does."""
    from mltrail.ids import new_run_id

    if not principal_of(request).can_see(body.project):
        raise NotFoundError(f"project {body.project!r} does not exist")
    now = _now_ms()
    name = body.name or time.strftime("run-%Y%m%d-%H%M%S", time.localtime(now / 1000))
    batch = Batch(
        run_id=new_run_id(),
        create=RunCreate(
            project=body.project,
            name=name,
            created_ms=now,
            heartbeat_s=body.heartbeat_s,
            user=body.user,
            host=body.host,
            command=body.command,
            config=body.config,
        ),
        params=_params_of(body),
        tags=dict(body.tags),
    )
    store = _store(request)
    store.apply_batch(batch)
    return _json(store.get_run(batch.run_id).to_dict(), 201)


@router.get("/runs", response_model=m.RunsPage, tags=["runs"])
def search_runs(
    request: Request,
    project: Annotated[str | None, Query(description="one project (by name)")] = None,
    filter: Annotated[  # noqa: A002 - the contract's name
        str | None, Query(max_length=10_000, description="the filter language")
    ] = None,
    order_by: Annotated[str | None, Query(max_length=1_000)] = None,
    max_results: Annotated[
        int, Query(ge=1, description=f"page size; above {_MAX_RESULTS} is clamped")
    ] = 100,
    page_token: Annotated[str | None, Query(max_length=10_000)] = None,
) -> JSONResponse:
    """Search runs with the filter language, one page at a time."""
    who = principal_of(request)
    if project is not None:
        project = _key(project, "project")
    if who.project is not None:
        if project is not None and project != who.project:
            return _json({"runs": [], "next_page_token": None})
        project = who.project
    for text, what in ((filter, "filter"), (order_by, "order_by"), (page_token, "page_token")):
        if text is not None:
            v._check_text(text, what, 1 << 20)
    try:
        page = _store(request).search_runs(
            project=project,
            filter=filter or None,
            order_by=order_by or None,
            limit=min(max_results, _MAX_RESULTS),
            page_token=page_token or None,
        )
    except InvalidArgumentError as exc:
        if page_token and str(exc).startswith("page_token"):
            raise BadPageTokenError(str(exc)) from None
        raise
    return _json({"runs": [r.to_dict() for r in page.runs], "next_page_token": page.next_token})


@router.get("/runs/{run_id}", response_model=m.RunOut, tags=["runs"])
def get_run(run: VisibleRun) -> JSONResponse:
    """One run by its full id."""
    return _json(run.to_dict())


@router.get("/run-ids/{prefix}", response_model=m.RunIdOut, tags=["runs"])
def resolve_run_id(
    request: Request, prefix: Annotated[str, Path(pattern=RUN_ID_PATTERN)]
) -> JSONResponse:
    """The full id of the one run whose id starts with ``prefix``.

    A project-scoped token's prefix is matched among its project's runs only: an ambiguity
    or a miss never depends on (or names) another project's runs.
    """
    return _json({"run_id": resolve_visible_run_id(principal_of(request), _store(request), prefix)})


@router.patch("/runs/{run_id}", response_model=m.RunOut, tags=["runs"])
def update_run(request: Request, run: VisibleRun, body: m.PatchRunBody) -> JSONResponse:
    """End a run: finished, failed or killed (``end_ms`` defaults to now)."""
    end_ms = body.end_ms if body.end_ms is not None else _now_ms()
    batch = Batch(run_id=run.run_id, status=StatusChange(RunStatus(body.status), end_ms))
    store = _store(request)
    store.apply_batch(batch)
    return _json(store.get_run(run.run_id).to_dict())


def _same_param(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (
            a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
        )
    return bool(a == b)


@router.post("/runs/{run_id}/log", response_model=m.LogOut, tags=["runs"])
def log_to_run(request: Request, run: VisibleRun, body: m.LogBody) -> JSONResponse:
    """Log metrics (at most 10,000 points), params and tags in one atomic batch.

    A param already logged with another value is 409 and nothing is written.
    """
    import numpy as np

    limits: Limits = request.app.state.limits
    if len(body.metrics) > limits.max_points_per_call:
        raise PayloadTooLargeError(
            f"metrics has {len(body.metrics)} points; the limit is "
            f"{limits.max_points_per_call} per call (split it, or use the batch ingest)"
        )
    if run.status in (RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED, RunStatus.PRUNED):
        raise RunFinishedError(f"run {run.run_id} has {run.status}; it takes no more data")
    clash = {
        k: (run.params[k], val)
        for k, val in body.params.items()
        if k in run.params and not _same_param(run.params[k], val)
    }
    if clash:
        raise ParamConflictError(_conflict_message(clash))
    now = _now_ms()
    grouped: dict[str, tuple[list[int], list[int], list[float]]] = {}
    for point in body.metrics:
        steps, stamps, values = grouped.setdefault(point.key, ([], [], []))
        steps.append(point.step)
        stamps.append(now if point.timestamp_ms is None else point.timestamp_ms)
        values.append(point.value)
    batch = Batch(
        run_id=run.run_id,
        params=dict(body.params),
        tags=dict(body.tags),
        metrics={
            key: MetricSeries(
                np.asarray(s, dtype=np.int64),
                np.asarray(t, dtype=np.int64),
                np.asarray(x, dtype=np.float64),
            )
            for key, (s, t, x) in grouped.items()
        },
        heartbeat_ms=now,
    )
    result = _store(request).apply_batch(batch)
    if result.param_conflicts:  # a concurrent writer won the race for these params
        raise ParamConflictError(
            _conflict_message(result.param_conflicts) + " (the rest of the call was applied)"
        )
    return _json({"points": len(body.metrics), "params": len(body.params), "tags": len(body.tags)})


def _conflict_message(clash: dict[str, tuple[Any, Any]]) -> str:
    shown = ", ".join(
        f"{k!r}: stored {a!r}, offered {b!r}" for k, (a, b) in list(clash.items())[:5]
    )
    return f"params are immutable; already logged with another value: {shown}"


# -- batch ingest ----------------------------------------------------------------------------

_BATCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-mltrail-batch": {"schema": {"type": "string", "format": "binary"}}
        },
    }
}


def _authorize_batch(request: Request, batch: Batch) -> None:
    who = principal_of(request)
    if who.project is None:
        return
    store = _store(request)
    try:
        project = store.get_run(batch.run_id).project
    except NotFoundError:
        if batch.create is None:
            raise
        project = batch.create.project
    if not who.can_see(project):
        raise NotFoundError(f"run {batch.run_id!r} does not exist")
    if batch.project is not None and not who.can_see(batch.project):
        raise NotFoundError(
            f"project {batch.project!r} does not exist (a project-scoped token moves runs "
            "only within its own project)"
        )
    if batch.source is not None and not batch.source.startswith(f"{batch.run_id}."):
        raise NotFoundError(
            f"source {batch.source!r} is not a spool of run {batch.run_id!r} "
            "(project-scoped tokens write only their own runs' spools)"
        )


@router.post("/ingest", response_model=m.IngestOut, tags=["ingest"], openapi_extra=_BATCH_BODY)
async def ingest(request: Request) -> JSONResponse:
    """Apply one SDK batch (``mltrail.store.wire`` encoding); idempotent by batch id."""
    from mltrail.store.wire import decode_batch

    body = await request.body()
    batch = await run_in_threadpool(decode_batch, body)
    store = _store(request)

    def apply() -> dict[str, Any]:
        _authorize_batch(request, batch)
        result = store.apply_batch(batch)
        position = store.ingest_position(batch.source) if batch.source is not None else 0
        return {
            "applied": result.applied,
            "position": position,
            "param_conflicts": {k: [a, b] for k, (a, b) in result.param_conflicts.items()},
        }

    return _json(await run_in_threadpool(apply))


@router.get("/ingest/position", response_model=m.PositionOut, tags=["ingest"])
def ingest_position(
    request: Request, source: Annotated[str, Query(min_length=1, max_length=100)]
) -> JSONResponse:
    """How far the store has applied the spool ``source`` (bytes; 0 when unknown)."""
    v._check_text(source, "source", 100)
    who = principal_of(request)
    store = _store(request)
    run_id = source.partition(".")[0]
    if who.project is not None and not visible_run_ids(who, store, [run_id]):
        return _json({"position": 0})  # another project's spool reads as an unknown one
    return _json({"position": store.ingest_position(source)})


# -- series, state, console, blobs -----------------------------------------------------------

_SERIES_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "JSON buckets or points; with Accept: application/octet-stream and "
        "raw=1 the whole series as int64 steps, int64 timestamps, float64 values",
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/SeriesOut"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


@router.get(
    "/runs/{run_id}/series",
    response_model=m.SeriesOut,
    responses=_SERIES_RESPONSES,
    tags=["metrics"],
)
def metric_series(
    request: Request,
    run: VisibleRun,
    key: Annotated[str, Query(min_length=1)],
    points: Annotated[int, Query(ge=1, le=10_000, description="buckets")] = 1000,
    raw: Annotated[bool, Query(description="raw points, paginated")] = False,
    step_min: Annotated[int | None, Query(ge=0, le=m.MAX_INT64)] = None,
    step_max: Annotated[int | None, Query(ge=0, le=m.MAX_INT64)] = None,
    offset: Annotated[int, Query(ge=0, le=m.MAX_INT64)] = 0,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
    accept: Annotated[str | None, Header()] = None,
) -> Response:
    """A metric series: min/max buckets by step range, or raw points (paginated / binary)."""
    if not raw:  # from the store's chart summaries: O(chunks in range + points drawn)
        return _json(chart(_store(request), run.run_id, _key(key), points, step_min, step_max))
    series = _store(request).metric_history(run.run_id, _key(key))
    if accept is not None and "application/octet-stream" in accept:
        body, n = pack_binary(series, step_min, step_max)
        return Response(
            body, media_type="application/octet-stream", headers={"X-Mltrail-Points": str(n)}
        )
    return _json(raw_page(series, offset, limit, step_min, step_max))


@router.get("/runs/{run_id}/state", tags=["runs"])
def run_state(request: Request, run: VisibleRun) -> JSONResponse:
    """The captured state of the run by kind (code, environment, hardware, ...)."""
    return _json(_store(request).get_state(run.run_id))


@router.get("/runs/{run_id}/console", response_model=m.ConsoleOut, tags=["runs"])
def run_console(
    request: Request,
    run: VisibleRun,
    tail: Annotated[int, Query(ge=0, le=100_000, description="last N lines (matching q)")] = 1000,
    q: Annotated[str | None, Query(max_length=1000, description="case-insensitive text")] = None,
) -> JSONResponse:
    """The run's console lines: the last ``tail`` ones, those containing ``q`` when given."""
    store = _store(request)
    if q:
        v._check_text(q, "q", 4000)
        needle = q.casefold()
        found = [x for x in store.read_console(run.run_id) if needle in x.text.casefold()]
        lines = found[len(found) - tail :] if tail else []
    else:
        lines = store.read_console(run.run_id, tail=tail) if tail else []
    return _json(
        {
            "lines": [
                {"timestamp_ms": x.timestamp_ms, "stream": x.stream, "text": x.text} for x in lines
            ]
        }
    )


_DIGEST_PATH = r"^sha256:[0-9a-f]{64}$"
_BYTES_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
    }
}


@router.get(
    "/blobs/{digest}",
    response_class=Response,
    responses=_BYTES_RESPONSE,
    tags=["runs"],
)
def get_blob(request: Request, digest: Annotated[str, Path(pattern=_DIGEST_PATH)]) -> Response:
    """A captured-state blob (an uncommitted diff, a lock file) by its sha256 digest.

    A project-scoped token gets it only if a run of its project carried it (else 404, as
    for a missing blob): knowing a digest is not a permission.
    """
    data = read_blob(principal_of(request), _store(request), digest)
    return Response(
        data,
        media_type="application/octet-stream",
        headers={"Content-Security-Policy": FILE_CSP, "Cache-Control": "private, max-age=3600"},
    )


# -- run files -------------------------------------------------------------------------------

_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}
PathQuery = Annotated[str, Query(min_length=1, description="logical path, e.g. logs/console.txt")]


def _run_files(request: Request) -> RunFiles:
    store = _store(request)
    if not isinstance(store, HasRunFiles):
        raise NotFoundError("this store keeps no run files")
    return store.run_files()


@router.put(
    "/runs/{run_id}/files",
    status_code=201,
    response_model=m.FileOut,
    tags=["files"],
    openapi_extra=_UPLOAD_BODY,
)
async def upload_file(
    request: Request,
    run: VisibleRun,
    path: PathQuery,
    x_content_digest: Annotated[
        str, Header(pattern=_DIGEST_PATH, description="sha256:<hex> of the body")
    ],
) -> JSONResponse:
    """Upload a run file; stored by its verified digest, never under the client's path."""
    name = logical_path(path)
    check_digest(x_content_digest, "X-Content-Digest")
    length = request.headers.get("content-length")
    filestore: FileStore = request.app.state.filestore
    limits: Limits = request.app.state.limits
    digest, size = await filestore.put(
        request.stream(),
        x_content_digest,
        expected_size=int(length) if length and length.isdigit() else None,
        max_bytes=limits.max_upload_bytes,
    )
    record = await run_in_threadpool(_run_files(request).put, run.run_id, name, digest, size)
    return _json(record.to_dict(), 201)


@router.get("/runs/{run_id}/files", response_model=m.FilesOut, tags=["files"])
def list_files(request: Request, run: VisibleRun) -> JSONResponse:
    """The run's files by logical path."""
    return _json({"files": [f.to_dict() for f in _run_files(request).list(run.run_id)]})


_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


@router.get(
    "/runs/{run_id}/files/content",
    response_class=Response,
    responses=_BYTES_RESPONSE,
    tags=["files"],
)
def download_file(request: Request, run: VisibleRun, path: PathQuery) -> Response:
    """The bytes of one run file (as an attachment; nothing in it can run in a browser)."""
    from fastapi.responses import FileResponse

    record = _run_files(request).get(run.run_id, logical_path(path))
    filestore: FileStore = request.app.state.filestore
    disk = filestore.open_path(record.digest, record.size)
    filename = _SAFE_NAME.sub("_", record.path.rsplit("/", 1)[-1])[:100] or "file"
    return FileResponse(
        disk,
        media_type="application/octet-stream",
        headers={
            "Content-Security-Policy": FILE_CSP,
            "Content-Disposition": f'attachment; filename="{filename}"',
            "X-Content-Digest": record.digest,
        },
    )
