"""MLflow's error shape, and the wrapper every MLflow route runs in.

MLflow answers ``{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "..."}`` with the
HTTP status its ``ErrorCode`` maps to (``mlflow.exceptions``); its client reads
``error_code`` to raise the right ``MlflowException``. Our errors keep their meaning and
take MLflow's names: a missing run is ``RESOURCE_DOES_NOT_EXIST`` (404), bad input is
``INVALID_PARAMETER_VALUE`` (400), a param logged again with another value too (MLflow
refuses it the same way), an existing name ``RESOURCE_ALREADY_EXISTS`` (400), a store
outage ``TEMPORARILY_UNAVAILABLE`` (503), anything unexpected ``INTERNAL_ERROR`` (500,
logged, no detail).
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from fastapi import Request  # noqa: TC002 - FastAPI reads the route's annotation at runtime
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from mltrail.entities import json_safe
from mltrail.errors import (
    AlreadyExistsError,
    AmbiguousIdError,
    AuthenticationError,
    InvalidArgumentError,
    MltrailError,
    NotFoundError,
    NotSupportedError,
    ParamConflictError,
    PermissionDeniedError,
    StoreError,
    VersionConflictError,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from fastapi import APIRouter

__all__ = [
    "ERROR_STATUS",
    "Fields",
    "add_endpoint",
    "error_response",
    "read_fields",
]

log = logging.getLogger("mltrail.server")

#: MLflow's error codes and their HTTP statuses (``mlflow.exceptions``)
ERROR_STATUS = {
    "INVALID_PARAMETER_VALUE": 400,
    "BAD_REQUEST": 400,
    "RESOURCE_ALREADY_EXISTS": 400,
    "INVALID_STATE": 500,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "RESOURCE_DOES_NOT_EXIST": 404,
    "ENDPOINT_NOT_FOUND": 404,
    "RESOURCE_CONFLICT": 409,
    "INTERNAL_ERROR": 500,
    "NOT_IMPLEMENTED": 501,
    "TEMPORARILY_UNAVAILABLE": 503,
}

#: The request's fields: the JSON body, or the query string of a GET (repeated keys: a list)
Fields = dict[str, Any]


def _code_of(exc: BaseException) -> str:
    if isinstance(exc, NotSupportedError):
        return "NOT_IMPLEMENTED"
    if isinstance(exc, NotFoundError):
        return "RESOURCE_DOES_NOT_EXIST"
    if isinstance(exc, ParamConflictError):
        return "INVALID_PARAMETER_VALUE"
    if isinstance(exc, AlreadyExistsError):
        return "RESOURCE_ALREADY_EXISTS"
    if isinstance(exc, InvalidArgumentError | AmbiguousIdError):
        return "INVALID_PARAMETER_VALUE"
    if isinstance(exc, VersionConflictError):
        return "RESOURCE_CONFLICT"
    if isinstance(exc, AuthenticationError):
        return "UNAUTHENTICATED"
    if isinstance(exc, PermissionDeniedError):
        return "PERMISSION_DENIED"
    if isinstance(exc, StoreError) and exc.http_status == 503:
        return "TEMPORARILY_UNAVAILABLE"
    if isinstance(exc, MltrailError) and exc.http_status == 409:
        return "RESOURCE_CONFLICT"
    return "INTERNAL_ERROR"


def error_response(exc: BaseException, where: str = "") -> JSONResponse:
    """``exc`` as MLflow's error body with its status; an unexpected one is logged."""
    code = _code_of(exc)
    if code == "INTERNAL_ERROR":
        log.error("MLflow API %s failed: %s", where, type(exc).__name__, exc_info=exc)
        message = "internal server error (see the server log)"
    else:
        message = str(exc)
        if isinstance(exc, StoreError):
            log.warning("MLflow API %s: %s", where, exc)
    return JSONResponse({"error_code": code, "message": message}, status_code=ERROR_STATUS[code])


async def read_fields(request: Request) -> Fields:
    """The request's fields: a GET's query string (repeated keys as lists), else the JSON
    body (an empty body is no fields; the DELETE calls of MLflow's client send JSON too)."""
    if request.method == "GET":
        out: Fields = {}
        for key, value in request.query_params.multi_items():
            if key in out:
                prev = out[key]
                out[key] = [*prev, value] if isinstance(prev, list) else [prev, value]
            else:
                out[key] = value
        return out
    body = await request.body()
    request.state.mlflow_body_bytes = len(body)
    if not body.strip():
        return {}
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        raise InvalidArgumentError("the request body is not JSON") from None
    if not isinstance(parsed, dict):
        raise InvalidArgumentError("the request body must be a JSON object")
    return parsed


def add_endpoint(
    router: APIRouter,
    path: str,
    method: str,
    handler: Callable[[Request, Fields], dict[str, Any] | Response],
    *,
    prefixes: tuple[str, ...] = ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow"),
) -> None:
    """Serve ``handler(request, fields)`` (blocking, run in the thread pool) at ``path``
    under each prefix; a dict answer is sent as JSON (non-finite floats as strings, as
    protobuf's JSON writes them), an error in MLflow's shape."""
    where = f"{method} {path}"

    async def route(request: Request) -> Response:
        try:
            fields = await read_fields(request)
            out = await run_in_threadpool(handler, request, fields)
        except Exception as exc:  # every failure answers in MLflow's shape
            return error_response(exc, where)
        if isinstance(out, Response):
            return out
        return JSONResponse(json_safe(out))

    route.__name__ = f"mlflow_{handler.__name__}"
    for prefix in prefixes:
        router.add_api_route(
            prefix + path, route, methods=[method], include_in_schema=False, name=None
        )
