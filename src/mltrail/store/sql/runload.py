"""Load full run records for a page of run ids: four queries, whatever the page size.

A search returns at most one page of ids; this reads those runs' rows, params, tags and
metric summaries with one ``IN`` query each (primary-key lookups), never a query per run.
The rows are read as plain tuples of the needed columns: at 100 runs x 15 keys, attribute
access on SQLAlchemy rows and keyword construction cost more than the queries themselves.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from mltrail.entities import MetricSummary, RunRecord, RunStatus
from mltrail.store.sql.params import decode_param
from mltrail.store.sql.schema import metric_summaries, params, projects, runs, tags

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["load_runs"]

_NAN = float("nan")
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
    base = conn.execute(_BASE.where(_RC.run_id.in_(ids))).all()
    extra: dict[str, tuple[dict[str, Any], dict[str, str], dict[str, MetricSummary]]] = {
        row[0]: ({}, {}, {}) for row in base
    }
    for rid, key, value, vtype in conn.execute(_PARAMS.where(params.c.run_id.in_(ids))).all():
        extra[rid][0][key] = value if vtype == "s" else decode_param(value, vtype)
    for rid, key, value in conn.execute(_TAGS.where(tags.c.run_id.in_(ids))).all():
        extra[rid][1][key] = value
    rows = conn.execute(_METRICS.where(_MC.run_id.in_(ids))).all()
    for rid, key, last, step, ms, lo, hi, count in rows:
        extra[rid][2][key] = MetricSummary(
            key,
            _NAN if last is None else float(last),
            int(step),
            int(ms),
            _NAN if lo is None else float(lo),
            _NAN if hi is None else float(hi),
            int(count),
        )
    by_id: dict[str, RunRecord] = {}
    running = RunStatus.RUNNING
    for rid, project, name, status_text, created, end, beat, beat_s, user, host, cmd, cfg in base:
        status = RunStatus(status_text)
        if (
            status is running
            and beat is not None
            and now_ms - beat > crash_intervals * beat_s * 1000
        ):
            status, end = RunStatus.CRASHED, beat
        p, t, m = extra[rid]
        by_id[rid] = RunRecord(
            run_id=rid,
            project=project,
            name=name,
            status=status,
            created_ms=int(created),
            end_ms=None if end is None else int(end),
            heartbeat_ms=None if beat is None else int(beat),
            user=user,
            host=host,
            command=cmd,
            params=p,
            tags=t,
            config=json.loads(cfg) if cfg != "{}" else {},
            metrics=m,
        )
    return [by_id[i] for i in ids if i in by_id]
