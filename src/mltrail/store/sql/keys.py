"""Read-side queries the UI and the data commands need beyond the core protocol.

- :func:`project_keys`: the distinct param, metric and tag keys of a project's runs (three
  ``DISTINCT`` queries over indexed columns), for the column chooser.
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
    ``limit`` of each."""
    pid = sa.select(projects.c.project_id).where(projects.c.name == project).scalar_subquery()
    in_project = sa.select(runs.c.run_id).where(runs.c.project_id == pid)
    out: dict[str, list[str]] = {}
    with driver_errors(f"listing the keys of project {project!r}"), engine.connect() as conn:
        for name, table in (("params", params), ("metrics", metric_summaries), ("tags", tags)):
            stmt = (
                sa.select(table.c.key)
                .where(table.c.run_id.in_(in_project))
                .distinct()
                .order_by(table.c.key)
                .limit(limit)
            )
            out[name] = [str(k) for k in conn.execute(stmt).scalars()]
    return out


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
