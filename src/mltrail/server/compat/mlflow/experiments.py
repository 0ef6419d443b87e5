"""MLflow experiments over our projects: create, get, get-by-name, search.

A project is an experiment (``convert``); a project-scoped token sees only its own, and
another project answers exactly like a missing one. Projects are few: lookups read the
store's project list (cached by name -> id, ids never change) instead of a table of ours.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import json
import threading
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter

from mltrail.errors import (
    AlreadyExistsError,
    InvalidArgumentError,
    NotFoundError,
    NotSupportedError,
)
from mltrail.server.auth import principal_of
from mltrail.server.compat.mlflow import convert as cv
from mltrail.server.compat.mlflow.errors import add_endpoint
from mltrail.server.compat.mlflow.filters import parse_clauses
from mltrail.store.optional import HasRunEdits

if TYPE_CHECKING:
    from fastapi import Request

    from mltrail.entities import Project
    from mltrail.server.compat.mlflow.errors import Fields
    from mltrail.store.base import TrackingStore

__all__ = ["Experiments", "experiments_of", "page_token", "router", "token_offset"]

router = APIRouter()
MAX_EXPERIMENTS = 50_000


class Experiments:
    """Experiment id <-> project, for one app (ids are stable, so the cache never goes stale;
    a miss re-reads the store's list, so projects made elsewhere are found)."""

    def __init__(self, store: TrackingStore) -> None:
        self._store = store
        self._by_id: dict[str, Project] = {}
        self._ids: dict[str, str] = {}
        self._lock = threading.Lock()

    def _refresh(self) -> list[Project]:
        projects = self._store.list_projects()
        with self._lock:
            for p in projects:
                self._by_id[cv.experiment_id_of(p)] = p
                self._ids[p.name] = cv.experiment_id_of(p)
        return projects

    def all(self) -> list[Project]:
        return self._refresh()

    def id_of_project(self, name: str) -> str:
        """The experiment id of the project ``name`` (which exists: a run of it was read)."""
        with self._lock:
            found = self._ids.get(name)
        if found is None:
            self._refresh()
            with self._lock:
                found = self._ids.get(name)
        if found is None:
            raise NotFoundError(f"project {name!r} does not exist")
        return found

    def by_id(self, experiment_id: str) -> Project:
        """The project of ``experiment_id`` (``"0"``: the default project, made on first use).

        Raises:
            NotFoundError: no such experiment.
        """
        if experiment_id == cv.DEFAULT_EXPERIMENT_ID:
            return self.ensure(cv.DEFAULT_PROJECT)
        with self._lock:
            found = self._by_id.get(experiment_id)
        if found is None:
            self._refresh()
            with self._lock:
                found = self._by_id.get(experiment_id)
        if found is None:
            raise cv.not_found_experiment(experiment_id)
        return found

    def ensure(self, name: str) -> Project:
        """The project ``name``, created with no runs when missing."""
        if not isinstance(self._store, HasRunEdits):
            raise NotSupportedError("this store cannot create empty projects")
        project = self._store.run_edits().ensure_project(name)
        with self._lock:
            self._by_id[cv.experiment_id_of(project)] = project
            self._ids[project.name] = cv.experiment_id_of(project)
        return project


def experiments_of(request: Request) -> Experiments:
    """The app's :class:`Experiments` (made on first use)."""
    state = request.app.state
    found = getattr(state, "mlflow_experiments", None)
    if found is None:
        found = Experiments(state.store)
        state.mlflow_experiments = found
    assert isinstance(found, Experiments)
    return found


def visible_experiment(request: Request, experiment_id: str) -> Project:
    """The experiment's project if the principal may see it (else as missing; checked before
    the default project is made on first use, so a refused request changes nothing)."""
    who = principal_of(request)
    if experiment_id == cv.DEFAULT_EXPERIMENT_ID and not who.can_see(cv.DEFAULT_PROJECT):
        raise cv.not_found_experiment(experiment_id)
    project = experiments_of(request).by_id(experiment_id)
    if not who.can_see(project.name):
        raise cv.not_found_experiment(experiment_id)
    return project


# -- routes ----------------------------------------------------------------------------------


def create_experiment(request: Request, fields: Fields) -> dict[str, Any]:
    name = cv.check_experiment_name(cv.text(fields, "name", required=True))
    cv.text(fields, "artifact_location")  # MLflow's types first, then what we keep
    if fields.get("tags") is not None and not isinstance(fields.get("tags"), list):
        raise cv.invalid("tags", fields.get("tags"))
    if fields.get("tags"):
        raise InvalidArgumentError(
            "experiment tags are not supported by mltrail (an experiment is a project, "
            "which has no tags); tag the runs instead"
        )
    project_name = cv.project_name_for(name)
    if not principal_of(request).can_see(project_name):
        raise NotFoundError(f"project {project_name!r} does not exist")
    exps = experiments_of(request)
    if any(p.name == project_name for p in exps.all()):
        raise AlreadyExistsError(f"Experiment '{name}' already exists.")
    return {"experiment_id": cv.experiment_id_of(exps.ensure(project_name))}


def get_experiment(request: Request, fields: Fields) -> dict[str, Any]:
    exp_id = cv.text(fields, "experiment_id", required=True)
    return {"experiment": cv.experiment_dict(visible_experiment(request, exp_id))}


def get_experiment_by_name(request: Request, fields: Fields) -> dict[str, Any]:
    name = cv.text(fields, "experiment_name", required=True)
    project_name = cv.project_name_for(name)
    missing = NotFoundError(f"Could not find experiment with name '{name}'")
    if not principal_of(request).can_see(project_name):
        raise missing
    exps = experiments_of(request)
    if project_name == cv.DEFAULT_PROJECT:
        return {"experiment": cv.experiment_dict(exps.ensure(project_name))}
    for p in exps.all():
        if p.name == project_name:
            return {"experiment": cv.experiment_dict(p)}
    raise missing


def _matches(exp: dict[str, Any], clauses: list[Any]) -> bool:
    for c in clauses:
        key = c.key.lower() if c.kind == "attr" else c.key
        if c.kind == "tag":
            return False  # experiments (projects) have no tags
        if key not in ("name", "creation_time", "last_update_time", "experiment_id"):
            raise InvalidArgumentError(f"invalid attribute key {c.key!r} for experiments")
        have = exp[key]
        want = c.value
        op = c.op
        if op in ("LIKE", "ILIKE", "NOT LIKE", "NOT ILIKE"):
            pattern = str(want).replace("%", "*").replace("_", "?")
            text = str(have)
            hit = (
                fnmatch.fnmatchcase(text, pattern)
                if "ILIKE" not in op
                else fnmatch.fnmatchcase(text.lower(), pattern.lower())
            )
            ok = hit != op.startswith("NOT")
        elif op in ("IN", "NOT IN"):
            ok = (have in want) != (op == "NOT IN")
        else:
            if isinstance(have, int) and isinstance(want, str):
                raise InvalidArgumentError(f"{key} compares with numbers")
            ops = {
                "=": have == want,
                "!=": have != want,
                "<": have < want,
                "<=": have <= want,
                ">": have > want,
                ">=": have >= want,
            }
            ok = ops[op]
        if not ok:
            return False
    return True


def _sort(exps: list[dict[str, Any]], order_by: list[str]) -> list[dict[str, Any]]:
    keys = [("last_update_time", True), ("experiment_id", False)] if not order_by else []
    for item in order_by:
        parts = item.strip().split()
        field = parts[0].split(".", 1)[-1] if parts else ""
        if field not in ("name", "creation_time", "last_update_time", "experiment_id"):
            raise InvalidArgumentError(f"invalid order_by clause {item!r} for experiments")
        desc = len(parts) > 1 and parts[1].upper() == "DESC"
        if len(parts) > 2 or (len(parts) == 2 and parts[1].upper() not in ("ASC", "DESC")):
            raise InvalidArgumentError(f"invalid order_by clause {item!r}")
        keys.append((field, desc))
    for field, desc in reversed(keys):
        exps.sort(key=lambda e, f=field: e[f], reverse=desc)  # type: ignore[misc]
    return exps


def token_offset(token: str) -> int:
    if not token:
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        offset = int(data["offset"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise InvalidArgumentError("Invalid page token") from None
    if offset < 0:
        raise InvalidArgumentError("Invalid page token")
    return offset


def page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def search_experiments(request: Request, fields: Fields) -> dict[str, Any]:
    max_results = cv.int64(fields, "max_results", 1000) or 1000
    if not 1 <= max_results <= MAX_EXPERIMENTS:
        raise InvalidArgumentError(
            f"Invalid value {max_results} for parameter 'max_results' supplied: it must be "
            f"between 1 and {MAX_EXPERIMENTS}"
        )
    view = str(fields.get("view_type") or "ACTIVE_ONLY").upper()
    clauses = parse_clauses(cv.text(fields, "filter") or None, experiments=True)
    offset = token_offset(cv.text(fields, "page_token"))
    who = principal_of(request)
    exps = [cv.experiment_dict(p) for p in experiments_of(request).all() if who.can_see(p.name)]
    if view in ("DELETED_ONLY", "2"):
        exps = []
    exps = _sort([e for e in exps if _matches(e, clauses)], cv.strings(fields, "order_by"))
    page = exps[offset : offset + max_results]
    out: dict[str, Any] = {"experiments": page}
    if offset + max_results < len(exps):
        out["next_page_token"] = page_token(offset + max_results)
    return out


def _unsupported(request: Request, fields: Fields) -> dict[str, Any]:
    raise NotSupportedError(
        "mltrail keeps experiments as projects: they cannot be deleted, restored, renamed "
        "or tagged through MLflow's API",
    )


add_endpoint(router, "/experiments/create", "POST", create_experiment)
add_endpoint(router, "/experiments/get", "GET", get_experiment)
add_endpoint(router, "/experiments/get-by-name", "GET", get_experiment_by_name)
add_endpoint(router, "/experiments/search", "POST", search_experiments)
add_endpoint(router, "/experiments/search", "GET", search_experiments)
for _path in (
    "/experiments/delete",
    "/experiments/restore",
    "/experiments/update",
    "/experiments/set-experiment-tag",
    "/experiments/delete-experiment-tag",
):
    add_endpoint(router, _path, "POST", _unsupported)
