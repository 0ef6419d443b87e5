"""``/api/v1/models/...``: the model registry over a server.

One route per :class:`~mltrail.registry.base.ModelRegistry` method, so
:class:`mltrail.store.http_registry.HttpModelRegistry` keeps the same contract as the SQL
registry (checked by :class:`mltrail.testing.registry.ModelRegistryContract` through a real
server). Reads are ``GET`` (read scope), changes ``POST``/``PUT``/``PATCH``/``DELETE`` (write
scope, decided by the auth middleware). The actor recorded in the history is the token's
identity, never a name the client sends.

Alias moves apply the model's own policy (its ``mltrail.policy`` tag): a refusal is 409
``policy_violation`` listing every unmet rule; an override (``override_reason``) and moving
an ``admin_only`` alias need an admin token (403 otherwise). A stale ``expected_version`` is
409 ``version_conflict`` naming the current version. Project-scoped tokens see one project:
another project's models answer 404 like missing ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from mltrail import _validation as v
from mltrail.entities import json_safe
from mltrail.errors import NotFoundError
from mltrail.registry.records import (
    MAX_ALIAS_CHARS,
    MAX_DESCRIPTION_CHARS,
    MAX_NAME_CHARS,
    MAX_REASON_CHARS,
    MAX_VERSION,
    NewModelVersion,
    check_model_name,
)
from mltrail.server.api import ERROR_RESPONSES, RUN_ID_PATTERN
from mltrail.server.auth import principal_of
from mltrail.server.models import MAX_CONFIG_DEPTH, _check_depth

if TYPE_CHECKING:
    from mltrail.registry.base import ModelRegistry
    from mltrail.server.auth import Principal

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES, tags=["models"])

_PROJECT_CHARS = v.MAX_KEY_BYTES
NamePath = Annotated[
    str, Path(min_length=1, max_length=MAX_NAME_CHARS, description="the model's name")
]
VersionPath = Annotated[int, Path(ge=1, le=MAX_VERSION, description="the version number")]
AliasPath = Annotated[str, Path(min_length=1, max_length=MAX_ALIAS_CHARS, description="alias")]
ProjectQuery = Annotated[
    str, Query(min_length=1, max_length=_PROJECT_CHARS, description="the project's name")
]
Reason = Annotated[str, Field(max_length=MAX_REASON_CHARS)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _InProject(_Strict):
    project: StrictStr = Field(min_length=1, max_length=_PROJECT_CHARS)
    reason: Reason = ""


class CreateModelBody(_InProject):
    """``POST /api/v1/models``: register a name with no versions."""

    name: StrictStr = Field(min_length=1, max_length=MAX_NAME_CHARS)
    description: StrictStr = Field("", max_length=MAX_DESCRIPTION_CHARS)
    owner: StrictStr = Field("", max_length=250)
    tags: dict[str, StrictStr] = Field(default_factory=dict, max_length=100)


class UpdateModelBody(_InProject):
    """``PATCH /api/v1/models/{name}``: change what is given (null: keep)."""

    description: StrictStr | None = Field(None, max_length=MAX_DESCRIPTION_CHARS)
    owner: StrictStr | None = Field(None, max_length=250)
    tags: dict[str, StrictStr] | None = Field(None, max_length=100)


class ArchiveBody(_InProject):
    archived: StrictBool


class NewVersionBody(_InProject):
    """``POST /api/v1/models/{name}/versions``: the next version, an artifact version."""

    artifact_name: StrictStr = Field(min_length=1, max_length=MAX_NAME_CHARS)
    artifact_version: StrictInt = Field(ge=1, le=MAX_VERSION)
    run_id: StrictStr | None = Field(None, pattern=RUN_ID_PATTERN)
    signature: dict[str, Any] = Field(default_factory=dict, description="<= 64 KB as JSON")
    metadata: dict[str, Any] = Field(default_factory=dict, description="<= 64 KB as JSON")
    description: StrictStr = Field("", max_length=MAX_DESCRIPTION_CHARS)


class AliasBody(_InProject):
    """``PUT /api/v1/models/{name}/aliases/{alias}``: point the alias at ``version``."""

    version: StrictInt = Field(ge=1, le=MAX_VERSION)
    expected_version: StrictInt | None = Field(
        None, ge=0, le=MAX_VERSION, description="move only from this version (0: unset)"
    )
    override_reason: StrictStr | None = Field(None, max_length=MAX_REASON_CHARS)
    override: dict[str, Any] | None = Field(None, description="rules a client overrode")


class CardBody(_InProject):
    """``PUT /api/v1/models/{name}/versions/{version}/card``: a new card revision."""

    card: dict[str, Any]


def _reg(request: Request) -> ModelRegistry:
    from mltrail.store.optional import HasModelRegistry

    store = request.app.state.store
    if not isinstance(store, HasModelRegistry):
        raise NotFoundError("this store keeps no model registry")
    return store.model_registry()


def _json(obj: Any) -> JSONResponse:
    return JSONResponse(json_safe(obj))


def _actor(who: Principal) -> str:
    if who.token_id is None:
        return who.name
    return who.name or f"token {who.token_id}"


def _scope(request: Request, project: str, name: str | None = None) -> tuple[Principal, str]:
    """The principal and the checked project; 404 like a missing model for a foreign one."""
    who = principal_of(request)
    project = v.check_key(project, "project")
    if not who.can_see(project):
        what = f"model {name!r}" if name else "models"
        raise NotFoundError(f"no {what} in project {project!r}")
    return who, project


# -- models ----------------------------------------------------------------------------------


@router.get("/models")
def list_models(
    request: Request,
    project: Annotated[
        str | None, Query(min_length=1, max_length=_PROJECT_CHARS, description="one project")
    ] = None,
    include_archived: bool = False,
) -> JSONResponse:
    """Registered models (of ``project``), by project and name."""
    who = principal_of(request)
    if project is not None:
        project = v.check_key(project, "project")
    if who.project is not None:
        if project is not None and project != who.project:
            return _json({"models": []})
        project = who.project
    found = _reg(request).list_models(project, include_archived=include_archived)
    return _json({"models": [m.to_dict() for m in found if who.can_see(m.project)]})


@router.post("/models")
def create_model(request: Request, body: CreateModelBody) -> JSONResponse:
    """Register a model name (409 if it exists)."""
    who, project = _scope(request, body.project, body.name)
    got = _reg(request).create_model(
        project,
        body.name,
        description=body.description,
        owner=body.owner,
        tags=body.tags,
        actor=_actor(who),
        reason=body.reason,
    )
    return _json(got.to_dict())


@router.get("/models/{name}")
def get_model(request: Request, name: NamePath, project: ProjectQuery) -> JSONResponse:
    """One registered model."""
    _, project = _scope(request, project, name)
    return _json(_reg(request).get_model(project, check_model_name(name)).to_dict())


@router.patch("/models/{name}")
def update_model(request: Request, name: NamePath, body: UpdateModelBody) -> JSONResponse:
    """Change the description, owner or tags; one history event when anything changed."""
    who, project = _scope(request, body.project, name)
    got = _reg(request).update_model(
        project,
        check_model_name(name),
        description=body.description,
        owner=body.owner,
        tags=body.tags,
        actor=_actor(who),
        reason=body.reason,
    )
    return _json(got.to_dict())


@router.put("/models/{name}/archived")
def archive_model(request: Request, name: NamePath, body: ArchiveBody) -> JSONResponse:
    """Archive or restore a model."""
    who, project = _scope(request, body.project, name)
    got = _reg(request).set_model_archived(
        project, check_model_name(name), body.archived, actor=_actor(who), reason=body.reason
    )
    return _json(got.to_dict())


@router.get("/models/{name}/history")
def history(
    request: Request,
    name: NamePath,
    project: ProjectQuery,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 1000,
) -> JSONResponse:
    """The model's history events, oldest first (the last ``limit``)."""
    _, project = _scope(request, project, name)
    events = _reg(request).history(project, check_model_name(name), limit=limit)
    return _json({"events": [e.to_dict() for e in events]})


