"""Load full run records for a page of run ids: four queries, whatever the page size.

A search returns at most one page of ids; this reads those runs' rows, params, tags and
metric summaries with one ``IN`` query each (primary-key lookups), never a query per run.
The rows are read as plain tuples of the needed columns: at 100 runs x 15 keys, attribute
access on SQLAlchemy rows and keyword construction cost more than the queries themselves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa

from mltrail.store.sql.records import build_records
from mltrail.store.sql.schema import metric_summaries, params, projects, runs, tags

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mltrail.entities import RunRecord

__all__ = ["load_runs"]

_RC = runs.c
_BASE = sa.select(
    _RC.run_id, projects.c.name, _RC.name, _RC.status, _RC.created_ms, _RC.end_ms,
    _RC.heartbeat_ms, _RC.heartbeat_s, _RC.user_name, _RC.host, _RC.command, _RC.config,
).join(projects, projects.c.project_id == _RC.project_id)  # fmt: skip
_PARAMS = sa.select(params.c.run_id, params.c.key, params.c.value, params.c.vtype)
_TAGS = sa.select(tags.c.run_id, tags.c.key, tags.c.value)
_MC = metric_summaries.c
_METRICS = sa.select(
    _MC.run_id, _MC.key, _MC.last_value, _MC.last_step, _MC.last_ms, _MC.min_value,
    _MC.max_value, _MC.count,
)  # fmt: skip


def load_runs(
    conn: sa.Connection, ids: Sequence[str], now_ms: int, crash_intervals: int
) -> list[RunRecord]:
    """The records of ``ids`` (in that order; ids not found are left out).

    A running run whose heartbeat is older than ``crash_intervals`` heartbeat intervals
    reads as crashed, ended at its last heartbeat.
    """
    if not ids:
        return []
    ids = list(ids)
    by_id = build_records(
        conn.execute(_BASE.where(_RC.run_id.in_(ids))).all(),
        conn.execute(_PARAMS.where(params.c.run_id.in_(ids))).all(),
        conn.execute(_TAGS.where(tags.c.run_id.in_(ids))).all(),
        conn.execute(_METRICS.where(_MC.run_id.in_(ids))).all(),
        now_ms,
        crash_intervals,
    )
    return [by_id[i] for i in ids if i in by_id]
