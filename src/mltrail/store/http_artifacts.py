"""``HttpArtifactStore``: the :class:`~mltrail.artifacts.records.ArtifactStore` of a server.

Obtained with ``HttpTrackingStore.artifacts()``; it shares that store's
:class:`mltrail._http.ServerClient` (keep-alive connections, ``MLTRAIL_TOKEN``) and calls one
route of :mod:`mltrail.server.artifacts_api` per method (docs/rest-api.md). Records come back
as their ``to_dict()`` and are rebuilt here. Names, aliases and references are validated
before they leave (the same rules the server applies), so a bad one is an
:class:`~mltrail.errors.InvalidArgumentError` naming it without a round trip.

Failure model: as :mod:`mltrail._http` (unreachable / 5xx → ``StoreError``; other errors as
the server names them: 404 ``NotFoundError``, 409 ``AmbiguousIdError``, 422
``InvalidArgumentError``). Artifact bytes never travel here: they are objects
(:mod:`mltrail.objects.http`), pushed before the version is recorded.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from mltrail._validation import _check_text, check_key
from mltrail.artifacts.records import (
    MAX_ALIAS_CHARS,
    Artifact,
    ArtifactRef,
    ArtifactVersion,
    Direction,
    LineageEdge,
    LineageGraph,
    LineageNode,
    NewVersion,
    check_alias,
    check_artifact_name,
    check_lineage_args,
    parse_ref,
)
from mltrail.errors import InvalidArgumentError, NotFoundError, StoreError

if TYPE_CHECKING:
    from mltrail._http import ServerClient

__all__ = ["HttpArtifactStore", "version_from_dict"]

_JSON = "application/json"
_NODE_KEYS = ("id", "type", "label")
_RUN_ID = re.compile(r"[A-Za-z0-9_.\-]{1,32}")


def version_from_dict(data: dict[str, Any]) -> ArtifactVersion:
    """Inverse of :meth:`ArtifactVersion.to_dict` (``ref`` is derived, so dropped).

    Raises:
        StoreError: the dict is not a version (a server that does not keep the contract).
    """
    try:
        return ArtifactVersion(
            project=str(data["project"]),
            name=str(data["name"]),
            type=str(data["type"]),
            version=int(data["version"]),
            digest=str(data["digest"]),
            kind=str(data["kind"]),
            size=int(data["size"]),
            file_count=int(data["file_count"]),
            uri=None if data.get("uri") is None else str(data["uri"]),
            metadata=dict(data.get("metadata") or {}),
            source=dict(data.get("source") or {}),
            run_id=None if data.get("run_id") is None else str(data["run_id"]),
            created_ms=int(data["created_ms"]),
            aliases=tuple(str(a) for a in data.get("aliases") or ()),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise StoreError(f"the server sent a malformed artifact version: {exc!r}") from None


def _artifact_from_dict(data: dict[str, Any]) -> Artifact:
    try:
        return Artifact(
            project=str(data["project"]),
            name=str(data["name"]),
            type=str(data["type"]),
            created_ms=int(data["created_ms"]),
            latest_version=int(data["latest_version"]),
            version_count=int(data["version_count"]),
            aliases={str(k): int(x) for k, x in (data.get("aliases") or {}).items()},
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise StoreError(f"the server sent a malformed artifact: {exc!r}") from None


def _graph_from_dict(data: dict[str, Any]) -> LineageGraph:
    try:
        nodes = tuple(
            LineageNode(
                str(n["id"]),
                n["type"],
                str(n["label"]),
                {k: x for k, x in n.items() if k not in _NODE_KEYS},
            )
            for n in data["nodes"]
        )
        edges = tuple(
            LineageEdge(str(e["source"]), str(e["target"]), e["relation"]) for e in data["edges"]
        )
        return LineageGraph(
            root=str(data["root"]),
            direction=data["direction"],
            nodes=nodes,
            edges=edges,
            truncated=bool(data.get("truncated", False)),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise StoreError(f"the server sent a malformed lineage graph: {exc!r}") from None


def _body(obj: dict[str, Any]) -> bytes:
    from mltrail.entities import json_safe

    return json.dumps(json_safe(obj), allow_nan=False).encode("utf-8")


class HttpArtifactStore:
    """Artifact versions, aliases and lineage kept by an ``mltrail server``."""

    def __init__(self, client: ServerClient) -> None:
        self._client = client

    def _get(self, path: str, **query: Any) -> Any:
        return self._client.json("GET", path, query=query)

    def _send(self, method: str, path: str, body: dict[str, Any]) -> Any:
        return self._client.json(method, path, body=_body(body), content_type=_JSON)

    # -- writes ---------------------------------------------------------------------------

    def log_version(self, new: NewVersion) -> ArtifactVersion:
        from mltrail.artifacts.records import check_metadata

        body = {
            "project": check_key(new.project, "project"),
            "name": check_artifact_name(new.name),
            "type": new.type,
            "digest": new.digest,
            "kind": new.kind,
            "size": new.size,
            "file_count": new.file_count,
            "uri": new.uri,
            "metadata": check_metadata(new.metadata),
            "source": check_metadata(new.source),
            "run_id": new.run_id,
            "aliases": [check_alias(a) for a in new.aliases],
            "created_ms": new.created_ms,
        }
        return version_from_dict(self._send("POST", "/api/v1/artifacts/versions", body))

    def set_alias(self, project: str, name: str, alias: str, version: int) -> ArtifactVersion:
        body = {
            "project": check_key(project, "project"),
            "name": check_artifact_name(name),
            "alias": check_alias(alias),
            "version": _version_number(version),
        }
        return version_from_dict(self._send("PUT", "/api/v1/artifacts/aliases", body))

    def remove_alias(self, project: str, name: str, alias: str) -> bool:
        out = self._client.json(
            "DELETE",
            "/api/v1/artifacts/aliases",
            query={
                "project": check_key(project, "project"),
                "name": check_artifact_name(name),
                "alias": _check_text(alias, "artifact alias", 4 * MAX_ALIAS_CHARS),
            },
        )
        return bool(out["removed"])

    def record_input(self, run_id: str, version: ArtifactVersion) -> None:
        body = {"project": version.project, "name": version.name, "version": version.version}
        self._send("POST", f"/api/v1/runs/{_seg(run_id)}/inputs", body)

    # -- reads ----------------------------------------------------------------------------

    def resolve(self, ref: str | ArtifactRef, project: str | None = None) -> ArtifactVersion:
        parsed = ref if isinstance(ref, ArtifactRef) else parse_ref(ref)
        query = {
            "ref": str(parsed),
            "project": None if project is None else check_key(project, "project"),
        }
        return version_from_dict(self._get("/api/v1/artifacts/resolve", **query))

    def list_artifacts(self, project: str | None = None) -> list[Artifact]:
        query = {"project": None if project is None else check_key(project, "project")}
        out = self._get("/api/v1/artifacts", **query)
        return [_artifact_from_dict(a) for a in out["artifacts"]]

    def list_versions(self, project: str, name: str) -> list[ArtifactVersion]:
        out = self._get(
            "/api/v1/artifacts/versions",
            project=check_key(project, "project"),
            name=check_artifact_name(name),
        )
        return [version_from_dict(x) for x in out["versions"]]

    def run_inputs(self, run_id: str) -> list[ArtifactVersion]:
        out = self._get(f"/api/v1/runs/{_seg(run_id)}/inputs")
        return [version_from_dict(x) for x in out["versions"]]

    def run_outputs(self, run_id: str) -> list[ArtifactVersion]:
        out = self._get(f"/api/v1/runs/{_seg(run_id)}/outputs")
        return [version_from_dict(x) for x in out["versions"]]

    def consumers(self, version: ArtifactVersion) -> list[str]:
        out = self._get(
            "/api/v1/artifacts/consumers",
            project=version.project,
            name=version.name,
            version=version.version,
        )
        return [str(r) for r in out["run_ids"]]

    def lineage(
        self,
        *,
        run_id: str | None = None,
        version: ArtifactVersion | None = None,
        direction: Direction = "both",
        max_depth: int | None = None,
    ) -> LineageGraph:
        check_lineage_args(run_id, version, direction, max_depth)
        query: dict[str, Any] = {"direction": direction, "max_depth": max_depth}
        if run_id is not None:
            query["run_id"] = _run_id(run_id)
        else:
            assert version is not None
            query.update(project=version.project, name=version.name, version=version.version)
        return _graph_from_dict(self._get("/api/v1/lineage", **query))


def _version_number(version: object) -> int:
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidArgumentError(f"artifact version must be an int >= 1, got {version!r}")
    return version


def _run_id(run_id: object) -> str:
    """A run id as the server's routes accept it; any other text names no run."""
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
        raise NotFoundError(f"run {run_id!r} does not exist")
    return run_id


def _seg(run_id: str) -> str:
    return quote(_run_id(run_id), safe="")