# -- versions --------------------------------------------------------------------------------


@router.get("/models/{name}/versions")
def list_versions(request: Request, name: NamePath, project: ProjectQuery) -> JSONResponse:
    """Every version, oldest first."""
    _, project = _scope(request, project, name)
    found = _reg(request).list_versions(project, check_model_name(name))
    return _json({"versions": [x.to_dict() for x in found]})


@router.post("/models/{name}/versions")
def register_version(request: Request, name: NamePath, body: NewVersionBody) -> JSONResponse:
    """Register the next version (creating the model on first use)."""
    who, project = _scope(request, body.project, name)
    _check_depth(body.signature, MAX_CONFIG_DEPTH)
    _check_depth(body.metadata, MAX_CONFIG_DEPTH)
    if body.run_id is not None:
        run = request.app.state.store.get_run(body.run_id)
        if not who.can_see(run.project):
            raise NotFoundError(f"run {body.run_id!r} does not exist")
    got = _reg(request).register_version(
        NewModelVersion(
            project=project,
            name=check_model_name(name),
            artifact_name=body.artifact_name,
            artifact_version=body.artifact_version,
            run_id=body.run_id,
            signature=body.signature,
            metadata=body.metadata,
            description=body.description,
            actor=_actor(who),
            reason=body.reason,
        )
    )
    return _json(got.to_dict())


