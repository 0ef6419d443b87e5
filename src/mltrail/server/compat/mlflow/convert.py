"""Our records in MLflow's JSON, MLflow's request fields checked with MLflow's own rules.

The mapping (docs/mlflow-compat.md):

- an MLflow **experiment** is a project; its id is the project's id (16 hex characters:
  stable, no table of its own), except the default experiment ``"0"`` (named ``Default``),
  which is the project ``default``;
- an MLflow **run** is a run: the same id (MLflow's client takes any id its pattern allows),
  params, tags, metrics (the run's metric summaries give the latest value of each key), the
  run name kept in the tag ``mlflow.runName`` as MLflow's server keeps it; statuses map
  ``running``/``finished``/``failed``/``killed`` one to one, ``crashed`` reads ``FAILED``
  and ``pruned`` ``KILLED``;
- a **deleted** run (MLflow's lifecycle stage) carries the tag ``mltrail.deleted`` (the time
  it was deleted); MLflow's view hides that tag, searches leave such runs out by default.

Names and values are checked here with MLflow's rules (its characters, 250-character keys,
6,000-character param and 8,000-character tag values, batch limits), then with ours (the
store's), so a call MLflow's server refuses is refused here the same way.
"""

from __future__ import annotations

import json
import math
import posixpath
import re
from typing import TYPE_CHECKING, Any

from mltrail import _validation as v
from mltrail.entities import RunStatus
from mltrail.errors import InvalidArgumentError, NotFoundError

if TYPE_CHECKING:
    from mltrail.entities import ParamValue, Project, RunRecord
    from mltrail.server.compat.mlflow.errors import Fields

__all__ = [
    "DEFAULT_EXPERIMENT_ID",
    "DEFAULT_PROJECT",
    "DELETED_TAG",
    "RUN_NAME_TAG",
    "artifact_uri",
    "check_name",
    "check_param",
    "check_tag",
    "double",
    "experiment_dict",
    "experiment_id_of",
    "int64",
    "run_dict",
    "run_id_field",
    "run_info",
    "text",
]

DEFAULT_EXPERIMENT_ID = "0"
DEFAULT_EXPERIMENT_NAME = "Default"
DEFAULT_PROJECT = "default"
DELETED_TAG = "mltrail.deleted"
RUN_NAME_TAG = "mlflow.runName"
PARENT_TAG = "mlflow.parentRunId"
#: MLflow's limits (``mlflow.utils.validation``)
MAX_KEY_CHARS = 250
MAX_PARAM_CHARS = 6000
MAX_TAG_CHARS = 8000
MAX_EXPERIMENT_NAME_CHARS = 500
_NAME = re.compile(r"^[/\w.\- :]*$")
_RUN_ID = re.compile(r"^[a-zA-Z0-9][\w\-]{0,255}$")
_INT64 = 2**63

STATUS_TO_MLFLOW = {
    RunStatus.RUNNING: "RUNNING",
    RunStatus.FINISHED: "FINISHED",
    RunStatus.FAILED: "FAILED",
    RunStatus.KILLED: "KILLED",
    RunStatus.CRASHED: "FAILED",
    RunStatus.PRUNED: "KILLED",
}
STATUS_FROM_MLFLOW = {
    "RUNNING": RunStatus.RUNNING,
    "SCHEDULED": RunStatus.RUNNING,
    "FINISHED": RunStatus.FINISHED,
    "FAILED": RunStatus.FAILED,
    "KILLED": RunStatus.KILLED,
}


# -- fields ----------------------------------------------------------------------------------


def _missing(name: str) -> InvalidArgumentError:
    return InvalidArgumentError(f"Missing value for required parameter '{name}'.")


def invalid(name: str, value: object, why: str = "") -> InvalidArgumentError:
    """MLflow's message for a field of the wrong type or value (the value as JSON)."""
    try:
        shown = json.dumps(value, separators=(",", ":"))
    except (TypeError, ValueError):
        shown = repr(value)
    return InvalidArgumentError(
        f"Invalid value {shown} for parameter '{name}' supplied{': ' + why if why else '.'}"
    )


