"""MLflow runs over our runs: create, get, update, delete/restore, log, search, history.

Every write is a :class:`~mltrail.store.batch.Batch` through ``store.apply_batch``, the path
the SDK's spool and the native REST API take, so an MLflow run is an ordinary run (the UI,
``mltrail diff``, search). Params, tags and metrics are checked with MLflow's rules first
(``convert``), then ours. A project-scoped token's foreign run answers exactly like a missing
one, before anything is written.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter

from mltrail import _validation as v
from mltrail.entities import RunStatus
from mltrail.errors import (
    BadPageTokenError,
    InvalidArgumentError,
    NotFoundError,
    NotSupportedError,
    ParamConflictError,
)
from mltrail.server.auth import principal_of
from mltrail.server.compat.mlflow import convert as cv
from mltrail.server.compat.mlflow.errors import add_endpoint
from mltrail.server.compat.mlflow.experiments import (
    experiments_of,
    page_token,
    token_offset,
    visible_experiment,
)
from mltrail.server.compat.mlflow.filters import translate_filter, translate_order_by
from mltrail.store.batch import Batch, MetricSeries, RunCreate, StatusChange
from mltrail.store.optional import HasRunEdits

if TYPE_CHECKING:
    from fastapi import Request

    from mltrail.entities import RunRecord
    from mltrail.server.compat.mlflow.errors import Fields
    from mltrail.store.base import TrackingStore

__all__ = ["router", "visible_run"]

router = APIRouter()

#: MLflow's limits for one log-batch call (``mlflow.utils.validation``)
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_ENTITIES_PER_BATCH = 1000
MAX_BATCH_REQUEST_BYTES = 1_000_000
MAX_SEARCH_RESULTS = 50_000
_STORE_PAGE = 10_000
#: MLflow runs send no heartbeats: they never read as crashed (as in MLflow)
HEARTBEAT_S = 100 * 365 * 86400.0


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _store(request: Request) -> TrackingStore:
    store: TrackingStore = request.app.state.store
    return store


def visible_run(request: Request, run_id: str) -> RunRecord:
    """The run if the principal may see it; a foreign run reads as a missing one."""
    try:
        record = _store(request).get_run(run_id)
    except NotFoundError:
        record = None
    if record is None or not principal_of(request).can_see(record.project):
        raise NotFoundError(f"Run with id={run_id} not found")
    return record


def _experiment_id(request: Request, record: RunRecord) -> str:
    return experiments_of(request).id_of_project(record.project)


def _run_out(request: Request, run_id: str) -> dict[str, Any]:
    record = _store(request).get_run(run_id)
    return cv.run_dict(record, _experiment_id(request, record))


# -- create, get, update, delete -------------------------------------------------------------


def _tags(items: object, path: str = "tags") -> dict[str, str]:
    if items is None:
        return {}
    if not isinstance(items, list):
        raise cv.invalid(path, items)
    out: dict[str, str] = {}
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise InvalidArgumentError(f"'{path}[{i}]' must be an object with key and value")
        key, value = cv.check_tag(item.get("key"), item.get("value", ""), f"{path}[{i}].")
        out[key] = value
    return out


def create_run(request: Request, fields: Fields) -> dict[str, Any]:
    from mltrail.ids import new_run_id

    exp_id = cv.text(fields, "experiment_id") or cv.DEFAULT_EXPERIMENT_ID
    project = visible_experiment(request, exp_id)
    now = _now_ms()
    start = cv.int64(fields, "start_time") or now
    tags = _tags(fields.get("tags"))
    name = cv.text(fields, "run_name") or tags.get(cv.RUN_NAME_TAG) or ""
    if not name:
        name = time.strftime("run-%Y%m%d-%H%M%S", time.localtime(start / 1000))
    tags[cv.RUN_NAME_TAG] = name
    user = cv.text(fields, "user_id") or tags.get("mlflow.user") or "unknown"  # as MLflow
    batch = Batch(
        run_id=new_run_id(),
        create=RunCreate(
            project=project.name,
            name=v.check_key(name[:250], "run name"),
            created_ms=start,
            heartbeat_s=HEARTBEAT_S,
            user=user[:250],
            command=tags.get("mlflow.source.name", "")[:4096],
        ),
        tags=tags,
    )
    _store(request).apply_batch(batch)
    return {"run": _run_out(request, batch.run_id)}


def get_run(request: Request, fields: Fields) -> dict[str, Any]:
    record = visible_run(request, cv.run_id_field(fields))
    return {"run": cv.run_dict(record, _experiment_id(request, record))}


def update_run(request: Request, fields: Fields) -> dict[str, Any]:
    record = visible_run(request, cv.run_id_field(fields))
    status_text = cv.text(fields, "status")
    end_ms = cv.int64(fields, "end_time")
    name = cv.text(fields, "run_name")
    batch = Batch(run_id=record.run_id)
    if name:
        batch.tags[cv.RUN_NAME_TAG] = cv.check_tag(cv.RUN_NAME_TAG, name)[1]
    if status_text:
        status = cv.STATUS_FROM_MLFLOW.get(status_text.upper())
        if status is None:
            raise InvalidArgumentError(
                f"Invalid value {status_text!r} for parameter 'status': expected one of "
                f"{', '.join(cv.STATUS_FROM_MLFLOW)}"
            )
        if status is RunStatus.RUNNING:
            if record.status is not RunStatus.RUNNING:
                batch.resume_ms = _now_ms()
        else:
            batch.status = StatusChange(status, end_ms if end_ms is not None else _now_ms())
    if not batch.is_empty():
        _store(request).apply_batch(batch)
    out = _run_out(request, record.run_id)
    return {"run_info": out["info"]}


def _edits(request: Request) -> Any:
    store = _store(request)
    if not isinstance(store, HasRunEdits):
        raise NotSupportedError("this store cannot delete tags")
    return store.run_edits()


def delete_run(request: Request, fields: Fields) -> dict[str, Any]:
    record = visible_run(request, cv.run_id_field(fields))
    if cv.DELETED_TAG not in record.tags:
        batch = Batch(run_id=record.run_id, tags={cv.DELETED_TAG: str(_now_ms())})
        _store(request).apply_batch(batch)
    return {}


def restore_run(request: Request, fields: Fields) -> dict[str, Any]:
    record = visible_run(request, cv.run_id_field(fields))
    _edits(request).delete_tag(record.run_id, cv.DELETED_TAG)
    return {}


# -- logging ---------------------------------------------------------------------------------


def _metric(
    item: object, path: str = "", names: dict[str, str] | None = None
) -> tuple[str, int, int, float]:
    """A metric's fields (``path``: where in a batch, for messages; "" for log-metric;
    ``names``: the names of the batch checked so far, a batch repeats a few keys)."""
    if not isinstance(item, dict):
        raise cv.invalid(path or "metric", item)
    raw = item.get("key")
    key = names.get(raw) if names is not None and isinstance(raw, str) else None
    if key is None:
        key = cv.check_name(raw, f"{path}.key" if path else "key")
        if names is not None and isinstance(raw, str):
            names[raw] = key
    value = cv.double(item, "value")
    stamp = cv.int64(item, "timestamp")
    if stamp is None:
        stamp = _now_ms()
    if stamp < 0:
        raise InvalidArgumentError(f"'{path}.timestamp' must be a nonnegative int64")
    step = cv.int64(item, "step", 0) or 0
    if step < 0:
        raise InvalidArgumentError(
            f"'{path}.step' is {step}: mltrail keeps steps from 0 to 2**63-1"
        )
    return key, step, stamp, value


def _series(points: list[tuple[str, int, int, float]]) -> dict[str, MetricSeries]:
    import numpy as np

    grouped: dict[str, tuple[list[int], list[int], list[float]]] = {}
    for key, step, stamp, value in points:
        steps, stamps, values = grouped.setdefault(key, ([], [], []))
        steps.append(step)
        stamps.append(stamp)
        values.append(value)
    return {
        key: MetricSeries(
            np.asarray(s, dtype=np.int64),
            np.asarray(t, dtype=np.int64),
            np.asarray(x, dtype=np.float64),
        )
        for key, (s, t, x) in grouped.items()
    }


def _write(
    request: Request,
    record: RunRecord,
    points: list[tuple[str, int, int, float]],
    params: dict[str, str],
    tags: dict[str, str],
) -> None:
    """One atomic batch; a param that differs from the stored value refuses the whole call."""
    cv.check_active(record)
    clash = {k: (record.params[k], x) for k, x in params.items() if k in record.params}
    clash = {k: ab for k, ab in clash.items() if cv.param_text(ab[0]) != ab[1]}
    if clash:
        key, (old, new) = next(iter(clash.items()))
        raise ParamConflictError(
            f"Changing param values is not allowed. Param with key='{key}' was already logged "
            f"with value='{cv.param_text(old)}' for run ID='{record.run_id}'. Attempted "
            f"logging new value '{new}'."
        )
    params = {k: x for k, x in params.items() if k not in record.params}
    batch = Batch(
        run_id=record.run_id,
        params=dict(params),
        tags=tags,
        metrics=_series(points) if points else {},
        heartbeat_ms=_now_ms(),
    )
    result = _store(request).apply_batch(batch)
    if result.param_conflicts:  # a concurrent writer won the race for these params
        key = next(iter(result.param_conflicts))
        raise ParamConflictError(f"Changing param values is not allowed (param {key!r})")


def log_metric(request: Request, fields: Fields) -> dict[str, Any]:
    record = visible_run(request, cv.run_id_field(fields))
    _write(request, record, [_metric(fields)], {}, {})
    return {}


def log_param(request: Request, fields: Fields) -> dict[str, Any]:
    record = visible_run(request, cv.run_id_field(fields))
    key, value = cv.check_param(fields.get("key"), fields.get("value"))
    _write(request, record, [], {key: value}, {})
    return {}


def set_tag(request: Request, fields: Fields) -> dict[str, Any]:
    record = visible_run(request, cv.run_id_field(fields))
    key, value = cv.check_tag(fields.get("key"), fields.get("value"))
    _write(request, record, [], {}, {key: value})
    return {}


def delete_tag(request: Request, fields: Fields) -> dict[str, Any]:
    record = visible_run(request, cv.run_id_field(fields))
    cv.check_active(record)
    key = cv.text(fields, "key", required=True)
    if key == cv.DELETED_TAG or key not in record.tags:
        raise NotFoundError(f"No tag with name: {key} in run with id {record.run_id}")
    _edits(request).delete_tag(record.run_id, key)
    return {}


def _limit(what: str, n: int, limit: int) -> None:
    if n > limit:
        raise InvalidArgumentError(
            f"A batch logging request can contain at most {limit} {what}. Got {n} {what}. "
            f"Please split up {what} across multiple requests and try again."
        )


def _list(fields: Fields, name: str) -> list[Any]:
    value = fields.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise cv.invalid(name, value)
    return value


def log_batch(request: Request, fields: Fields) -> dict[str, Any]:
    size = getattr(request.state, "mlflow_body_bytes", 0)
    if size > MAX_BATCH_REQUEST_BYTES:
        raise InvalidArgumentError(
            f"Batched logging API requests must be at most {MAX_BATCH_REQUEST_BYTES} bytes, "
            f"got a request of size {size}."
        )
    run_id = cv.run_id_field(fields)
    metrics, params, tags = (_list(fields, n) for n in ("metrics", "params", "tags"))
    _limit("metrics", len(metrics), MAX_METRICS_PER_BATCH)
    _limit("params", len(params), MAX_PARAMS_TAGS_PER_BATCH)
    _limit("tags", len(tags), MAX_PARAMS_TAGS_PER_BATCH)
    _limit("metrics, params, and tags", len(metrics) + len(params) + len(tags), 1000)
    if any(not isinstance(m, dict) or m.get("timestamp") is None for m in metrics):
        raise cv.invalid("metrics", metrics)  # MLflow's batch needs every point's time
    names: dict[str, str] = {}
    points = [_metric(m, f"metrics[{i}]", names) for i, m in enumerate(metrics)]
    checked_params: dict[str, str] = {}
    for i, p in enumerate(params):
        if not isinstance(p, dict):
            raise InvalidArgumentError(f"'params[{i}]' must be an object with key and value")
        key, value = cv.check_param(p.get("key"), p.get("value"), f"params[{i}].")
        if key in checked_params:
            raise InvalidArgumentError(
                f"Duplicate parameter keys have been submitted: [{key!r}]. Please ensure the "
                "request contains only one param value per param key."
            )
        checked_params[key] = value
    checked_tags = _tags(tags)
    record = visible_run(request, run_id)
    _write(request, record, points, checked_params, checked_tags)
    return {}


# -- search and history ----------------------------------------------------------------------


def search_runs(request: Request, fields: Fields) -> dict[str, Any]:
    max_results = cv.int64(fields, "max_results", 1000) or 1000
    if not 1 <= max_results <= MAX_SEARCH_RESULTS:
        raise cv.invalid("max_results", max_results, f"it must be at most {MAX_SEARCH_RESULTS}")
    exps = experiments_of(request)
    projects: list[str] = []
    for exp_id in cv.strings(fields, "experiment_ids"):
        try:
            projects.append(visible_experiment(request, exp_id).name)
        except NotFoundError:
            continue
    if not projects:
        return {"runs": []}
    view = str(fields.get("run_view_type") or "ACTIVE_ONLY")
    text = translate_filter(cv.text(fields, "filter") or None, view)
    if len(projects) > 1:
        listed = ", ".join("'" + p.replace("'", "''") + "'" for p in sorted(set(projects)))
        text = f"project IN ({listed})" + (f" AND {text}" if text else "")
    token = cv.text(fields, "page_token") or None
    try:
        page = _store(request).search_runs(
            project=projects[0] if len(projects) == 1 else None,
            filter=text,
            order_by=_with_tiebreak(translate_order_by(cv.strings(fields, "order_by"))),
            limit=min(max_results, _STORE_PAGE),
            page_token=token,
        )
    except InvalidArgumentError as exc:
        if token and str(exc).startswith("page_token"):
            raise BadPageTokenError(str(exc)) from None
        raise
    out: dict[str, Any] = {
        "runs": [cv.run_dict(r, exps.id_of_project(r.project)) for r in page.runs]
    }
    if page.next_token:
        out["next_page_token"] = page.next_token
    return out


def _with_tiebreak(order: str | None) -> str:
    """MLflow's order: the given keys, then start time (newest first), then run id."""
    keys = [k.strip().split()[0] for k in (order or "").split(",") if k.strip()]
    extra = [k for k in ("created DESC", "run_id ASC") if k.split()[0] not in keys]
    return ", ".join([*([order] if order else []), *extra])


