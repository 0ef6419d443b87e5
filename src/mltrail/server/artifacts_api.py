"""``/api/v1/artifacts``, run inputs/outputs and ``/api/v1/lineage``: artifacts over a server.

One route per :class:`~mltrail.artifacts.records.ArtifactStore` method, so
:class:`mltrail.store.http_artifacts.HttpArtifactStore` keeps the same contract as the SQL
store (checked by :class:`mltrail.testing.ArtifactStoreContract` through a real server).
Records travel as their ``to_dict()``; the bytes of artifacts never pass here: they are
content-addressed objects (:mod:`mltrail.server.objects_api`), uploaded before the version is
recorded. A ``file`` or ``tree`` version is recorded only when this server holds its objects
(for a tree: the manifest and every file it names) and the digest is of the kind claimed
(``.tree`` digests are trees); otherwise 422 naming ``body.digest`` or ``body.kind`` and the
missing or wrong digests. ``reference`` versions name data elsewhere and are not checked.

Project and artifact names travel in query strings and JSON bodies, never in the path (a
project name may hold ``/``). Project-scoped tokens see one project: another project's
artifacts, versions and runs are 404 before anything is written, listings leave them out, and
lineage graphs drop their nodes. Reads are ``GET`` (read scope), writes ``POST``/``PUT``/
``DELETE`` (write scope: the auth middleware decides by method).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, field_validator

from mltrail import _validation as v
from mltrail.artifacts.records import (
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
from mltrail.entities import json_safe
from mltrail.errors import InvalidArgumentError, NotFoundError
from mltrail.server.api import ERROR_RESPONSES, RUN_ID_PATTERN, RunIdPath, visible_run
from mltrail.server.auth import principal_of
from mltrail.server.models import MAX_CONFIG_DEPTH, MAX_INT64, _check_depth
from mltrail.server.objects_api import refer_project, tree_files
from mltrail.server.scoping import readable_objects, visible_run_ids

if TYPE_CHECKING:
    from mltrail.artifacts.base import ArtifactStore
    from mltrail.artifacts.records import ArtifactVersion, LineageGraph
    from mltrail.objects.base import ObjectStore
    from mltrail.server.auth import Principal

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
    from mltrail.store.optional import HasArtifacts

    store = request.app.state.store
    if not isinstance(store, HasArtifacts):
        raise NotFoundError("this store keeps no artifacts")
    return store.artifacts()


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
    """The versions the principal may see, as dicts; a producing run of a project it may not
    see is left out (``run_id`` None), like a version logged outside a run."""
    who = principal_of(request)
    shown = [x.to_dict() for x in versions if who.can_see(x.project)]
    _hide_foreign_runs(request, shown)
    return shown


def _one(request: Request, version: ArtifactVersion) -> dict[str, Any]:
    """One version the principal may see, as :func:`_visible` shows it."""
    return _visible(request, [version])[0]


def _hide_foreign_runs(request: Request, records: list[dict[str, Any]]) -> None:
    """Set ``run_id`` to None in ``records`` where the principal may not see that run."""
    who = principal_of(request)
    if who.project is None:
        return
    named = {str(r["run_id"]) for r in records if r.get("run_id") is not None}
    seen = visible_run_ids(who, request.app.state.store, sorted(named))
    for r in records:
        if r.get("run_id") is not None and r["run_id"] not in seen:
            r["run_id"] = None


def _scoped_graph(request: Request, graph: LineageGraph) -> dict[str, Any]:
    """The graph as the principal may see it: the nodes of its projects that the root reaches
    through such nodes only (a walk never crosses another project, even to come back), their
    edges, and no run id of another project inside a node."""
    who = principal_of(request)
    out = graph.to_dict()
    if who.project is None:
        return out
    nodes = {n["id"]: n for n in out["nodes"] if who.can_see(str(n.get("project", "")))}
    edges = [e for e in out["edges"] if e["source"] in nodes and e["target"] in nodes]
    reached = {out["root"]} & set(nodes)
    for way in ("upstream", "downstream"):
        if out["direction"] in (way, "both"):
            reached |= _reach(out["root"], edges, forward=way == "downstream") & set(nodes)
    out["nodes"] = [n for i, n in nodes.items() if i in reached]
    out["edges"] = [e for e in edges if e["source"] in reached and e["target"] in reached]
    # an artifact node carries its version's fields (its producing run's id among them)
    _hide_foreign_runs(request, [n for n in out["nodes"] if n["id"].startswith("artifact:")])
    return out


def _reach(root: str, edges: list[dict[str, Any]], *, forward: bool) -> set[str]:
    """The nodes ``root`` reaches along ``edges`` (forward: source to target)."""
    step: dict[str, list[str]] = {}
    for e in edges:
        a, b = (e["source"], e["target"]) if forward else (e["target"], e["source"])
        step.setdefault(a, []).append(b)
    seen, todo = {root}, [root]
    while todo:
        for nxt in step.get(todo.pop(), []):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _body_error(field: str, message: str) -> RequestValidationError:
    """A 422 naming ``body.<field>``, shaped like any other validation error."""
    return RequestValidationError(
        [{"type": "value_error", "loc": ("body", field), "msg": message, "input": None}]
    )


#: missing digests named in a refusal (the rest are counted)
_SHOW_MISSING = 5


def _held(request: Request, digests: set[str]) -> set[str]:
    """Those of ``digests`` this server holds and the principal may read (a project-scoped
    token is told "not on this server" for another project's objects, as on a read)."""
    odb: ObjectStore = request.app.state.objects
    present = odb.exists_many(digests)
    return present & readable_objects(
        principal_of(request), request.app.state.store, sorted(present)
    )


def _check_objects(request: Request, body: NewVersionBody) -> None:
    """A file or tree version must name objects this server holds, of the kind it claims."""
    from mltrail.objects.digest import is_tree

    if body.kind == "reference":
        return
    tree = is_tree(body.digest)
    if tree != (body.kind == "tree"):
        actual = "a tree (it ends with .tree)" if tree else "a file (no .tree suffix)"
        raise _body_error("kind", f"kind {body.kind!r} does not match {body.digest}, {actual}")
    if not _held(request, {body.digest}):
        raise _body_error(
            "digest",
            f"object {body.digest} is not on this server; upload it first "
            "(PUT /api/v1/objects/{digest}) so the version can be served",
        )
    if not tree:
        return
    odb: ObjectStore = request.app.state.objects
    try:
        wanted = odb.read_tree(body.digest).digests()
    except InvalidArgumentError as exc:
        raise _body_error("digest", f"tree {body.digest} on this server: {exc}") from None
    missing = sorted(wanted - _held(request, wanted))
    if missing:
        shown = ", ".join(missing[:_SHOW_MISSING])
        more = f" and {len(missing) - _SHOW_MISSING} more" if len(missing) > _SHOW_MISSING else ""
        raise _body_error(
            "digest",
            f"tree {body.digest} names {len(missing)} object(s) this server does not hold: "
            f"{shown}{more}; upload them first",
        )


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
    _check_objects(request, body)
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
    version = _arts(request).log_version(new)
    if who.project is None:  # an unscoped token vouches for the objects it names
        objects = request.app.state.objects
        files = tree_files(objects, body.digest) if body.kind == "tree" else []
        if body.kind != "reference":
            refer_project(request.app.state.store, body.project, [body.digest, *files])
    return _json(_one(request, version))


@router.put("/artifacts/aliases", response_model=ArtifactVersionOut)
def set_alias(request: Request, body: AliasBody) -> JSONResponse:
    """Point ``alias`` at ``version`` (moving it); the version with its aliases."""
    _check_project(principal_of(request), body.project, f"artifact {body.name!r}")
    got = _arts(request).set_alias(body.project, body.name, body.alias, body.version)
    return _json(_one(request, got))


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
    return _json(_one(request, version))


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
    return _json({"versions": _visible(request, _arts(request).list_versions(project, name))})


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
    return _json(_one(request, found))


@router.get("/artifacts/consumers", response_model=ConsumersOut)
def consumers(
    request: Request, project: ProjectQuery, name: NameQuery, version: VersionQuery
) -> JSONResponse:
    """Ids of the runs that used ``project/name:vN``, in the order recorded."""
    found = _version(request, project, name, version)
    run_ids = _arts(request).consumers(found)
    who = principal_of(request)
    if who.project is not None:
        seen = visible_run_ids(who, request.app.state.store, run_ids)
        run_ids = [r for r in run_ids if r in seen]
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
    return _json(_scoped_graph(request, graph))
