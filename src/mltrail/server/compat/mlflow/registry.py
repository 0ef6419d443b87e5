"""MLflow's model registry over ours (``mltrail.registry``): models, versions, aliases, search.

MLflow's registered-model names are global; ours live in a project. A name maps to a model
of the **registry project**: the token's project for a project-scoped token, else the
project ``default``. A version's bytes are the run's artifacts under its ``source``
(``runs:/<run>/<path>`` or ``mlflow-artifacts:/<exp>/<run>/artifacts/<path>``): the run
files there are copied into the server's object store as one tree, logged as a version of
the artifact named like the model (type ``model``), and that artifact version becomes the
model version, pinned by digest (the bytes never change afterwards). The run is the
version's run when it belongs to the registry project (lineage), and is kept in the version's
metadata (``mlflow.run_id``, with ``mlflow.source``) in every case. Aliases move through the
same policy check as ``PUT /api/v1/models/.../aliases`` (``registry/policy.py``). Deleting a
model or version archives it (the history keeps it); archived ones read as missing here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter

from mltrail.errors import (
    AlreadyExistsError,
    InvalidArgumentError,
    NotFoundError,
    NotSupportedError,
)
from mltrail.registry.records import NewModelVersion, check_model_name
from mltrail.server.auth import principal_of
from mltrail.server.compat.mlflow import convert as cv
from mltrail.server.compat.mlflow.errors import add_endpoint
from mltrail.server.compat.mlflow.experiments import page_token, token_offset
from mltrail.server.compat.mlflow.filters import parse_clauses
from mltrail.server.compat.mlflow.runs import visible_run
from mltrail.server.paths import logical_path
from mltrail.store.optional import HasArtifacts, HasModelRegistry, HasRunFiles

if TYPE_CHECKING:
    from fastapi import Request

    from mltrail.registry.base import ModelRegistry
    from mltrail.registry.records import ModelVersion, RegisteredModel
    from mltrail.server.auth import Principal
    from mltrail.server.compat.mlflow.errors import Fields

__all__ = ["router"]

router = APIRouter()
_SOURCE = "mlflow.source"
_RUN = "mlflow.run_id"
_TAGS = "mlflow.tags"


def _reg(request: Request) -> ModelRegistry:
    store = request.app.state.store
    if not isinstance(store, HasModelRegistry):
        raise NotSupportedError("this store keeps no model registry")
    return store.model_registry()


def _project(request: Request) -> str:
    return principal_of(request).project or cv.DEFAULT_PROJECT


def _actor(who: Principal) -> str:
    return who.name or (f"token {who.token_id}" if who.token_id else "local")


def _name(fields: Fields, field: str = "name") -> str:
    return check_model_name(cv.text(fields, field, required=True))


def _model(request: Request, name: str) -> RegisteredModel:
    try:
        model = _reg(request).get_model(_project(request), name)
    except NotFoundError:
        model = None
    if model is None or model.archived:
        raise NotFoundError(f"Registered Model with name={name} not found")
    return model


def _version(request: Request, name: str, version: object) -> ModelVersion:
    number = cv.int64({"version": version}, "version")
    if number is None:
        raise InvalidArgumentError("Missing value for required parameter 'version'.")
    try:
        found = _reg(request).get_version(_project(request), name, number)
    except NotFoundError:
        found = None
    if found is None or found.archived:
        raise NotFoundError(f"Model Version (name={name}, version={number}) not found")
    return found


def version_dict(mv: ModelVersion) -> dict[str, Any]:
    """``mv`` as MLflow's ``ModelVersion`` message (stages are gone: ``None``)."""
    tags = mv.metadata.get(_TAGS) or {}
    return {
        "name": mv.name,
        "version": str(mv.version),
        "creation_timestamp": mv.created_ms,
        "last_updated_timestamp": mv.created_ms,
        "user_id": mv.created_by,
        "current_stage": "None",
        "description": mv.description,
        "source": str(mv.metadata.get(_SOURCE, "")),
        "run_id": str(mv.metadata.get(_RUN) or mv.run_id or ""),
        "status": "READY",
        "tags": [{"key": k, "value": str(x)} for k, x in sorted(tags.items())],
        "aliases": list(mv.aliases),
    }


def model_dict(request: Request, model: RegisteredModel) -> dict[str, Any]:
    latest = []
    if model.latest_version:
        try:
            latest = [version_dict(_version(request, model.name, model.latest_version))]
        except NotFoundError:
            latest = []
    return {
        "name": model.name,
        "creation_timestamp": model.created_ms,
        "last_updated_timestamp": model.updated_ms,
        "user_id": model.owner,
        "description": model.description,
        "latest_versions": latest,
        "tags": [{"key": k, "value": x} for k, x in sorted(model.tags.items())],
        "aliases": [{"alias": a, "version": str(n)} for a, n in sorted(model.aliases.items())],
    }