def text(fields: Fields, name: str, *, required: bool = False, default: str = "") -> str:
    """A string field (``required``: present and non-empty)."""
    value = fields.get(name)
    if value is None or value == "":
        if required:
            raise _missing(name)
        return default
    if isinstance(value, list) and value and all(isinstance(x, str) for x in value):
        value = value[-1]
    if not isinstance(value, str):
        raise invalid(name, value)
    return value


def strings(fields: Fields, name: str) -> list[str]:
    """A repeated string field (a GET sends it as repeated query keys)."""
    value = fields.get(name)
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    for item in items:
        if not isinstance(item, str):
            raise invalid(name, value)
    return list(items)


def int64(fields: Fields, name: str, default: int | None = None) -> int | None:
    """An int64 field: a JSON number or its decimal text (protobuf's JSON writes both)."""
    value = fields.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, list):
        value = value[-1]
    raw = value
    if isinstance(value, bool):
        raise invalid(name, raw)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise invalid(name, raw) from None
    if not isinstance(value, int) or not -_INT64 <= value < _INT64:
        raise invalid(name, raw)
    return value


def double(fields: Fields, name: str) -> float:
    """A double field: a number, or ``"NaN"``, ``"Infinity"``, ``"-Infinity"`` (proto JSON)."""
    value = fields.get(name)
    if value is None:
        raise _missing(name)
    if isinstance(value, bool):
        raise invalid(name, value)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise invalid(name, value)


def run_id_field(fields: Fields) -> str:
    """``run_id`` (or the older ``run_uuid``), matching MLflow's run id pattern."""
    run_id = text(fields, "run_id") or text(fields, "run_uuid")
    if not run_id:
        raise _missing("run_id")
    if not _RUN_ID.match(run_id):
        raise invalid("run_id", run_id)
    return run_id


# -- MLflow's name and value rules -----------------------------------------------------------


def check_name(name: object, path: str) -> str:
    """A metric, param or tag name as MLflow checks it, then as our store does."""
    if name is None:
        raise _missing(path)
    if not isinstance(name, str):
        raise invalid(path, name)
    if not _NAME.match(name):
        raise invalid(
            path,
            name,
            "names may only contain alphanumerics, underscores (_), dashes (-), periods (.), "
            "spaces ( ), colon(:) and slashes (/).",
        )
    norm = posixpath.normpath(name)
    if norm != name or norm == "." or norm.startswith(("..", "/")):
        raise invalid(
            path,
            name,
            "names may be treated as files in certain cases, and must not resolve to other "
            f"names ({norm!r}).",
        )
    if len(name) > MAX_KEY_CHARS:
        raise InvalidArgumentError(
            f"'{path}' exceeds the maximum length of {MAX_KEY_CHARS} characters"
        )
    return v.check_key(name, path)


def _value(value: object, path: str, limit: int) -> str:
    if value is None:
        raise _missing(path)
    if not isinstance(value, str):
        raise invalid(path, value)
    if len(value) > limit:
        raise InvalidArgumentError(f"'{path}' exceeds the maximum length of {limit} characters")
    return value


def check_param(key: object, value: object, path: str = "") -> tuple[str, str]:
    """A param (MLflow's values are text of at most 6,000 characters)."""
    name = check_name(key, f"{path}key")
    text_value = _value(value, f"{path}value", MAX_PARAM_CHARS)
    checked = v.check_param_value(name, text_value)
    assert isinstance(checked, str)
    return name, checked


def check_tag(key: object, value: object, path: str = "") -> tuple[str, str]:
    """A tag (text of at most 8,000 characters); ``mltrail.deleted`` is ours alone."""
    name = check_name(key, f"{path}key")
    if name == DELETED_TAG:
        raise InvalidArgumentError(f"tag {DELETED_TAG!r} is reserved (delete_run sets it)")
    return name, v.check_tag_value(name, _value(value, f"{path}value", MAX_TAG_CHARS))


