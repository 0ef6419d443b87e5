"""Apply a batch inside one write transaction (the write half of ``SqlTrackingStore``)."""

from __future__ import annotations

import json
import secrets
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from mltrail.entities import ParamValue, RunStatus
from mltrail.errors import IntegrityError, NotFoundError
from mltrail.events.batch import Batch, BatchResult, StatusChange
from mltrail.store.sql import series
from mltrail.store.sql import statements as q
from mltrail.store.sql.params import decode_param, encode_param
from mltrail.store.sql.schema import runs

if TYPE_CHECKING:
    from collections.abc import MutableMapping

__all__ = ["apply_batch"]

_IN_LIMIT = 500


def apply_batch(
    conn: sa.Connection, batch: Batch, project_ids: MutableMapping[str, str]
) -> BatchResult:
    """Apply ``batch`` on ``conn`` (already in a write transaction); see the store contract."""
    if batch.source is not None and not _advance_cursor(conn, batch):
        return BatchResult(applied=False)
    fresh = batch.create is not None and _create_run(conn, batch, project_ids)
    if (
        batch.create is None
        and conn.execute(q.RUN_EXISTS, {"run_id": batch.run_id}).first() is None
    ):
        raise NotFoundError(f"run {batch.run_id!r} does not exist")
    if batch.resume_ms is not None:
        conn.execute(q.RUN_RESUME, {"b_run": batch.run_id, "heartbeat_ms": batch.resume_ms})
    conflicts = _write_params(conn, batch.run_id, batch.params, fresh) if batch.params else {}
    if batch.tags:
        rows = [{"run_id": batch.run_id, "key": k, "value": v} for k, v in batch.tags.items()]
        conn.execute(q.TAGS_INSERT if fresh else q.tags_upsert(conn.dialect.name), rows)
    if batch.metrics:
        series.append_metrics(conn, batch.run_id, batch.metrics, fresh)
    if batch.heartbeat_ms is not None:
        conn.execute(q.RUN_HEARTBEAT, {"b_run": batch.run_id, "b_ms": batch.heartbeat_ms})
    if batch.status is not None:
        _set_status(conn, batch.run_id, batch.status)
    return BatchResult(applied=True, param_conflicts=conflicts)


def _advance_cursor(conn: sa.Connection, batch: Batch) -> bool:
    pos = conn.execute(q.CURSOR_GET, {"source": batch.source}).scalar()
    if pos is None:
        if batch.start == 0:
            conn.execute(
                q.CURSOR_INSERT,
                {"source": batch.source, "run_id": batch.run_id, "position": batch.end},
            )
            return True
        pos = 0
    if batch.end <= pos:
        return False
    if batch.start != pos:
        raise IntegrityError(
            f"batch {batch.batch_id} does not continue {batch.source} at offset {pos}"
        )
    conn.execute(q.CURSOR_SET, {"b_source": batch.source, "position": batch.end})
    return True


def _project_id(
    conn: sa.Connection, name: str, now_ms: int, cache: MutableMapping[str, str]
) -> str:
    cached = cache.get(name)
    if cached is not None:
        return cached
    found = conn.execute(q.PROJECT_GET, {"name": name}).scalar()
    if found is None:
        conn.execute(
            q.project_insert(conn.dialect.name),
            {"project_id": secrets.token_hex(8), "name": name, "created_ms": now_ms},
        )
        found = conn.execute(q.PROJECT_GET, {"name": name}).scalar_one()
    cache[name] = str(found)
    return str(found)


def _create_run(conn: sa.Connection, batch: Batch, cache: MutableMapping[str, str]) -> bool:
    """Insert the run; False when it already exists (a retried creation)."""
    c = batch.create
    assert c is not None
    if conn.execute(q.RUN_EXISTS, {"run_id": batch.run_id}).first() is not None:
        return False
    conn.execute(
        q.RUN_INSERT,
        {
            "run_id": batch.run_id,
            "project_id": _project_id(conn, c.project, c.created_ms, cache),
            "name": c.name,
            "status": RunStatus.RUNNING.value,
            "created_ms": c.created_ms,
            "end_ms": None,
            "heartbeat_ms": c.created_ms,
            "heartbeat_s": c.heartbeat_s,
            "user_name": c.user,
            "host": c.host,
            "command": c.command,
            "config": json.dumps(c.config, default=str),
        },
    )
    return True


def _write_params(
    conn: sa.Connection, run_id: str, new: dict[str, ParamValue], fresh: bool
) -> dict[str, tuple[ParamValue, ParamValue]]:
    keys = list(new)
    existing: dict[str, ParamValue] = {}
    for i in range(0, 0 if fresh else len(keys), _IN_LIMIT):
        rows = conn.execute(q.PARAMS_GET, {"run_id": run_id, "keys": keys[i : i + _IN_LIMIT]})
        existing.update({r.key: decode_param(r.value, r.vtype) for r in rows})
    conflicts: dict[str, tuple[ParamValue, ParamValue]] = {}
    out: list[dict[str, Any]] = []
    for key, value in new.items():
        text, vtype, num = encode_param(value)
        if key in existing:
            if encode_param(existing[key])[:2] != (text, vtype):
                conflicts[key] = (existing[key], value)
            continue
        out.append({"run_id": run_id, "key": key, "value": text, "vtype": vtype, "value_num": num})
    if out:
        conn.execute(q.PARAMS_INSERT, out)
    return conflicts


def _set_status(conn: sa.Connection, run_id: str, change: StatusChange) -> None:
    rc = runs.c
    end: Any = change.end_ms
    if end is None:
        end = sa.func.coalesce(rc.heartbeat_ms, rc.created_ms)
    stmt = sa.update(runs).where(rc.run_id == run_id)
    if change.only_if_running:
        stmt = stmt.where(rc.status == RunStatus.RUNNING.value)
    conn.execute(stmt.values(status=change.status.value, end_ms=end))