def metric_history(request: Request, fields: Fields) -> dict[str, Any]:
    record = visible_run(request, cv.run_id_field(fields))
    key = cv.text(fields, "metric_key", required=True)
    max_results = cv.int64(fields, "max_results")
    if max_results is not None and not 1 <= max_results <= 25_000_000:
        raise InvalidArgumentError(f"Invalid value {max_results} for parameter 'max_results'")
    try:
        series = _store(request).metric_history(record.run_id, key)
    except NotFoundError:
        return {"metrics": []}  # MLflow: an unknown key has an empty history
    start = token_offset(cv.text(fields, "page_token"))
    end = len(series) if max_results is None else min(len(series), start + max_results)
    steps = series.steps[start:end].tolist()
    stamps = series.timestamps[start:end].tolist()
    values = series.values[start:end].tolist()
    out: dict[str, Any] = {
        "metrics": [
            {"key": series.key or key, "value": x, "timestamp": t, "step": s}
            for s, t, x in zip(steps, stamps, values, strict=True)
        ]
    }
    if end < len(series):
        out["next_page_token"] = page_token(end)
    return out


def _inputs_unsupported(request: Request, fields: Fields) -> dict[str, Any]:
    raise NotSupportedError(
        "datasets, logged models and run outputs are not kept by mltrail's MLflow API",
    )


def search_logged_models(request: Request, fields: Fields) -> dict[str, Any]:
    """MLflow 3's logged models are not kept: a search finds none (the client's artifact
    listing asks for them on every call)."""
    return {"models": []}


add_endpoint(router, "/logged-models/search", "POST", search_logged_models)
add_endpoint(router, "/runs/create", "POST", create_run)
add_endpoint(router, "/runs/get", "GET", get_run)
add_endpoint(router, "/runs/update", "POST", update_run)
add_endpoint(router, "/runs/delete", "POST", delete_run)
add_endpoint(router, "/runs/restore", "POST", restore_run)
add_endpoint(router, "/runs/log-metric", "POST", log_metric)
add_endpoint(router, "/runs/log-parameter", "POST", log_param)
add_endpoint(router, "/runs/set-tag", "POST", set_tag)
add_endpoint(router, "/runs/delete-tag", "POST", delete_tag)
add_endpoint(router, "/runs/log-batch", "POST", log_batch)
add_endpoint(router, "/runs/search", "POST", search_runs)
add_endpoint(router, "/metrics/get-history", "GET", metric_history)
for _path in ("/runs/log-inputs", "/runs/outputs", "/runs/log-model"):
    add_endpoint(router, _path, "POST", _inputs_unsupported)
