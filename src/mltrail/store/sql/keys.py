"""Read-side queries the UI and the data commands need beyond the core protocol.

- :func:`project_keys`: the distinct param, metric and tag keys of a project's runs (a skip
  scan of each key index), for the column chooser.
- :func:`referenced_digests`: every object digest a store references (artifact versions, run
  files, runs' data pointers), for ``mltrail data gc``; it reads a store without creating or
  migrating it.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from mltrail.store.sql.driver import driver_errors
from mltrail.store.sql.schema import (
    artifact_versions,
    metric_summaries,
    params,
    projects,
    run_files,
    run_state,
    runs,
    tags,
)

__all__ = ["project_keys", "referenced_digests"]


def project_keys(engine: sa.Engine, project: str, limit: int) -> dict[str, list[str]]:
    """``{"params": [...], "metrics": [...], "tags": [...]}`` of ``project``, sorted, at most
    ``limit`` of each.

    A skip scan over each table's ``(key, ...)`` index: the next distinct key is one index
    seek (``min(key) WHERE key > previous``), and a key counts when one of its rows belongs to
    a run of the project (the first row found stops the probe). The cost is the number of
    distinct keys, not of rows: a ``DISTINCT`` over 10^6 runs' 8M param rows took seconds.
    """
    pid = sa.select(projects.c.project_id).where(projects.c.name == project).scalar_subquery()
    out: dict[str, list[str]] = {}
    with driver_errors(f"listing the keys of project {project!r}"), engine.connect() as conn:
        for name, table in (("params", params), ("metrics", metric_summaries), ("tags", tags)):
            out[name] = _distinct_keys(conn, table, pid, limit)
    return out


def _distinct_keys(
    conn: sa.Connection, table: sa.Table, pid: sa.ScalarSelect[Any], limit: int
) -> list[str]:
    key = table.c.key
    # `|| ''` keeps SQLite from driving the probe by the project's runs (up to every run of
    # the project for a rare key): the key's rows lead, each run found by primary key
    project_id = runs.c.project_id + "" if conn.dialect.name == "sqlite" else runs.c.project_id
    in_project = (
        sa.select(sa.literal(1))
        .select_from(table.join(runs, runs.c.run_id == table.c.run_id))
        .where(key == sa.bindparam("k"), project_id == pid)
        .limit(1)
    )
    first = sa.select(sa.func.min(key))
    after = sa.select(sa.func.min(key)).where(key > sa.bindparam("k"))
    found: list[str] = []
    current = conn.execute(first).scalar()
    while current is not None and len(found) < limit:
        if conn.execute(in_project, {"k": current}).first() is not None:
            found.append(str(current))
        current = conn.execute(after, {"k": current}).scalar()
    return found


def referenced_digests(uri: str) -> set[str]:
    """Every object digest the SQL store at ``uri`` references (never creating the store).

    Tables an older store lacks reference nothing.

    Raises:
        StoreError: the store exists but cannot be read.
    """
    from mltrail.store.sql.engine import create_engine

    engine = create_engine(uri)
    found: set[Any] = set()
    try:
        action = "reading the digests the tracking store references"
        with driver_errors(action), engine.connect() as conn:
            have = set(sa.inspect(conn).get_table_names())
            if "artifact_versions" in have:
                found |= set(conn.execute(sa.select(artifact_versions.c.digest)).scalars())
            if "run_files" in have:
                found |= set(conn.execute(sa.select(run_files.c.digest)).scalars())
            if "run_state" in have:
                query = sa.select(run_state.c.data).where(run_state.c.kind == "data")
                for doc in conn.execute(query).scalars():
                    found |= _pointer_digests(doc)
    finally:
        engine.dispose()
    return {d for d in found if isinstance(d, str)}


def _pointer_digests(doc: str) -> set[str]:
    try:
        data = json.loads(doc)
    except ValueError:
        return set()
    pointers = data.get("pointers") if isinstance(data, dict) else None
    return {
        p["digest"]
        for p in pointers or []
        if isinstance(p, dict) and isinstance(p.get("digest"), str)
    }
