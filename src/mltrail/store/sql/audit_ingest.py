"""The audit entry of an applied batch: one per batch, whatever it holds.

Rows written from the batch's own values (the run and its project at creation, params,
tags, state, blobs) are recorded from them; the run's row after an UPDATE that may not
have applied (a status change, a resume) is read back in the transaction. Metric points are
recorded as ``{"run", "keys": [[key, n], ...], "digest"}``: one BLAKE3 hash of the batch's
packed columns, key after key (:func:`mltrail.audit.entries.metric_digest`), so a batch
costs one hash pass, not a row (nor a hash) per point or key. Heartbeats and console lines
are not recorded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mltrail.audit.entries import column_bytes, metric_digest
from mltrail.store.sql.audit import Change
from mltrail.store.sql.audit_rows import snapshot, table_rows

if TYPE_CHECKING:
    import sqlalchemy as sa

    from mltrail.store.batch import Batch

__all__ = ["batch_change"]


def batch_change(
    conn: sa.Connection, batch: Batch, fresh: bool, written: dict[str, list[dict[str, Any]]]
) -> Change | None:
    """The entry recording what ``batch`` changed (None: nothing of record). ``written``: the
    rows the batch inserted from known values (runs, projects, params, state)."""
    run_id = batch.run_id
    parts: list[str] = []
    rows: dict[str, dict[str, Any]] = {}
    if fresh:
        parts.append("create")
    if batch.resume_ms is not None:
        parts.append("resume")
    if batch.status is not None:
        parts.append("status")
    if batch.project is not None:
        parts.append("move")
    if batch.resume_ms is not None or batch.status is not None or batch.project is not None:
        rows["runs"] = snapshot(conn, "runs", {"run_id": run_id})  # what the UPDATE left
    elif fresh:
        rows["runs"] = table_rows("runs", written["runs"])
    if "projects" in written:
        rows["projects"] = table_rows("projects", written["projects"])
    if written.get("params"):
        parts.append("params")
        rows["params"] = table_rows("params", written["params"])
    if batch.tags:
        parts.append("tags")
        rows["tags"] = table_rows(
            "tags", ({"run_id": run_id, "key": k, "value": v} for k, v in batch.tags.items())
        )
    if written.get("run_state"):
        parts.append("state")
        rows["run_state"] = table_rows("run_state", written["run_state"])
    blobs: tuple[str, ...] = ()
    if batch.blobs:
        parts.append("blobs")
        blobs = tuple(sorted(batch.blobs))
        rows["blobs"] = table_rows(
            "blobs",
            ({"digest": d, "size": len(b), "data": b} for d, b in batch.blobs.items()),
        )
        rows["run_blobs"] = table_rows(
            "run_blobs", ({"digest": d, "run_id": run_id} for d in blobs)
        )
    keys = [(k, col) for k, col in batch.metrics.items() if len(col)]
    metrics: list[dict[str, Any]] = []
    if keys:
        dig = metric_digest(
            (
                column_bytes(col.steps, "<i8"),
                column_bytes(col.timestamps, "<i8"),
                column_bytes(col.values, "<f8"),
            )
            for _, col in keys
        )
        metrics.append({"run": run_id, "keys": [[k, len(col)] for k, col in keys], "digest": dig})
    if metrics:
        parts.append("metrics")
    if not parts:
        return None
    payload: dict[str, Any] = {"run": run_id}
    if rows:
        payload["rows"] = rows
    if metrics:
        payload["metrics"] = metrics
    return Change("run." + "+".join(parts), f"run:{run_id}", payload, blobs)
