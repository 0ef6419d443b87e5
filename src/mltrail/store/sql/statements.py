"""Prebuilt statements for the write path.

Building a Core statement and its cache key costs ~50 µs per execution; a statement built once
with bind parameters costs ~20 µs less each time, which matters at thousands of runs per
second. Upserts differ per dialect and are built once per dialect.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import sqlalchemy as sa

from mltrail.entities import RunStatus
from mltrail.store.sql.schema import (
    ingest_cursors,
    metric_chunks,
    metric_summaries,
    params,
    projects,
    runs,
    tags,
)

_b = sa.bindparam
ic, pc, rc, ms, mc, tc = (
    ingest_cursors.c,
    projects.c,
    runs.c,
    metric_summaries.c,
    metric_chunks.c,
    tags.c,
)

CURSOR_GET = sa.select(ic.position).where(ic.source == _b("source"))
CURSOR_INSERT = sa.insert(ingest_cursors)
CURSOR_SET = (
    sa.update(ingest_cursors).where(ic.source == _b("b_source")).values(position=_b("position"))
)
RUN_EXISTS = sa.select(rc.run_id).where(rc.run_id == _b("run_id"))
RUN_INSERT = sa.insert(runs)
RUN_RESUME = (
    sa.update(runs)
    .where(rc.run_id == _b("b_run"))
    .values(status=RunStatus.RUNNING.value, end_ms=None, heartbeat_ms=_b("heartbeat_ms"))
)
RUN_HEARTBEAT = (
    sa.update(runs)
    .where(
        rc.run_id == _b("b_run"), sa.or_(rc.heartbeat_ms.is_(None), rc.heartbeat_ms < _b("b_ms"))
    )
    .values(heartbeat_ms=_b("b_ms"))
)
PROJECT_GET = sa.select(pc.project_id).where(pc.name == _b("name"))
PARAMS_GET = sa.select(params.c.key, params.c.value, params.c.vtype).where(
    params.c.run_id == _b("run_id"), params.c.key.in_(_b("keys", expanding=True))
)
PARAMS_INSERT = sa.insert(params)
TAGS_INSERT = sa.insert(tags)
SUMMARIES_GET = sa.select(metric_summaries).where(
    ms.run_id == _b("run_id"), ms.key.in_(_b("keys", expanding=True))
)
SUMMARIES_INSERT = sa.insert(metric_summaries)
SUMMARY_UPDATE = (
    sa.update(metric_summaries)
    .where(ms.run_id == _b("b_run"), ms.key == _b("b_key"))
    .values(
        {
            c: _b(c)
            for c in (
                "last_value",
                "last_step",
                "last_ms",
                "min_value",
                "max_value",
                "count",
                "open_seq",
                "open_n",
            )
        }
    )
)
CHUNK_GET = sa.select(mc.steps, mc.timestamps, mc.vals).where(
    mc.run_id == _b("run_id"), mc.key == _b("key"), mc.seq == _b("seq")
)
CHUNK_DELETE = sa.delete(metric_chunks).where(
    mc.run_id == _b("run_id"), mc.key == _b("key"), mc.seq == _b("seq")
)
CHUNKS_INSERT = sa.insert(metric_chunks)


def _insert_fn(dialect: str) -> Any:
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert
    from sqlalchemy.dialects import sqlite

    return sqlite.insert


@cache
def project_insert(dialect: str) -> Any:
    """INSERT a project, doing nothing if the name exists."""
    return _insert_fn(dialect)(projects).on_conflict_do_nothing(index_elements=["name"])


@cache
def tags_upsert(dialect: str) -> Any:
    """INSERT tags, replacing the value of existing keys."""
    ins = _insert_fn(dialect)(tags)
    return ins.on_conflict_do_update(
        index_elements=["run_id", "key"], set_={"value": ins.excluded.value}
    )