def check_experiment_name(name: str) -> str:
    """An experiment name: MLflow's (non-empty, 500 characters) and a project's rules."""
    if not name:
        raise InvalidArgumentError("Invalid experiment name: ''")
    if len(name) > MAX_EXPERIMENT_NAME_CHARS:
        raise InvalidArgumentError(
            f"'name' exceeds the maximum length of {MAX_EXPERIMENT_NAME_CHARS} characters"
        )
    return v.check_key(name, "experiment name")


# -- experiments -----------------------------------------------------------------------------


def experiment_id_of(project: Project) -> str:
    """The experiment id of ``project``: ``"0"`` for the default project, else its id."""
    return DEFAULT_EXPERIMENT_ID if project.name == DEFAULT_PROJECT else project.project_id


def experiment_name_of(project: Project) -> str:
    return DEFAULT_EXPERIMENT_NAME if project.name == DEFAULT_PROJECT else project.name


def project_name_for(experiment_name: str) -> str:
    """The project an experiment name stands for (``Default`` is the project ``default``)."""
    return DEFAULT_PROJECT if experiment_name == DEFAULT_EXPERIMENT_NAME else experiment_name


def artifact_location(experiment_id: str) -> str:
    return f"mlflow-artifacts:/{experiment_id}"


def artifact_uri(experiment_id: str, run_id: str) -> str:
    """Where MLflow's client puts a run's artifacts: our artifact proxy, the run's files."""
    return f"mlflow-artifacts:/{experiment_id}/{run_id}/artifacts"


def experiment_dict(project: Project) -> dict[str, Any]:
    exp_id = experiment_id_of(project)
    return {
        "experiment_id": exp_id,
        "name": experiment_name_of(project),
        "artifact_location": artifact_location(exp_id),
        "lifecycle_stage": "active",
        "creation_time": project.created_ms,
        "last_update_time": project.created_ms,
        "tags": [],
    }


def not_found_experiment(what: str) -> NotFoundError:
    return NotFoundError(f"No Experiment with id={what} exists")


# -- runs ------------------------------------------------------------------------------------


def param_text(value: ParamValue) -> str:
    """A param as MLflow's text (a native run's typed values as Python writes them)."""
    if isinstance(value, str):
        return value
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return str(value)


def run_name(record: RunRecord) -> str:
    return record.tags.get(RUN_NAME_TAG) or record.name


def lifecycle(record: RunRecord) -> str:
    return "deleted" if DELETED_TAG in record.tags else "active"


def run_info(record: RunRecord, experiment_id: str) -> dict[str, Any]:
    info: dict[str, Any] = {
        "run_id": record.run_id,
        "run_uuid": record.run_id,
        "run_name": run_name(record),
        "experiment_id": experiment_id,
        "user_id": record.user,
        "status": STATUS_TO_MLFLOW[record.status],
        "start_time": record.created_ms,
        "artifact_uri": artifact_uri(experiment_id, record.run_id),
        "lifecycle_stage": lifecycle(record),
    }
    if record.end_ms is not None and record.status is not RunStatus.RUNNING:
        info["end_time"] = record.end_ms
    return info


def run_dict(record: RunRecord, experiment_id: str) -> dict[str, Any]:
    """``record`` as MLflow's ``Run`` message."""
    return {
        "info": run_info(record, experiment_id),
        "data": {
            "metrics": [
                {
                    "key": s.key,
                    "value": s.last,
                    "timestamp": s.last_timestamp_ms,
                    "step": s.last_step,
                }
                for s in record.metrics.values()
            ],
            "params": [{"key": k, "value": param_text(x)} for k, x in record.params.items()],
            "tags": [{"key": k, "value": x} for k, x in record.tags.items() if k != DELETED_TAG],
        },
        "inputs": {},
        "outputs": {},
    }


def check_active(record: RunRecord) -> None:
    """MLflow refuses writes to a deleted run."""
    if DELETED_TAG in record.tags:
        raise InvalidArgumentError(
            f"The run {record.run_id} must be in the 'active' state. Current state is deleted.",
        )