@router.get("/models/{name}/versions/{version}")
def get_version(
    request: Request, name: NamePath, version: VersionPath, project: ProjectQuery
) -> JSONResponse:
    """One version."""
    _, project = _scope(request, project, name)
    return _json(_reg(request).get_version(project, check_model_name(name), version).to_dict())


@router.put("/models/{name}/versions/{version}/archived")
def archive_version(
    request: Request, name: NamePath, version: VersionPath, body: ArchiveBody
) -> JSONResponse:
    """Archive or restore a version (an aliased version cannot be archived)."""
    who, project = _scope(request, body.project, name)
    got = _reg(request).set_version_archived(
        project,
        check_model_name(name),
        version,
        body.archived,
        actor=_actor(who),
        reason=body.reason,
    )
    return _json(got.to_dict())


@router.put("/models/{name}/versions/{version}/card")
def update_card(
    request: Request, name: NamePath, version: VersionPath, body: CardBody
) -> JSONResponse:
    """Store a new revision of the version's model card."""
    who, project = _scope(request, body.project, name)
    _check_depth(body.card, MAX_CONFIG_DEPTH)
    got = _reg(request).update_card(
        project, check_model_name(name), version, body.card, actor=_actor(who), reason=body.reason
    )
    return _json(got.to_dict())


# -- aliases ---------------------------------------------------------------------------------


@router.put("/models/{name}/aliases/{alias}")
def set_alias(request: Request, name: NamePath, alias: AliasPath, body: AliasBody) -> JSONResponse:
    """Point ``alias`` at ``version`` under the model's policy (see the module docstring)."""
    from mltrail.registry.policy import Policy, guarded_set_alias
    from mltrail.store.tokens import Scope

    who, project = _scope(request, body.project, name)
    got = guarded_set_alias(
        _reg(request),
        request.app.state.store,
        Policy(),
        project,
        check_model_name(name),
        alias,
        body.version,
        expected_version=body.expected_version,
        actor=_actor(who),
        reason=body.reason,
        override_reason=body.override_reason,
        override=body.override,
        is_admin=who.scope.allows(Scope.ADMIN),
    )
    return _json(got.to_dict())


@router.delete("/models/{name}/aliases/{alias}")
def remove_alias(
    request: Request,
    name: NamePath,
    alias: AliasPath,
    project: ProjectQuery,
    expected_version: Annotated[int | None, Query(ge=0, le=MAX_VERSION)] = None,
    reason: Annotated[str, Query(max_length=MAX_REASON_CHARS)] = "",
) -> JSONResponse:
    """Remove an alias; ``removed`` says whether it was set."""
    who, project = _scope(request, project, name)
    removed = _reg(request).remove_alias(
        project,
        check_model_name(name),
        alias,
        expected_version=expected_version,
        actor=_actor(who),
        reason=reason,
    )
    return _json({"removed": removed})


@router.get("/model-refs/resolve")
def resolve(
    request: Request,
    ref: Annotated[str, Query(min_length=1, max_length=512, description="models:/...")],
    project: Annotated[
        str | None, Query(min_length=1, max_length=_PROJECT_CHARS, description="look here")
    ] = None,
) -> JSONResponse:
    """The version ``models:/[project/]name[@alias|/N]`` names."""
    from mltrail.registry.records import parse_model_ref

    who = principal_of(request)
    parsed = parse_model_ref(ref)
    scope = parsed.project or (v.check_key(project, "project") if project else None)
    if scope is None:
        scope = who.project
    elif not who.can_see(scope):
        raise NotFoundError(f"no model named {parsed.name!r} in project {scope!r}")
    return _json(_reg(request).resolve(parsed, project=scope).to_dict())
