"""MLflow's tracking REST API, served by ``mltrail server`` (docs/mlflow-compat.md).

The real ``mlflow`` client with ``MLFLOW_TRACKING_URI=http://host:port`` (and the token in
``MLFLOW_TRACKING_TOKEN``, sent as ``Authorization: Bearer``, which the server's auth
middleware already takes) logs into this server unchanged. Everything MLflow-shaped lives in
this package; handlers translate and call the same store methods as the native API:

- ``experiments``: experiments over projects (``convert`` holds the mapping);
- ``runs``: runs, params, tags, metrics (``apply_batch``), search (``filters`` translates
  MLflow's syntax to ours), metric history;
- ``artifacts``: the artifact proxy over run files;
- ``registry``: registered models, versions and aliases over our model registry;
- ``errors``: MLflow's error shape and status codes, the route wrapper.

:func:`routers` gives them to :func:`mltrail.server.app.create_app`, the catch-all last, so an
MLflow endpoint we do not serve answers ``ENDPOINT_NOT_FOUND`` in MLflow's shape.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import APIRouter, Request
    from fastapi.responses import Response

    from mltrail.server.compat.mlflow.errors import Fields

__all__ = ["routers"]


def _server_info(request: Request, fields: Fields) -> dict[str, Any]:
    return {
        "store_type": "SqlStore",
        "workspaces_enabled": False,
        "trace_archival_enabled": False,
        "multipart_uploads_enabled": False,
        "multipart_downloads_enabled": False,
        "presigned_upload_run_id_supported": False,
        "presigned_upload_model_id_supported": False,
        "features_enabled": {"gateway": False},
    }


def _not_found(request: Request, fields: Fields) -> Response:
    from fastapi.responses import JSONResponse

    message = (
        f"mltrail does not serve {request.method} {request.url.path} of MLflow's API "
        "(docs/mlflow-compat.md lists what it serves)"
    )
    return JSONResponse({"error_code": "ENDPOINT_NOT_FOUND", "message": message}, 404)


def routers() -> list[APIRouter]:
    """The routers to mount, in order (the catch-all last)."""
    from fastapi import APIRouter

    from mltrail.server.compat.mlflow import artifacts, experiments, registry, runs
    from mltrail.server.compat.mlflow.errors import add_endpoint

    info = APIRouter()
    for method in ("GET",):
        add_endpoint(
            info,
            "/server-info",
            method,
            _server_info,
            prefixes=("/api/3.0/mlflow", "/ajax-api/3.0/mlflow"),
        )
    rest = APIRouter()
    methods = ("GET", "POST", "PUT", "PATCH", "DELETE")
    for prefix in ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow", "/api/3.0/mlflow"):
        for method in methods:
            add_endpoint(rest, "/{mlflow_path:path}", method, _not_found, prefixes=(prefix,))
    return [
        info,
        experiments.router,
        runs.router,
        artifacts.router,
        artifacts.proxy_router,
        registry.router,
        rest,
    ]
