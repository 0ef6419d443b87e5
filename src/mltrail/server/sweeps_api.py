"""``GET /api/v1/sweeps/{sweep_id}``: a sweep as ``mltrail sweep show --json`` prints it.

The server reads the sweep from Optuna's storage beside its own store
(:mod:`mltrail.sweeps.storage`). A project-scoped token sees only its project's sweeps;
another project's sweep answers 404 like a missing one.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse

from mltrail.entities import json_safe
from mltrail.errors import NotFoundError
from mltrail.server.api import ERROR_RESPONSES
from mltrail.server.auth import principal_of
from mltrail.sweeps.storage import SWEEP_ID_PATTERN

__all__ = ["SWEEP_ID_PATTERN", "read_sweep", "router"]

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES, tags=["sweeps"])

SweepPath = Annotated[str, Path(pattern=SWEEP_ID_PATTERN, description="the sweep's id")]


def read_sweep(request: Request, sweep_id: str) -> dict[str, Any]:
    """The sweep, if the request's principal may see its project (404 alike otherwise).

    Raises:
        NotFoundError: no such sweep, or one of a project the principal may not see.
        MissingExtraError: Optuna is not installed on the server.
    """
    from mltrail.sweeps.report import describe_sweep

    data = describe_sweep(sweep_id, store=request.app.state.config.store)
    if not principal_of(request).can_see(data["sweep"]["project"]):
        raise NotFoundError(f"no sweep {sweep_id!r} in this store")
    return data


@router.get("/sweeps/{sweep_id}")
def get_sweep(request: Request, sweep_id: SweepPath) -> JSONResponse:
    """A sweep: its record (spec, git SHA, seed), state, trials, best and best-so-far."""
    return JSONResponse(json_safe(read_sweep(request, sweep_id)))