def _kv(items: object) -> dict[str, str]:
    if not items:
        return {}
    if not isinstance(items, list):
        raise InvalidArgumentError("'tags' must be a list of {key, value}")
    return {str(t.get("key")): str(t.get("value", "")) for t in items if isinstance(t, dict)}


# -- registered models -----------------------------------------------------------------------


def create_model(request: Request, fields: Fields) -> dict[str, Any]:
    name = _name(fields)
    reg = _reg(request)
    try:
        existing = reg.get_model(_project(request), name)
    except NotFoundError:
        existing = None
    if existing is not None:
        raise AlreadyExistsError(f"Registered Model (name={name}) already exists.")
    who = principal_of(request)
    model = reg.create_model(
        _project(request),
        name,
        description=cv.text(fields, "description"),
        owner=_actor(who),
        tags=_kv(fields.get("tags")),
        actor=_actor(who),
    )
    return {"registered_model": model_dict(request, model)}


def get_model(request: Request, fields: Fields) -> dict[str, Any]:
    return {"registered_model": model_dict(request, _model(request, _name(fields)))}


def update_model(request: Request, fields: Fields) -> dict[str, Any]:
    name = _name(fields)
    _model(request, name)
    model = _reg(request).update_model(
        _project(request),
        name,
        description=cv.text(fields, "description"),
        actor=_actor(principal_of(request)),
    )
    return {"registered_model": model_dict(request, model)}


def delete_model(request: Request, fields: Fields) -> dict[str, Any]:
    name = _name(fields)
    _model(request, name)
    _reg(request).set_model_archived(
        _project(request), name, True, actor=_actor(principal_of(request)), reason="MLflow delete"
    )
    return {}


def _set_model_tags(request: Request, fields: Fields, *, delete: bool) -> dict[str, Any]:
    name = _name(fields)
    model = _model(request, name)
    key = cv.text(fields, "key", required=True)
    tags = dict(model.tags)
    if delete:
        if tags.pop(key, None) is None:
            raise NotFoundError(f"No tag with key {key!r} on registered model {name!r}")
    else:
        tags[key] = cv.text(fields, "value")
    _reg(request).update_model(
        _project(request), name, tags=tags, actor=_actor(principal_of(request))
    )
    return {}


def set_model_tag(request: Request, fields: Fields) -> dict[str, Any]:
    return _set_model_tags(request, fields, delete=False)


def delete_model_tag(request: Request, fields: Fields) -> dict[str, Any]:
    return _set_model_tags(request, fields, delete=True)


def _name_filter(text: str, what: str) -> list[tuple[str, str, Any]]:
    out = []
    for c in parse_clauses(text or None, experiments=True):
        key = c.key.lower() if c.kind == "attr" else f"{c.kind}.{c.key}"
        if key not in what.split(",") and c.kind != "tag":
            raise InvalidArgumentError(f"invalid filter key {c.key!r}: expected {what}")
        if c.op not in ("=", "!=", "LIKE", "ILIKE", "IN"):
            raise InvalidArgumentError(f"invalid operator {c.op!r} for {c.key!r}")
        out.append((key, c.op, c.value))
    return out


def _like(value: str, pattern: str, fold: bool) -> bool:
    import fnmatch

    glob = pattern.replace("*", "[*]").replace("?", "[?]").replace("%", "*").replace("_", "?")
    return (
        fnmatch.fnmatchcase(value.lower(), glob.lower())
        if fold
        else fnmatch.fnmatchcase(value, glob)
    )


def _hit(value: str | None, op: str, want: Any) -> bool:
    if value is None:  # a tag the model does not carry: only != matches
        return op == "!="
    if op == "=":
        return value == str(want)
    if op == "!=":
        return value != str(want)
    if op == "IN":
        return value in {str(x) for x in want}
    return _like(value, str(want), op == "ILIKE")


def _page(items: list[dict[str, Any]], fields: Fields, key: str) -> dict[str, Any]:
    max_results = cv.int64(fields, "max_results", 100) or 100
    if not 1 <= max_results <= 1000 and key == "registered_models":
        raise InvalidArgumentError("max_results must be between 1 and 1000")
    offset = token_offset(cv.text(fields, "page_token"))
    out: dict[str, Any] = {key: items[offset : offset + max_results]}
    if offset + max_results < len(items):
        out["next_page_token"] = page_token(offset + max_results)
    return out


