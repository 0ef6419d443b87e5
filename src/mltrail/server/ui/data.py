"""JSON reads the UI needs beyond the REST API (``/api/v1/ui/...``)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from mltrail.server.ui import _access
from mltrail.server.ui._queries import project_keys, require_project

if TYPE_CHECKING:
    from mltrail.store.base import TrackingStore

__all__ = ["ProjectKeysOut", "remember_run", "router"]

router = APIRouter(prefix="/api/v1/ui", tags=["ui"])


class ProjectKeysOut(BaseModel):
    """The keys a project's runs use: what the runs table's column chooser offers."""

    params: list[str]
    metrics: list[str]
    tags: list[str]


@router.get("/projects/{project}/keys", response_model=ProjectKeysOut)
def keys(
    request: Request, project: Annotated[str, Path(min_length=1, max_length=250)]
) -> ProjectKeysOut:
    """Every param, metric and tag key used by the project's runs (sorted; 2,000 at most each).

    A project the token may not see answers 404, like a missing one.
    """
    store: TrackingStore = request.app.state.store
    _access.check_project(request, project)
    require_project(store, project)
    return ProjectKeysOut(**project_keys(store, project).to_dict())


# -- the run page's lazy chart panels --------------------------------------------------

#: run id -> its project (a run never changes project): the visibility check of a chart
#: panel must not re-read a run of 10^4 metric summaries per panel, as ``get_run`` does.
_RUN_PROJECTS: OrderedDict[str, str] = OrderedDict()
_RUN_PROJECTS_MAX = 4096
_RUN_PROJECTS_LOCK = threading.Lock()


def remember_run(run_id: str, project: str) -> None:
    """Record the project of ``run_id`` (the run page does, having read the run)."""
    with _RUN_PROJECTS_LOCK:
        _RUN_PROJECTS[run_id] = project
        _RUN_PROJECTS.move_to_end(run_id)
        while len(_RUN_PROJECTS) > _RUN_PROJECTS_MAX:
            _RUN_PROJECTS.popitem(last=False)


def _run_project(store: TrackingStore, run_id: str) -> str:
    with _RUN_PROJECTS_LOCK:
        project = _RUN_PROJECTS.get(run_id)
    if project is None:
        project = store.get_run(run_id).project  # NotFoundError: 404
        remember_run(run_id, project)
    return project


@router.get("/runs/{run_id}/series")
def run_series(
    request: Request,
    run_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_.\-]{1,32}$", description="full run id")],
    key: Annotated[str, Query(min_length=1)],
    points: Annotated[int, Query(ge=1, le=10_000, description="buckets")] = 1000,
    step_min: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
    step_max: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
) -> JSONResponse:
    """A chart of one metric (min/max buckets), as ``/api/v1/runs/{id}/series`` answers.

    The run page's lazy panels of a run with many keys call this: the run's project is
    remembered, so each panel costs its chart only. A run the token may not see answers
    404, like a missing one (and a key the run did not log).
    """
    from mltrail import _validation
    from mltrail.entities import json_safe
    from mltrail.errors import NotFoundError
    from mltrail.server.series import chart

    store: TrackingStore = request.app.state.store
    if not _access.can_see(request, _run_project(store, run_id)):
        # exactly what a missing run answers: nothing tells a hidden run from a ghost
        raise NotFoundError(f"run {run_id!r} does not exist")
    body = chart(store, run_id, _validation.check_key(key, "metric"), points, step_min, step_max)
    return JSONResponse(json_safe(body))
