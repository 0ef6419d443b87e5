"""Apply a batch inside one write transaction (the write half of ``SqlTrackingStore``)."""

from __future__ import annotations

import json
import secrets
import time
from typing import TYPE_CHECKING, Any

from mltrail.entities import ParamValue, RunStatus
from mltrail.errors import IntegrityError, NotFoundError
from mltrail.store.batch import Batch, BatchResult, StatusChange
from mltrail.store.sql import append
from mltrail.store.sql import statements as q
from mltrail.store.sql.params import decode_param, encode_param

if TYPE_CHECKING:
    from collections.abc import MutableMapping

    import sqlalchemy as sa

    from mltrail.store.sql.append import OpenChunks

__all__ = ["apply_batch"]

_IN_LIMIT = 500


def apply_batch(
    conn: sa.Connection,
    batch: Batch,
    project_ids: MutableMapping[str, str],
    open_chunks: OpenChunks | None = None,
    audit_every: int | None = None,
) -> BatchResult:
    """Apply ``batch`` on ``conn`` (already in a write transaction); see the store contract.

    ``audit_every``: append the batch's audit entry (checkpoint interval); None: no entry."""
    x = q.Executor(conn)
    if batch.source is not None and not _advance_cursor(x, batch):
        return BatchResult(applied=False)
    # rows written from known values, for the audit entry (None: no entry)
    written: dict[str, list[dict[str, Any]]] | None = None if audit_every is None else {}
    fresh = batch.create is not None and _create_run(x, batch, project_ids, written)
    if batch.create is None and x.one(q.RUN_EXISTS, {"run_id": batch.run_id}) is None:
        raise NotFoundError(f"run {batch.run_id!r} does not exist")
    if batch.resume_ms is not None:
        x.execute(q.RUN_RESUME, {"b_run": batch.run_id, "heartbeat_ms": batch.resume_ms})
    if batch.project is not None:
        now_ms = time.time_ns() // 1_000_000
        pid = _project_id(x, batch.project, now_ms, project_ids, written)
        x.execute(q.RUN_MOVE, {"b_run": batch.run_id, "project_id": pid})
    conflicts: dict[str, tuple[ParamValue, ParamValue]] = {}
    if batch.params:
        conflicts, params_rows = _write_params(x, batch.run_id, batch.params, fresh)
        if written is not None:
            written["params"] = params_rows
    if batch.tags:
        rows = [{"run_id": batch.run_id, "key": k, "value": v} for k, v in batch.tags.items()]
        x.many(q.TAGS_INSERT if fresh else q.tags_upsert(x.dialect.name), rows)
    if batch.metrics:
        append.append_metrics(x, batch.run_id, batch.metrics, fresh, open_chunks)
    if batch.blobs:
        stored = [{"digest": d, "size": len(b), "data": b} for d, b in batch.blobs.items()]
        x.many(q.blob_insert(x.dialect.name), stored)
    if batch.state:
        docs = [
            {"run_id": batch.run_id, "kind": k, "data": json.dumps(v, default=str)}
            for k, v in batch.state.items()
        ]
        x.many(q.state_upsert(x.dialect.name), docs)
        if written is not None:
            written["run_state"] = docs
    if batch.console:
        lines = [
            {"run_id": batch.run_id, "ts_ms": t, "stream": st, "text": text}
            for t, st, text in batch.console
        ]
        x.many(q.CONSOLE_INSERT, lines)
    if batch.heartbeat_ms is not None:
        x.execute(q.RUN_HEARTBEAT, {"b_run": batch.run_id, "b_ms": batch.heartbeat_ms})
    if batch.status is not None:
        _set_status(x, batch.run_id, batch.status)
    if audit_every is not None and written is not None:
        from mltrail.store.sql import audit, audit_ingest

        change = audit_ingest.batch_change(conn, batch, fresh, written)
        if change is not None:
            audit.append(conn, [change], every=audit_every)
    return BatchResult(applied=True, param_conflicts=conflicts)


def _advance_cursor(x: q.Executor, batch: Batch) -> bool:
    row = x.one(q.CURSOR_GET, {"source": batch.source})
    if row is None:
        if batch.start == 0:
            values = {"source": batch.source, "run_id": batch.run_id, "position": batch.end}
            x.execute(q.CURSOR_INSERT, values)
            return True
        pos = 0
    else:
        pos = int(row[0])
    if batch.end <= pos:
        return False
    if batch.start != pos:
        raise IntegrityError(
            f"batch {batch.batch_id} does not continue {batch.source} at offset {pos}"
        )
    x.execute(q.CURSOR_SET, {"b_source": batch.source, "position": batch.end})
    return True


def _project_id(
    x: q.Executor,
    name: str,
    now_ms: int,
    cache: MutableMapping[str, str],
    written: dict[str, list[dict[str, Any]]] | None = None,
) -> str:
    cached = cache.get(name)
    if cached is not None:
        return cached
    row = x.one(q.PROJECT_GET, {"name": name})
    if row is None:
        values = {"project_id": secrets.token_hex(8), "name": name, "created_ms": now_ms}
        x.execute(q.project_insert(x.dialect.name), values)
        row = x.one(q.PROJECT_GET, {"name": name})
        if written is not None and str(row[0]) == values["project_id"]:
            written["projects"] = [values]  # ours (not another writer's)
    cache[name] = str(row[0])
    return str(row[0])


def _create_run(
    x: q.Executor,
    batch: Batch,
    cache: MutableMapping[str, str],
    written: dict[str, list[dict[str, Any]]] | None = None,
) -> bool:
    """Insert the run; False when it already exists (a retried creation)."""
    c = batch.create
    assert c is not None
    if x.one(q.RUN_EXISTS, {"run_id": batch.run_id}) is not None:
        return False
    run = {
        "run_id": batch.run_id,
        "project_id": _project_id(x, c.project, c.created_ms, cache, written),
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
    }
    x.execute(q.RUN_INSERT, run)
    if written is not None:
        written["runs"] = [run]
    return True


def _write_params(
    x: q.Executor, run_id: str, new: dict[str, ParamValue], fresh: bool
) -> tuple[dict[str, tuple[ParamValue, ParamValue]], list[dict[str, Any]]]:
    """Insert the new params; the conflicts and the rows written."""
    keys = list(new)
    existing: dict[str, ParamValue] = {}
    for i in range(0, 0 if fresh else len(keys), _IN_LIMIT):
        rows = x.conn.execute(q.PARAMS_GET, {"run_id": run_id, "keys": keys[i : i + _IN_LIMIT]})
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
    x.many(q.PARAMS_INSERT, out)
    return conflicts, out


def _set_status(x: q.Executor, run_id: str, change: StatusChange) -> None:
    stmt = q.STATUS_SET[(change.end_ms is not None, change.only_if_running)]
    values = {"b_run": run_id, "status": change.status.value, "end_ms": change.end_ms}
    x.execute(stmt, values)