def search_models(request: Request, fields: Fields) -> dict[str, Any]:
    clauses = _name_filter(cv.text(fields, "filter"), "name")
    models = [
        m
        for m in _reg(request).list_models(_project(request))
        if all(
            _hit(m.tags.get(k[4:]) if k.startswith("tag.") else m.name, op, want)
            for k, op, want in clauses
        )
    ]
    desc = any(o.strip().upper().endswith("DESC") for o in cv.strings(fields, "order_by"))
    models.sort(key=lambda m: m.name, reverse=desc)
    return _page([model_dict(request, m) for m in models], fields, "registered_models")


def latest_versions(request: Request, fields: Fields) -> dict[str, Any]:
    model = _model(request, _name(fields))
    stages = [s.lower() for s in cv.strings(fields, "stages")]
    if not model.latest_version or (stages and "none" not in stages):
        return {"model_versions": []}
    return {"model_versions": [version_dict(_version(request, model.name, model.latest_version))]}


# -- versions --------------------------------------------------------------------------------


def _source_files(request: Request, source: str, run_id: str) -> tuple[str, str]:
    """``(run_id, folder)`` the source names (``runs:/`` or our artifact proxy's URI)."""
    if source.startswith("runs:/"):
        rid, _, folder = source[len("runs:/") :].partition("/")
    elif source.startswith("mlflow-artifacts:/"):
        parts = source[len("mlflow-artifacts:/") :].strip("/").split("/", 3)
        if len(parts) < 3 or parts[2] != "artifacts":
            raise InvalidArgumentError(f"source {source!r} is not a run's artifact location")
        rid, folder = parts[1], parts[3] if len(parts) == 4 else ""
    else:
        raise InvalidArgumentError(
            f"source {source!r}: mltrail registers versions from a run's artifacts "
            "(runs:/<run>/<path> or mlflow-artifacts:/...); MLflow 3's logged models "
            "(models:/m-...) are not kept"
        )
    if run_id and rid != run_id:
        raise InvalidArgumentError(f"source {source!r} is not an artifact of run {run_id!r}")
    folder = folder.strip("/")
    return rid, (logical_path(folder) if folder else "")


def _snapshot(
    request: Request, project: str, name: str, run_id: str, folder: str, *, link_run: bool
) -> int:
    """The run's files under ``folder`` as one object tree, logged as an artifact version of
    ``project`` (made by the run when ``link_run``); returns its version number."""
    from mltrail.artifacts.records import NewVersion
    from mltrail.objects.tree import Tree, TreeEntry
    from mltrail.server.objects_api import refer_project

    store = request.app.state.store
    if not isinstance(store, HasRunFiles) or not isinstance(store, HasArtifacts):
        raise NotSupportedError("this store keeps no run files or artifacts")
    prefix = f"{folder}/" if folder else ""
    files = [f for f in store.run_files().list(run_id) if f.path.startswith(prefix)]
    if not files:
        raise NotFoundError(f"run {run_id} has no artifacts under {folder or '/'!r}")
    odb = request.app.state.objects
    entries = []
    for f in files:
        disk = request.app.state.filestore.open_path(f.digest, f.size)
        entries.append(TreeEntry(f.path[len(prefix) :], odb.add_file(disk), f.size))
    tree = Tree(entries)
    digest = odb.add_tree(tree)
    refer_project(store, project, [digest, *sorted(tree.digests())])
    version = store.artifacts().log_version(
        NewVersion(
            project=project,
            name=name,
            type="model",
            digest=digest,
            kind="tree",
            size=tree.size,
            file_count=len(entries),
            source={"mlflow_run": run_id, "path": folder},
            run_id=run_id if link_run else None,
        )
    )
    return version.version


def create_version(request: Request, fields: Fields) -> dict[str, Any]:
    name = _name(fields)
    model = _model(request, name)
    source = cv.text(fields, "source", required=True)
    run_id, folder = _source_files(request, source, cv.text(fields, "run_id"))
    record = visible_run(request, run_id)
    project = model.project
    same = record.project == project
    artifact_version = _snapshot(request, project, name, run_id, folder, link_run=same)
    metadata: dict[str, Any] = {_SOURCE: source, _RUN: run_id}
    tags = _kv(fields.get("tags"))
    if tags:
        metadata[_TAGS] = tags
    who = principal_of(request)
    mv = _reg(request).register_version(
        NewModelVersion(
            project=project,
            name=name,
            artifact_name=name,
            artifact_version=artifact_version,
            run_id=run_id if same else None,
            metadata=metadata,
            description=cv.text(fields, "description"),
            actor=_actor(who),
        )
    )
    return {"model_version": version_dict(mv)}


