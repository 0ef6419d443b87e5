"""JSON reads the UI needs beyond the REST API (``/api/v1/ui/...``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel

from mltrail.server.ui import _access
from mltrail.server.ui._queries import project_keys, require_project

if TYPE_CHECKING:
    from mltrail.store.base import TrackingStore

__all__ = ["ProjectKeysOut", "router"]

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
