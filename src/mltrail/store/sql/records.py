"""Run records from the rows of a run read: shared by the SQLAlchemy loader
(:mod:`mltrail.store.sql.runload`) and the standard-library reader
(:mod:`mltrail.store.sql.lite`), so both build exactly the same records. No SQLAlchemy here.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from mltrail.entities import MetricSummary, RunRecord, RunStatus
from mltrail.store.sql.params import decode_param

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["CRASH_INTERVALS", "build_records"]

#: a running run whose heartbeat is this many intervals old reads as crashed
CRASH_INTERVALS = 3
_NAN = float("nan")


def build_records(
    base: Iterable[tuple[Any, ...]],
    param_rows: Iterable[tuple[Any, ...]],
    tag_rows: Iterable[tuple[Any, ...]],
    metric_rows: Iterable[tuple[Any, ...]],
    now_ms: int,
    crash_intervals: int = CRASH_INTERVALS,
) -> dict[str, RunRecord]:
    """The records by run id.

    Args:
        base: ``(run_id, project, name, status, created_ms, end_ms, heartbeat_ms,
            heartbeat_s, user, host, command, config)`` per run.
        param_rows: ``(run_id, key, value, vtype)``.
        tag_rows: ``(run_id, key, value)``.
        metric_rows: ``(run_id, key, last, step, ms, min, max, count)`` (summaries).
        now_ms: now, for the crashed-by-heartbeat rule: a running run whose heartbeat is
            older than ``crash_intervals`` intervals reads as crashed, ended at that beat.
    """
    base = list(base)
    extra: dict[str, tuple[dict[str, Any], dict[str, str], dict[str, MetricSummary]]] = {
        row[0]: ({}, {}, {}) for row in base
    }
    for rid, key, value, vtype in param_rows:
        extra[rid][0][key] = value if vtype == "s" else decode_param(value, vtype)
    for rid, key, value in tag_rows:
        extra[rid][1][key] = value
    for rid, key, last, step, ms, lo, hi, count in metric_rows:
        extra[rid][2][key] = MetricSummary(
            key,
            _NAN if last is None else float(last),
            int(step),
            int(ms),
            _NAN if lo is None else float(lo),
            _NAN if hi is None else float(hi),
            int(count),
        )
    out: dict[str, RunRecord] = {}
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
        out[rid] = RunRecord(
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
    return out
