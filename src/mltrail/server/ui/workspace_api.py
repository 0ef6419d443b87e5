"""JSON routes of the project workspace (``/api/v1/ui/projects/{project}/...``).

- ``GET .../series?key=K&runs=ID,ID,...``: one panel's charts of many runs in one request,
  each the downsampled min/max buckets the series endpoint answers (never a whole series);
  a run of another project, a missing run or a run without the key is ``null``;
- ``GET/PUT/DELETE .../views[/{name}]``: the project's saved views (named workspace
  layouts), kept by stores with :class:`~mltrail.store.ui_views.HasUiViews`.

A project the token may not see answers 404 like a missing one; writing a view needs the
write scope (the security middleware refuses a PUT or DELETE of a read-only token).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from mltrail.errors import InvalidArgumentError, MltrailError
from mltrail.server.ui import _access
from mltrail.server.ui._queries import require_project

if TYPE_CHECKING:
    from mltrail.store.base import TrackingStore
    from mltrail.store.ui_views import SavedView, UiViews

__all__ = ["MAX_PANEL_RUNS", "ViewIn", "ViewOut", "router"]

router = APIRouter(prefix="/api/v1/ui/projects", tags=["ui"])

#: runs one panel request may ask for (the workspace asks in chunks of this many)
MAX_PANEL_RUNS = 200
_ProjectName = Annotated[str, Path(min_length=1, max_length=250)]
_ViewName = Annotated[str, Path(min_length=1, max_length=120)]


class ViewOut(BaseModel):
    """A saved view: its name, its document, when and by whom it was last saved."""

    name: str
    spec: dict[str, Any]
    updated_ms: int
    updated_by: str


class ViewIn(BaseModel):
    """The body of ``PUT .../views/{name}``: the workspace state as a JSON object."""

    spec: dict[str, Any] = Field(description="the workspace state (panels, hidden runs, table)")


def _checked(request: Request, project: str) -> TrackingStore:
    store: TrackingStore = request.app.state.store
    _access.check_project(request, project)
    require_project(store, project)
    return store


def _views(store: TrackingStore) -> UiViews:
    from mltrail.store.ui_views import HasUiViews

    if not isinstance(store, HasUiViews):
        raise InvalidArgumentError("views: this store does not keep saved views")
    return store.ui_views()


def _out(view: SavedView) -> ViewOut:
    spec = json.loads(view.spec)
    return ViewOut(
        name=view.name,
        spec=spec if isinstance(spec, dict) else {},
        updated_ms=view.updated_ms,
        updated_by=view.updated_by,
    )


@router.get("/{project}/views", response_model=list[ViewOut])
def list_views(request: Request, project: _ProjectName) -> list[ViewOut]:
    """The project's saved views, by name."""
    return [_out(v) for v in _views(_checked(request, project)).list_views(project)]


@router.get("/{project}/views/{name}", response_model=ViewOut)
def get_view(request: Request, project: _ProjectName, name: _ViewName) -> ViewOut:
    """One saved view (404 when missing)."""
    return _out(_views(_checked(request, project)).get_view(project, name))


@router.put("/{project}/views/{name}", response_model=ViewOut)
def put_view(
    request: Request, project: _ProjectName, name: _ViewName, body: Annotated[ViewIn, Body()]
) -> ViewOut:
    """Create or replace a saved view (write scope; 64 KB of JSON, 200 views a project)."""
    from mltrail.server.auth import principal_of

    spec = json.dumps(body.spec, separators=(",", ":"), allow_nan=False)
    actor = principal_of(request).name
    return _out(_views(_checked(request, project)).save_view(project, name, spec, actor))


@router.delete("/{project}/views/{name}", status_code=204)
def delete_view(request: Request, project: _ProjectName, name: _ViewName) -> Response:
    """Remove a saved view (write scope; 404 when missing)."""
    from mltrail.errors import NotFoundError

    if not _views(_checked(request, project)).delete_view(project, name):
        raise NotFoundError(f"no view named {name!r} in project {project!r}")
    return Response(status_code=204)


def _run_projects(store: TrackingStore, ids: list[str]) -> dict[str, str]:
    from mltrail.store.optional import HasScopedReads

    if isinstance(store, HasScopedReads):
        return store.scoped_reads().run_projects(ids)
    found: dict[str, str] = {}
    for run_id in ids:
        try:
            found[run_id] = store.get_run(run_id).project
        except MltrailError:
            continue
    return found


@router.get("/{project}/series")
def panel_series(
    request: Request,
    project: _ProjectName,
    key: Annotated[str, Query(min_length=1)],
    runs: Annotated[str, Query(min_length=1, description="comma-separated full run ids")],
    points: Annotated[int, Query(ge=1, le=10_000, description="buckets per run")] = 500,
    step_min: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
    step_max: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
    bands: Annotated[bool, Query(description="include each bucket's min and max")] = False,
) -> JSONResponse:
    """One metric of many runs of ``project``: ``{"key", "series": {run_id: body | null}}``.

    Each body is what ``/api/v1/runs/{id}/series`` answers (min/max buckets; ``min`` and
    ``max`` only with ``bands=true``: a panel of 100 overlaid runs draws no bands, and they
    are 40% of the bytes). At most :data:`MAX_PANEL_RUNS` runs a request.
    """
    from mltrail import _validation
    from mltrail.entities import json_safe
    from mltrail.errors import NotFoundError
    from mltrail.server.series import chart

    store = _checked(request, project)
    key = _validation.check_key(key, "metric")
    ids = list(dict.fromkeys(p.strip() for p in runs.split(",") if p.strip()))
    if not 1 <= len(ids) <= MAX_PANEL_RUNS:
        raise InvalidArgumentError(f"runs: 1 to {MAX_PANEL_RUNS} run ids, got {len(ids)}")
    owners = _run_projects(store, ids)
    out: dict[str, Any] = {}
    for run_id in ids:
        if owners.get(run_id) != project:
            out[run_id] = None  # another project's run reads as a missing one
            continue
        try:
            body = chart(store, run_id, key, points, step_min, step_max)
        except NotFoundError:
            out[run_id] = None  # this run did not log the key
            continue
        if not bands:
            body.pop("min", None)
            body.pop("max", None)
        out[run_id] = body
    return JSONResponse(json_safe({"key": key, "series": out}))
