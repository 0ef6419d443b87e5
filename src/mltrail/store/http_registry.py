"""``HttpModelRegistry``: the :class:`~mltrail.registry.base.ModelRegistry` of a server.

Obtained with ``HttpTrackingStore.model_registry()``; it shares that store's
:class:`mltrail._http.ServerClient` and calls one route of :mod:`mltrail.server.models_api`
per method. Names, aliases and versions are validated before they leave (the rules the server
applies), so a bad one fails without a round trip. The server records the token's identity
as the actor of each change (``actor`` arguments are not sent).

Failure model: as :mod:`mltrail._http` (unreachable / 5xx → ``StoreError``; 404
``NotFoundError``, 409 ``VersionConflictError`` / ``PolicyViolationError`` /
``AlreadyExistsError``, 403 ``PermissionDeniedError``, 422 ``InvalidArgumentError``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from mltrail._validation import check_key
from mltrail.errors import StoreError
from mltrail.registry.records import (
    HistoryEvent,
    ModelRef,
    ModelVersion,
    NewModelVersion,
    RegisteredModel,
    check_card,
    check_model_alias,
    check_model_name,
    check_reason,
    check_version_number,
    parse_model_ref,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from mltrail._http import ServerClient

__all__ = ["HttpModelRegistry"]

_JSON = "application/json"


def _parse(make: Callable[[dict[str, Any]], Any], data: Any, what: str) -> Any:
    try:
        return make(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise StoreError(f"the server sent a malformed {what}: {exc!r}") from None


class HttpModelRegistry:
    """The model registry kept by an ``mltrail server``."""

    def __init__(self, client: ServerClient) -> None:
        self._client = client

    def _path(self, name: str, *rest: str | int) -> str:
        parts = [quote(check_model_name(name), safe=""), *(quote(str(r), safe="") for r in rest)]
        return "/api/v1/models/" + "/".join(parts)

    def _send(self, method: str, path: str, body: dict[str, Any]) -> Any:
        from mltrail.entities import json_safe

        data = json.dumps(json_safe(body), allow_nan=False).encode("utf-8")
        return self._client.json(method, path, body=data, content_type=_JSON)

    def _model(self, data: Any) -> RegisteredModel:
        out: RegisteredModel = _parse(RegisteredModel.from_dict, data, "model")
        return out

    def _version(self, data: Any) -> ModelVersion:
        out: ModelVersion = _parse(ModelVersion.from_dict, data, "model version")
        return out

    # -- models ---------------------------------------------------------------------------

    def create_model(
        self,
        project: str,
        name: str,
        *,
        description: str = "",
        owner: str = "",
        tags: dict[str, str] | None = None,
        actor: str = "",
        reason: str = "",
    ) -> RegisteredModel:
        body = {
            "project": check_key(project, "project"),
            "name": check_model_name(name),
            "description": description,
            "owner": owner,
            "tags": tags or {},
            "reason": check_reason(reason),
        }
        return self._model(self._send("POST", "/api/v1/models", body))

    def update_model(
        self,
        project: str,
        name: str,
        *,
        description: str | None = None,
        owner: str | None = None,
        tags: dict[str, str] | None = None,
        actor: str = "",
        reason: str = "",
    ) -> RegisteredModel:
        body = {
            "project": check_key(project, "project"),
            "description": description,
            "owner": owner,
            "tags": tags,
            "reason": check_reason(reason),
        }
        return self._model(self._send("PATCH", self._path(name), body))

    def set_model_archived(
        self, project: str, name: str, archived: bool, *, actor: str = "", reason: str = ""
    ) -> RegisteredModel:
        body = {
            "project": check_key(project, "project"),
            "archived": bool(archived),
            "reason": check_reason(reason),
        }
        return self._model(self._send("PUT", self._path(name, "archived"), body))

    def get_model(self, project: str, name: str) -> RegisteredModel:
        query = {"project": check_key(project, "project")}
        return self._model(self._client.json("GET", self._path(name), query=query))

    def list_models(
        self, project: str | None = None, *, include_archived: bool = False
    ) -> list[RegisteredModel]:
        query: dict[str, Any] = {"include_archived": "true" if include_archived else None}
        if project is not None:
            query["project"] = check_key(project, "project")
        out = self._client.json("GET", "/api/v1/models", query=query)
        return [self._model(m) for m in out["models"]]

    # -- versions -------------------------------------------------------------------------

    def register_version(self, new: NewModelVersion) -> ModelVersion:
        new = new.checked()
        body = {
            "project": new.project,
            "artifact_name": new.artifact_name,
            "artifact_version": new.artifact_version,
            "run_id": new.run_id,
            "signature": new.signature,
            "metadata": new.metadata,
            "description": new.description,
            "reason": new.reason,
        }
        return self._version(self._send("POST", self._path(new.name, "versions"), body))

    def get_version(self, project: str, name: str, version: int) -> ModelVersion:
        path = self._path(name, "versions", check_version_number(version))
        query = {"project": check_key(project, "project")}
        return self._version(self._client.json("GET", path, query=query))

    def list_versions(self, project: str, name: str) -> list[ModelVersion]:
        query = {"project": check_key(project, "project")}
        out = self._client.json("GET", self._path(name, "versions"), query=query)
        return [self._version(x) for x in out["versions"]]

    def set_version_archived(
        self,
        project: str,
        name: str,
        version: int,
        archived: bool,
        *,
        actor: str = "",
        reason: str = "",
    ) -> ModelVersion:
        path = self._path(name, "versions", check_version_number(version), "archived")
        body = {
            "project": check_key(project, "project"),
            "archived": bool(archived),
            "reason": check_reason(reason),
        }
        return self._version(self._send("PUT", path, body))

    # -- aliases --------------------------------------------------------------------------

    def set_alias(
        self,
        project: str,
        name: str,
        alias: str,
        version: int,
        *,
        expected_version: int | None = None,
        actor: str = "",
        reason: str = "",
        override: dict[str, Any] | None = None,
        override_reason: str | None = None,
    ) -> ModelVersion:
        body = {
            "project": check_key(project, "project"),
            "version": check_version_number(version),
            "expected_version": expected_version,
            "reason": check_reason(reason),
            "override": override,
            "override_reason": override_reason,
        }
        path = self._path(name, "aliases", check_model_alias(alias))
        return self._version(self._send("PUT", path, body))

    def remove_alias(
        self,
        project: str,
        name: str,
        alias: str,
        *,
        expected_version: int | None = None,
        actor: str = "",
        reason: str = "",
    ) -> bool:
        query = {
            "project": check_key(project, "project"),
            "expected_version": expected_version,
            "reason": check_reason(reason) or None,
        }
        path = self._path(name, "aliases", check_model_alias(alias))
        return bool(self._client.json("DELETE", path, query=query)["removed"])

    def resolve(self, ref: ModelRef | str, project: str | None = None) -> ModelVersion:
        parsed = ref if isinstance(ref, ModelRef) else parse_model_ref(ref)
        query = {
            "ref": str(parsed),
            "project": None if project is None else check_key(project, "project"),
        }
        return self._version(self._client.json("GET", "/api/v1/model-refs/resolve", query=query))

    # -- cards and history ----------------------------------------------------------------

    def update_card(
        self,
        project: str,
        name: str,
        version: int,
        card: dict[str, Any],
        *,
        actor: str = "",
        reason: str = "",
    ) -> ModelVersion:
        path = self._path(name, "versions", check_version_number(version), "card")
        body = {
            "project": check_key(project, "project"),
            "card": check_card(card),
            "reason": check_reason(reason),
        }
        return self._version(self._send("PUT", path, body))

    def history(self, project: str, name: str, *, limit: int = 1000) -> list[HistoryEvent]:
        query = {"project": check_key(project, "project"), "limit": limit}
        out = self._client.json("GET", self._path(name, "history"), query=query)
        return [_parse(HistoryEvent.from_dict, e, "history event") for e in out["events"]]
