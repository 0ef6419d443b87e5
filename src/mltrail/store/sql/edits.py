"""``SqlRunEdits``: the few edits a foreign tracking API needs that a batch cannot carry.

A :class:`~mltrail.store.batch.Batch` only adds (runs, params, tags, points). MLflow's API
also creates an empty experiment (a project with no runs yet) and deletes a run's tag; both
are single statements here, in a write transaction of the store's own engine.
"""

from __future__ import annotations

import secrets
import time

import sqlalchemy as sa

from mltrail._validation import check_key, normalize_key
from mltrail.entities import Project
from mltrail.errors import NotFoundError
from mltrail.store.sql.audit_hooks import rows_change
from mltrail.store.sql.driver import driver_errors
from mltrail.store.sql.engine import write_connection
from mltrail.store.sql.schema import projects, runs, tags
from mltrail.store.sql.statements import project_insert

__all__ = ["SqlRunEdits"]


class SqlRunEdits:
    """Create projects and delete tags; shares the tracking store's engine."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def ensure_project(self, name: str) -> Project:
        """The project ``name``, created (with no runs) when missing."""
        name = check_key(name, "project")
        now = time.time_ns() // 1_000_000
        pc = projects.c
        with driver_errors(f"creating project {name!r}"), write_connection(self._engine) as conn:
            created = conn.execute(
                project_insert(conn.dialect.name),
                {"project_id": secrets.token_hex(8), "name": name, "created_ms": now},
            ).rowcount
            row = conn.execute(
                sa.select(pc.project_id, pc.name, pc.created_ms).where(pc.name == name)
            ).one()
            count = conn.execute(
                sa.select(sa.func.count()).where(runs.c.project_id == row.project_id)
            ).scalar_one()
            if created:
                where = {"project_id": row.project_id}
                rows_change(conn, "project.create", f"project:{name}", {"projects": where})
        return Project(str(row.project_id), str(row.name), int(row.created_ms), int(count))

    def delete_tag(self, run_id: str, key: str) -> bool:
        """Remove one tag of a run; False when the run had no such tag.

        Raises:
            NotFoundError: no such run.
        """
        key = normalize_key(key)
        with driver_errors(f"deleting tag {key!r}"), write_connection(self._engine) as conn:
            if (
                conn.execute(sa.select(runs.c.run_id).where(runs.c.run_id == run_id)).first()
                is None
            ):
                raise NotFoundError(f"run {run_id!r} does not exist")
            gone = conn.execute(
                sa.delete(tags).where(tags.c.run_id == run_id, tags.c.key == key)
            ).rowcount
            if gone:
                pk = {"run_id": run_id, "key": key}
                rows_change(conn, "run.tag_deleted", f"run:{run_id}", {}, deleted={"tags": [pk]})
        return bool(gone)
