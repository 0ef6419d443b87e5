"""Chunked metric series: read a whole series fast (appends: :mod:`.append`).

Reads fetch a handful of rows and concatenate packed arrays with NumPy; they sort only
when a chunk is out of step order or chunks overlap (logging usually goes forward).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sqlalchemy as sa

from mltrail.store.sql.schema import metric_chunks

__all__ = ["read_series"]


def read_series(conn: sa.Connection, run_id: str, key: str) -> tuple[Any, Any, Any] | None:
    """The whole series ordered by (step, timestamp); None when the key has no chunks."""
    mc = metric_chunks.c
    rows = conn.execute(
        sa.select(mc.steps, mc.timestamps, mc.vals, mc.is_sorted, mc.step_min, mc.step_max)
        .where(mc.run_id == run_id, mc.key == key)
        .order_by(mc.seq)
    ).all()
    if not rows:
        return None
    ordered = all(r.is_sorted for r in rows) and all(
        a.step_max <= b.step_min for a, b in zip(rows, rows[1:], strict=False)
    )
    if len(rows) == 1:
        r = rows[0]
        s = np.frombuffer(r.steps, "<i8").astype(np.int64)
        t = np.frombuffer(r.timestamps, "<i8").astype(np.int64)
        v = np.frombuffer(r.vals, "<f8").astype(np.float64)
    else:
        s = np.concatenate([np.frombuffer(r.steps, "<i8") for r in rows]).astype(
            np.int64, copy=False
        )
        t = np.concatenate([np.frombuffer(r.timestamps, "<i8") for r in rows]).astype(
            np.int64, copy=False
        )
        v = np.concatenate([np.frombuffer(r.vals, "<f8") for r in rows]).astype(
            np.float64, copy=False
        )
    if not ordered:
        order = np.lexsort((t, s))  # stable: logging order breaks (step, ts) ties
        s, t, v = s[order], t[order], v[order]
    return s, t, v
