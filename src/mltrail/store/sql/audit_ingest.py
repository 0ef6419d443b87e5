"""The audit entry of an applied batch: one per batch, whatever it holds.

Rows written from the batch's own values (params, tags, state, blobs) are recorded from
them; rows an UPDATE decided (the run's status and end after a status change or a resume,
the run and project rows at creation) are read back in the transaction. Metric points are
recorded as ``[run, key, n, digest]`` per key: the SHA-256 of the batch's packed columns
(:func:`mltrail.audit.entries.metric_digest`), so a batch of 10^5 points costs one hash pass,
not a row per point. Heartbeats and console lines are not recorded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mltrail.audit.entries import metric_digest
from mltrail.store.sql.audit import Change
from mltrail.store.sql.audit_rows import canonical_rows, snapshot

if TYPE_CHECKING:
    import sqlalchemy as sa

    from mltrail.store.batch import Batch

__all__ = ["batch_change"]


def batch_change(
    conn: sa.Connection, batch: Batch, fresh: bool, params_rows: list[dict[str, Any]]
) -> Change | None:
    """The entry recording what ``batch`` changed (None: nothing of record)."""
    run_id = batch.run_id
    parts: list[str] = []
    rows: dict[str, dict[str, Any]] = {}
    if fresh:
        parts.append("create")
        run_rows = snapshot(conn, "runs", {"run_id": run_id})
        rows["runs"] = run_rows
        project_id = next(iter(run_rows.values()))["project_id"]
        rows["projects"] = snapshot(conn, "projects", {"project_id": project_id})
    elif batch.resume_ms is not None or batch.status is not None:
        parts.append("resume" if batch.resume_ms is not None else "status")
        rows["runs"] = snapshot(conn, "runs", {"run_id": run_id})
    if fresh and batch.status is not None:
        parts.append("status")
    if params_rows:
        parts.append("params")
        rows["params"] = canonical_rows("params", params_rows)
    if batch.tags:
        parts.append("tags")
        rows["tags"] = canonical_rows(
            "tags", ({"run_id": run_id, "key": k, "value": v} for k, v in batch.tags.items())
        )
    if batch.state:
        parts.append("state")
        # the store keeps the JSON text it wrote; read it back rather than re-encode it
        rows["run_state"] = {
            k: v
            for k, v in snapshot(conn, "run_state", {"run_id": run_id}).items()
            if v["kind"] in batch.state
        }
    blobs: tuple[str, ...] = ()
    if batch.blobs:
        parts.append("blobs")
        blobs = tuple(sorted(batch.blobs))
        rows["blobs"] = canonical_rows(
            "blobs",
            ({"digest": d, "size": len(b), "data": b} for d, b in batch.blobs.items()),
        )
        rows["run_blobs"] = canonical_rows(
            "run_blobs", ({"digest": d, "run_id": run_id} for d in blobs)
        )
    metrics: list[list[Any]] = []
    for key, col in batch.metrics.items():
        if len(col):
            dig = metric_digest(
                col.steps.astype("<i8", copy=False).tobytes(),
                col.timestamps.astype("<i8", copy=False).tobytes(),
                col.values.astype("<f8", copy=False).tobytes(),
            )
            metrics.append([run_id, key, len(col), dig])
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