def get_version(request: Request, fields: Fields) -> dict[str, Any]:
    return {"model_version": version_dict(_version(request, _name(fields), fields.get("version")))}


def delete_version(request: Request, fields: Fields) -> dict[str, Any]:
    name = _name(fields)
    mv = _version(request, name, fields.get("version"))
    _reg(request).set_version_archived(
        mv.project, name, mv.version, True, actor=_actor(principal_of(request))
    )
    return {}


def download_uri(request: Request, fields: Fields) -> dict[str, Any]:
    mv = _version(request, _name(fields), fields.get("version"))
    return {"artifact_uri": str(mv.metadata.get(_SOURCE, ""))}


def search_versions(request: Request, fields: Fields) -> dict[str, Any]:
    clauses = _name_filter(cv.text(fields, "filter"), "name,run_id,source_path,source")
    reg = _reg(request)
    out: list[dict[str, Any]] = []
    for model in reg.list_models(_project(request)):
        if not all(_hit(model.name, op, w) for k, op, w in clauses if k == "name"):
            continue
        for mv in reg.list_versions(model.project, model.name):
            d = version_dict(mv)
            tags = {t["key"]: t["value"] for t in d["tags"]}
            fields_of = {"run_id": d["run_id"], "source": d["source"], "source_path": d["source"]}
            if not mv.archived and all(
                _hit(tags.get(k[4:]) if k.startswith("tag.") else fields_of[k], op, w)
                for k, op, w in clauses
                if k != "name"
            ):
                out.append(d)
    out.sort(key=lambda d: (d["name"], -int(d["version"])))
    return _page(out, fields, "model_versions")


# -- aliases ---------------------------------------------------------------------------------


def set_alias(request: Request, fields: Fields) -> dict[str, Any]:
    from mltrail.registry.policy import Policy, guarded_set_alias
    from mltrail.store.tokens import Scope

    name = _name(fields)
    mv = _version(request, name, fields.get("version"))
    who = principal_of(request)
    guarded_set_alias(
        _reg(request),
        request.app.state.store,
        Policy(),
        mv.project,
        name,
        cv.text(fields, "alias", required=True),
        mv.version,
        actor=_actor(who),
        is_admin=who.scope.allows(Scope.ADMIN),
    )
    return {}


def delete_alias(request: Request, fields: Fields) -> dict[str, Any]:
    name = _name(fields)
    model = _model(request, name)
    alias = cv.text(fields, "alias", required=True)
    if not _reg(request).remove_alias(
        model.project, name, alias, actor=_actor(principal_of(request))
    ):
        raise NotFoundError(f"Registered model alias {alias} not found.")
    return {}


def get_by_alias(request: Request, fields: Fields) -> dict[str, Any]:
    name = _name(fields)
    model = _model(request, name)
    alias = cv.text(fields, "alias", required=True)
    number = model.aliases.get(alias)
    if number is None:
        raise NotFoundError(f"Registered model alias {alias} not found.")
    return {"model_version": version_dict(_version(request, name, number))}


def _unsupported(request: Request, fields: Fields) -> dict[str, Any]:
    raise NotSupportedError(
        f"{request.url.path.rsplit('/', 2)[-2:]}: mltrail's registry keeps model names, "
        "version descriptions and tags fixed, and has no stages (use aliases)",
    )


for _method, _path, _handler in (
    ("POST", "/registered-models/create", create_model),
    ("GET", "/registered-models/get", get_model),
    ("PATCH", "/registered-models/update", update_model),
    ("DELETE", "/registered-models/delete", delete_model),
    ("GET", "/registered-models/search", search_models),
    ("POST", "/registered-models/get-latest-versions", latest_versions),
    ("GET", "/registered-models/get-latest-versions", latest_versions),
    ("POST", "/registered-models/set-tag", set_model_tag),
    ("DELETE", "/registered-models/delete-tag", delete_model_tag),
    ("POST", "/registered-models/alias", set_alias),
    ("DELETE", "/registered-models/alias", delete_alias),
    ("GET", "/registered-models/alias", get_by_alias),
    ("POST", "/model-versions/create", create_version),
    ("GET", "/model-versions/get", get_version),
    ("DELETE", "/model-versions/delete", delete_version),
    ("GET", "/model-versions/search", search_versions),
    ("GET", "/model-versions/get-download-uri", download_uri),
    ("POST", "/registered-models/rename", _unsupported),
    ("PATCH", "/model-versions/update", _unsupported),
    ("POST", "/model-versions/transition-stage", _unsupported),
    ("POST", "/model-versions/set-tag", _unsupported),
    ("DELETE", "/model-versions/delete-tag", _unsupported),
):
    add_endpoint(router, _path, _method, _handler)
