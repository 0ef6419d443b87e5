"""``create_app``: the FastAPI app behind ``mltrail server`` and ``mltrail ui``.

Layers, outermost first: :class:`~mltrail.server.auth.SecurityMiddleware` (headers, Host
check, default-deny auth, scopes, last-resort 500),
:class:`~mltrail.server.limits.BodyLimitMiddleware` (413/415 before parsing), FastAPI's
exception handlers (every error is
``{"error": {"code", "message", "field"?}}``), then the routes: ``/health``, the REST API
(:mod:`mltrail.server.api`) and the UI (:func:`mltrail.server.ui.install_ui`).

The app is stateless apart from its store connection: several processes (replicas on many
hosts, with an ``s3://`` artifacts root) over one database and one artifacts root serve the
same data.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from mltrail.errors import InvalidArgumentError, MltrailError, StoreError
from mltrail.server.limits import Limits
from mltrail.server.responses import error_body
from mltrail.settings import SERVER_CONFIG_ENV, settings

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ["CONFIG_ENV", "ServerConfig", "create_app", "create_app_from_env"]

log = logging.getLogger("mltrail.server")

#: Where ``mltrail server --workers N`` passes the config to its worker processes
#: (read through :attr:`mltrail.settings.Settings.server_config`).
CONFIG_ENV = SERVER_CONFIG_ENV
#: Seconds an idle keep-alive connection stays open. Longer than a client pool's idle expiry
#: (httpx: 5 s), so the server never closes a connection a client is about to reuse (that race
#: reaches the client as a reset request under load).
KEEP_ALIVE_S = 75

_HTTP_CODES = {
    400: "bad_request",
    401: "invalid_token",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_argument",
}


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """How to build the app.

    Attributes:
        store: the store URI or directory (``sqlite:///...``, ``postgresql://...``, a folder).
        artifacts: the artifacts root: a local directory, or any fsspec URL
            (``s3://bucket/prefix``) shared by replicas (:mod:`mltrail.server.storage`).
        auth: enforce API tokens (``mltrail server``); False for ``mltrail ui`` (loopback,
            single user).
        host: the address the server binds (it is an allowed Host name unless a wildcard).
        allowed_hosts: more accepted ``Host`` names (a DNS name in front of the server);
            ``"*"`` turns the Host check off (only behind a proxy that checks it).
        limits: body, batch and string limits.
        presign_s: with an object-store root, answer object downloads with a redirect to a
            presigned URL valid this many seconds (0: the server streams them itself).
    """

    store: str
    artifacts: str
    auth: bool = True
    host: str = "127.0.0.1"
    allowed_hosts: tuple[str, ...] = ()
    limits: Limits = field(default_factory=Limits)
    presign_s: int = 0

    def to_json(self) -> str:
        """The config as JSON (for worker processes)."""
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServerConfig:
        """Inverse of :meth:`to_json`."""
        data: dict[str, Any] = json.loads(text)
        data["limits"] = Limits(**data.get("limits", {}))
        data["allowed_hosts"] = tuple(data.get("allowed_hosts", ()))
        return cls(**data)


def _json_error(status: int, code: str, message: str, field: str | None = None) -> JSONResponse:
    response = JSONResponse({}, status_code=status)
    response.body = error_body(code, message, field)
    response.headers["content-length"] = str(len(response.body))
    return response


def _field_of(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


async def _mltrail_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, MltrailError)
    if isinstance(exc, StoreError) or exc.http_status >= 500:
        log.warning("%s on %s %s: %s", type(exc).__name__, request.method, request.url.path, exc)
    body = exc.to_dict()
    return _json_error(exc.http_status, body["code"], body["message"])


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if not errors:
        return _json_error(422, "invalid_argument", "the request is invalid")
    parts = []
    for err in errors[:5]:
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{_field_of(err.get('loc', ()))}: {msg}")
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    message = "; ".join(parts) + more
    return _json_error(422, "invalid_argument", message, _field_of(errors[0].get("loc", ())))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "error")
    message = str(exc.detail) if exc.detail else code
    if exc.status_code == 404 and message == "Not Found":
        message = f"no route {request.url.path}"
    response = _json_error(exc.status_code, code, message)
    for key, value in (exc.headers or {}).items():
        response.headers[key] = value
    return response


def _open_store(uri: str, *, auth: bool) -> Any:
    """The server's store. ``mltrail server`` (auth) never migrates an older schema (a
    team upgrades with ``mltrail db upgrade``); ``mltrail ui`` (one user on loopback)
    follows the store's default, so a laptop's SQLite store is migrated as the SDK does."""
    from mltrail.store.registry import open_store

    return open_store(uri, shared=False, migrate=None if not auth else False)


def create_app(config: ServerConfig) -> FastAPI:
    """Build the app for ``config``; opens the store (``app.state.store``) at once.

    Raises:
        StoreError: the store cannot be opened (unreachable, wrong credentials).
        InvalidArgumentError: a bad store URI or artifacts root.
    """
    from mltrail import __version__
    from mltrail.server import api, artifacts_api, models_api, objects_api, sweeps_api, ui
    from mltrail.server.auth import (
        SecurityMiddleware,
        TokenVerifier,
        default_allowed_hosts,
        login_page,
    )
    from mltrail.server.limits import BodyLimitMiddleware
    from mltrail.server.storage import open_storage

    store = _open_store(config.store, auth=config.auth)
    storage = None
    try:
        storage = open_storage(config.artifacts)  # a folder, or s3://... (server/storage.py)
        if config.presign_s and not storage.presigns:
            raise InvalidArgumentError(
                f"presign: the artifacts root {config.artifacts} is not an object store that "
                "signs URLs (use --artifacts s3://bucket/prefix)"
            )
        filestore, objects = storage.files, storage.objects
        swept = filestore.sweep()
        if swept:
            log.info("removed %d temp files of interrupted uploads", swept)
        verifier = None
        if config.auth:
            from mltrail.store.optional import HasTokens

            if not isinstance(store, HasTokens):
                raise InvalidArgumentError(f"store {config.store!r} cannot keep API tokens")
            verifier = TokenVerifier(store.tokens())
    except BaseException:
        store.close()
        if storage is not None:
            storage.close()
        raise

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        app.state.store.close()
        app.state.storage.close()

    app = FastAPI(
        title="mltrail",
        version=__version__,
        summary="Experiment tracking server: runs, metrics, files (docs/rest-api.md).",
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        lifespan=lifespan,
    )
    app.state.config = config
    app.state.store = store
    app.state.storage = storage
    app.state.filestore = filestore
    app.state.objects = objects
    app.state.limits = config.limits
    app.add_exception_handler(MltrailError, _mltrail_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.include_router(api.health_router)
    app.include_router(api.router)
    app.include_router(objects_api.router)
    app.include_router(artifacts_api.router)
    app.include_router(models_api.router)
    app.include_router(sweeps_api.router)
    from mltrail.server.compat.mlflow import routers as mlflow_routers

    for mlflow_router in mlflow_routers():  # MLflow's REST API (docs/mlflow-compat.md)
        app.include_router(mlflow_router)
    app.add_middleware(BodyLimitMiddleware, limits=config.limits)
    app.add_middleware(
        SecurityMiddleware,
        verifier=verifier,
        allowed_hosts=default_allowed_hosts(config.host, config.allowed_hosts),
        login_page=getattr(ui, "login_page_html", login_page),
    )

    from mltrail.server.compat.mlflow.shape import MlflowErrorShape

    app.add_middleware(MlflowErrorShape)  # outermost: MLflow's error shape on its paths
    ui.install_ui(app)
    _document_errors(app)
    return app


def _document_errors(app: FastAPI) -> None:
    """Make the spec say what every route can answer: the middleware's and handlers' errors.

    Any route can be refused by the auth middleware (400 Host, 401, 403), by the body limits
    (413, 415), by validation (422) or by the store (503); the UI's JSON routes too. Each
    operation gets those responses (the ``ErrorBody`` schema) unless it documents them.
    """
    from fastapi.openapi.utils import get_openapi

    from mltrail.server.api import ERROR_RESPONSES

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        spec = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            routes=app.routes,
        )
        ref = {"$ref": "#/components/schemas/ErrorBody"}
        for ops in spec.get("paths", {}).values():
            for op in ops.values():
                responses = op.setdefault("responses", {})
                for status, info in ERROR_RESPONSES.items():
                    key = str(status)
                    current = responses.get(key)
                    uses_default_422 = current is not None and "HTTPValidationError" in json.dumps(
                        current
                    )
                    if current is None or uses_default_422:
                        responses[key] = {
                            "description": info["description"],
                            "content": {"application/json": {"schema": ref}},
                        }
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        from mltrail.server.models import ErrorBody

        for name, schema in (
            ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
            .pop("$defs", {})
            .items()
        ):
            schemas.setdefault(name, schema)
        schemas.setdefault(
            "ErrorBody",
            ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}"),
        )
        for unused in ("HTTPValidationError", "ValidationError"):
            if unused in schemas and unused not in json.dumps(spec["paths"]):
                del schemas[unused]
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]


def create_app_from_env() -> FastAPI:
    """The app for a worker process of ``mltrail server --workers N`` (config in the env)."""
    raw = settings().server_config
    if not raw:
        raise RuntimeError(f"{CONFIG_ENV} is not set; start workers with `mltrail server`")
    return create_app(ServerConfig.from_json(raw))
