"""``/api/v1/artifacts``, run inputs/outputs and ``/api/v1/lineage``: artifacts over a server.

One route per :class:`~mltrail.store.artifacts.ArtifactStore` method, so
:class:`mltrail.store.http_artifacts.HttpArtifactStore` keeps the same contract as the SQL
store (checked by :class:`mltrail.testing.ArtifactStoreContract` through a real server).
Records travel as their ``to_dict()``; the bytes of artifacts never pass here: they are
content-addressed objects (:mod:`mltrail.server.objects_api`), uploaded before the version is
recorded.

Project and artifact names travel in query strings and JSON bodies, never in the path (a
project name may hold ``/``). Project-scoped tokens see one project: another project's
artifacts, versions and runs are 404 before anything is written, listings leave them out, and
lineage graphs drop their nodes. Reads are ``GET`` (read scope), writes ``POST``/``PUT``/
``DELETE`` (write scope: the auth middleware decides by method).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, field_validator

from mltrail import _validation as v
from mltrail.entities import json_safe
from mltrail.errors import InvalidArgumentError, NotFoundError
from mltrail.server.api import ERROR_RESPONSES, RUN_ID_PATTERN, RunIdPath, visible_run
from mltrail.server.auth import principal_of
from mltrail.server.models import MAX_CONFIG_DEPTH, MAX_INT64, _check_depth
from mltrail.store.artifacts import (
    MAX_ALIAS_CHARS,
    MAX_NAME_CHARS,
    MAX_TYPE_CHARS,
    ArtifactRef,
    NewVersion,
    check_alias,
    check_artifact_name,
    check_artifact_type,
    parse_ref,
)

if TYPE_CHECKING:
    from mltrail.server.auth import Principal
    from mltrail.store.artifacts import ArtifactStore, ArtifactVersion, LineageGraph

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES, tags=["artifacts"])

#: a content digest as the object layer makes it (``blake3:<hex>``, ``.tree`` for directories)
DIGEST_PATTERN = r"^(blake3|sha256|md5):[0-9a-f]{32,128}(\.tree)?$"
MAX_DIGEST_CHARS = 100
MAX_URI_CHARS = 4096
MAX_ALIASES = 100
MAX_REF_CHARS = 400
MAX_DEPTH = 1_000_000
_PROJECT_CHARS = v.MAX_KEY_BYTES

ProjectQuery = Annotated[
    str, Query(min_length=1, max_length=_PROJECT_CHARS, description="the project's name")
]
NameQuery = Annotated[
    str, Query(min_length=1, max_length=MAX_NAME_CHARS, description="the artifact's name")
]
VersionQuery = Annotated[int, Query(ge=1, le=999_999_999, description="N of name:vN")]


# -- bodies --------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _project(value: str) -> str:
    return v.check_key(value, "project")


class _Named(_Strict):
    """A body naming an artifact of a project (both checked like the SDK checks them)."""

    project: StrictStr = Field(max_length=_PROJECT_CHARS)
    name: StrictStr = Field(max_length=MAX_NAME_CHARS)

    @field_validator("project")
    @classmethod
    def _proj(cls, value: str) -> str:
        return _project(value)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_artifact_name(value)


class NewVersionBody(_Named):
    """``POST /api/v1/artifacts/versions``: a version to record (idempotent by digest)."""

    type: StrictStr = Field(max_length=MAX_TYPE_CHARS)
    digest: StrictStr = Field(max_length=MAX_DIGEST_CHARS, pattern=DIGEST_PATTERN)
    kind: Literal["file", "tree", "reference"]
    size: StrictInt = Field(ge=0, le=MAX_INT64)
    file_count: StrictInt = Field(ge=0, le=MAX_INT64)
    uri: StrictStr | None = Field(None, max_length=MAX_URI_CHARS)
    metadata: dict[str, Any] = Field(default_factory=dict, description="at most 64 KB as JSON")
    source: dict[str, Any] = Field(default_factory=dict, description="at most 64 KB as JSON")
    run_id: StrictStr | None = Field(None, pattern=RUN_ID_PATTERN)
    aliases: list[StrictStr] = Field(default_factory=list, max_length=MAX_ALIASES)
    created_ms: StrictInt | None = Field(None, ge=0, le=MAX_INT64)

    @field_validator("type")
    @classmethod
    def _type(cls, value: str) -> str:
        return check_artifact_type(value)

    @field_validator("uri")
    @classmethod
    def _uri(cls, value: str | None) -> str | None:
        return None if value is None else v._check_text(value, "uri", 4 * MAX_URI_CHARS)

    @field_validator("metadata", "source")
    @classmethod
    def _meta(cls, value: dict[str, Any]) -> dict[str, Any]:
        _check_depth(value, MAX_CONFIG_DEPTH)
        return value

    @field_validator("aliases")
    @classmethod
    def _aliases(cls, value: list[str]) -> list[str]:
        return [check_alias(a) for a in value]


class AliasBody(_Named):
    """``PUT /api/v1/artifacts/aliases``: point an alias at a version (moving it)."""

    alias: StrictStr = Field(max_length=MAX_ALIAS_CHARS)
    version: StrictInt = Field(ge=1, le=999_999_999)

    @field_validator("alias")
    @classmethod
    def _alias(cls, value: str) -> str:
        return check_alias(value)


class InputBody(_Named):
    """``POST /api/v1/runs/{run_id}/inputs``: the run used this version."""

    version: StrictInt = Field(ge=1, le=999_999_999)


# -- responses -----------------------------------------------------------------------------


class ArtifactVersionOut(BaseModel):
    """A version, as ``ArtifactVersion.to_dict()`` makes it."""

    project: str
    name: str
    type: str
    version: int
    ref: str
    digest: str
    kind: Literal["file", "tree", "reference"]
    size: int
    file_count: int
    uri: str | None
    metadata: dict[str, Any]
    source: dict[str, Any]
    run_id: str | None
    created_ms: int
    aliases: list[str]


class VersionsOut(BaseModel):
    versions: list[ArtifactVersionOut]


class ArtifactOut(BaseModel):
    """An artifact, as ``Artifact.to_dict()`` makes it."""

    project: str
    name: str
    type: str
    created_ms: int
    latest_version: int
    version_count: int
    aliases: dict[str, int]


class ArtifactsOut(BaseModel):
    artifacts: list[ArtifactOut]


class RemovedOut(BaseModel):
    removed: bool = Field(description="False when the alias did not exist")


class ConsumersOut(BaseModel):
    run_ids: list[str]


class LineageNodeOut(BaseModel):
    """A node: ``id``, ``type``, ``label`` and the run's or version's fields."""

    model_config = ConfigDict(extra="allow")
    id: str
    type: Literal["run", "artifact"]
    label: str


class LineageEdgeOut(BaseModel):
    source: str
    target: str
    relation: Literal["produced", "used"]


class LineageOut(BaseModel):
    """``LineageGraph.to_dict()``."""

    root: str
    direction: Literal["upstream", "downstream", "both"]
    nodes: list[LineageNodeOut]
    edges: list[LineageEdgeOut]
    truncated: bool


# -- helpers -------------------------------------------------------------------------------


def _arts(request: Request) -> ArtifactStore:
    accessor = getattr(request.app.state.store, "artifacts", None)
    if accessor is None:
        raise NotFoundError("this store keeps no artifacts")
    got: ArtifactStore = accessor()
    return got


def _json(obj: Any) -> JSONResponse:
    return JSONResponse(json_safe(obj))


def _check_project(who: Principal, project: str, what: str) -> None:
    """404 (the same as a missing one) for a project the token cannot see."""
    if not who.can_see(project):
        raise NotFoundError(f"{what} in project {project!r} does not exist")


def _version(request: Request, project: str, name: str, version: int) -> ArtifactVersion:
    """The version ``project/name:vN``, if the principal may see it."""
    project = _project(project)
    name = check_artifact_name(name)
    _check_project(principal_of(request), project, f"artifact {name!r}")
    return _arts(request).resolve(ArtifactRef(project=project, name=name, version=version))


def _visible(request: Request, versions: list[ArtifactVersion]) -> list[dict[str, Any]]:
    who = principal_of(request)
    return [x.to_dict() for x in versions if who.can_see(x.project)]


def _scoped_graph(who: Principal, graph: LineageGraph) -> dict[str, Any]:
    """The graph without the nodes (and their edges) of projects the token cannot see."""
    out = graph.to_dict()
    if who.project is None:
        return out
    keep = [n for n in out["nodes"] if who.can_see(str(n.get("project", "")))]
    ids = {n["id"] for n in keep}
    out["nodes"] = keep
    out["edges"] = [e for e in out["edges"] if e["source"] in ids and e["target"] in ids]
    return out


# -- writes --------------------------------------------------------------------------------


@router.post("/artifacts/versions", response_model=ArtifactVersionOut)
def log_version(request: Request, body: NewVersionBody) -> JSONResponse:
    """Record a version: the existing one when the artifact already has this digest."""
    who = principal_of(request)
    _check_project(who, body.project, f"artifact {body.name!r}")
    if body.run_id is not None:
        record = request.app.state.store.get_run(body.run_id)
        if not who.can_see(record.project):
            raise NotFoundError(f"run {body.run_id!r} does not exist")
    new = NewVersion(
        project=body.project,
        name=body.name,
        type=body.type,
        digest=body.digest,
        kind=body.kind,
        size=body.size,
        file_count=body.file_count,
        uri=body.uri,
        metadata=body.metadata,
        source=body.source,
        run_id=body.run_id,
        aliases=tuple(body.aliases),
        created_ms=body.created_ms,
    )
    return _json(_arts(request).log_version(new).to_dict())


@router.put("/artifacts/aliases", response_model=ArtifactVersionOut)
def set_alias(request: Request, body: AliasBody) -> JSONResponse:
    """Point ``alias`` at ``version`` (moving it); the version with its aliases."""
    _check_project(principal_of(request), body.project, f"artifact {body.name!r}")
    got = _arts(request).set_alias(body.project, body.name, body.alias, body.version)
    return _json(got.to_dict())


@router.delete("/artifacts/aliases", response_model=RemovedOut)
def remove_alias(
    request: Request,
    project: ProjectQuery,
    name: NameQuery,
    alias: Annotated[str, Query(min_length=1, max_length=MAX_ALIAS_CHARS)],
) -> JSONResponse:
    """Remove an alias; ``removed`` says whether it existed."""
    project, name = _project(project), check_artifact_name(name)
    _check_project(principal_of(request), project, f"artifact {name!r}")
    alias = v._check_text(alias, "artifact alias", 4 * MAX_ALIAS_CHARS)
    return _json({"removed": _arts(request).remove_alias(project, name, alias)})


@router.post("/runs/{run_id}/inputs", response_model=ArtifactVersionOut)
def record_input(request: Request, run_id: RunIdPath, body: InputBody) -> JSONResponse:
    """Record that the run used a version (idempotent); the version."""
    run = visible_run(request, run_id)
    version = _version(request, body.project, body.name, body.version)
    _arts(request).record_input(run.run_id, version)
    return _json(version.to_dict())


# -- reads ---------------------------------------------------------------------------------


@router.get("/artifacts", response_model=ArtifactsOut)
def list_artifacts(
    request: Request,
    project: Annotated[
        str | None, Query(min_length=1, max_length=_PROJECT_CHARS, description="one project")
    ] = None,
) -> JSONResponse:
    """Every artifact (of ``project``) by project and name, with counts and aliases."""
    who = principal_of(request)
    if project is not None:
        project = _project(project)
    if who.project is not None:
        if project is not None and project != who.project:
            return _json({"artifacts": []})
        project = who.project
    found = _arts(request).list_artifacts(project)
    return _json({"artifacts": [a.to_dict() for a in found if who.can_see(a.project)]})


@router.get("/artifacts/versions", response_model=VersionsOut)
def list_versions(request: Request, project: ProjectQuery, name: NameQuery) -> JSONResponse:
    """Every version of one artifact, oldest first."""
    project, name = _project(project), check_artifact_name(name)
    _check_project(principal_of(request), project, f"artifact {name!r}")
    return _json({"versions": [x.to_dict() for x in _arts(request).list_versions(project, name)]})


@router.get("/artifacts/resolve", response_model=ArtifactVersionOut)
def resolve(
    request: Request,
    ref: Annotated[
        str,
        Query(
            min_length=1,
            max_length=MAX_REF_CHARS,
            description="[project/]name[:vN|:alias] or a digest",
        ),
    ],
    project: Annotated[
        str | None, Query(min_length=1, max_length=_PROJECT_CHARS, description="look here")
    ] = None,
) -> JSONResponse:
    """The version ``ref`` names; a project in ``ref`` wins over ``project``."""
    who = principal_of(request)
    parsed = parse_ref(ref)
    scope = parsed.project or (_project(project) if project is not None else None)
    if scope is None:
        scope = who.project
    elif not who.can_see(scope):
        what = f"artifact {parsed.name!r}" if parsed.name else f"artifact version {parsed.digest}"
        raise NotFoundError(f"{what} in project {scope!r} does not exist")
    found = _arts(request).resolve(parsed, project=scope)
    return _json(found.to_dict())


@router.get("/artifacts/consumers", response_model=ConsumersOut)
def consumers(
    request: Request, project: ProjectQuery, name: NameQuery, version: VersionQuery
) -> JSONResponse:
    """Ids of the runs that used ``project/name:vN``, in the order recorded."""
    found = _version(request, project, name, version)
    run_ids = _arts(request).consumers(found)
    who = principal_of(request)
    if who.project is not None:
        store = request.app.state.store
        seen = []
        for run_id in run_ids:
            try:
                if who.can_see(store.get_run(run_id).project):
                    seen.append(run_id)
            except NotFoundError:
                continue
        run_ids = seen
    return _json({"run_ids": run_ids})


@router.get("/runs/{run_id}/inputs", response_model=VersionsOut)
def run_inputs(request: Request, run_id: RunIdPath) -> JSONResponse:
    """The artifact versions the run used, in the order first recorded."""
    run = visible_run(request, run_id)
    return _json({"versions": _visible(request, _arts(request).run_inputs(run.run_id))})


@router.get("/runs/{run_id}/outputs", response_model=VersionsOut)
def run_outputs(request: Request, run_id: RunIdPath) -> JSONResponse:
    """The artifact versions the run produced, oldest first."""
    run = visible_run(request, run_id)
    return _json({"versions": _visible(request, _arts(request).run_outputs(run.run_id))})


@router.get("/lineage", response_model=LineageOut)
def lineage(
    request: Request,
    run_id: Annotated[
        str | None, Query(pattern=RUN_ID_PATTERN, description="root: a run (full id)")
    ] = None,
    project: Annotated[
        str | None,
        Query(min_length=1, max_length=_PROJECT_CHARS, description="root: a version's project"),
    ] = None,
    name: Annotated[
        str | None, Query(min_length=1, max_length=MAX_NAME_CHARS, description="its name")
    ] = None,
    version: Annotated[int | None, Query(ge=1, le=999_999_999, description="its N")] = None,
    direction: Literal["upstream", "downstream", "both"] = "both",
    max_depth: Annotated[
        int | None, Query(ge=0, le=MAX_DEPTH, description="edges to follow (none: all)")
    ] = None,
) -> JSONResponse:
    """The lineage graph from a run, or from the version ``project/name:vN`` (give one)."""
    by_version = (project, name, version)
    if run_id is not None and any(x is not None for x in by_version):
        raise InvalidArgumentError(
            "lineage needs exactly one root: run_id, or project+name+version"
        )
    root_version = None
    if run_id is not None:
        run_id = visible_run(request, run_id).run_id
    elif project is not None and name is not None and version is not None:
        root_version = _version(request, project, name, version)
    else:
        raise InvalidArgumentError(
            "lineage needs exactly one root: run_id, or project, name and version together"
        )
    graph = _arts(request).lineage(
        run_id=run_id, version=root_version, direction=direction, max_depth=max_depth
    )
    return _json(_scoped_graph(principal_of(request), graph))
