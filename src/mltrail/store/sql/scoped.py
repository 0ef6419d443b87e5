"""Queries behind project-scoped reads: what a token limited to one project may see.

The server answers a token scoped to one project with that project's records only. Most
routes check the project of the run they touch; these queries cover what has no project of
its own, each an indexed lookup (never a scan of all runs):

- a run id prefix is matched among the project's runs only (an ambiguity or a miss never
  depends on another project's runs);
- a blob (``sha256:``, an uncommitted diff, a lock file) is readable through a run of the
  project that carried its bytes (``run_blobs``, written with the batch);
- an object of the server's object store is readable where the project references it
  (``object_refs``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa

from mltrail.errors import AmbiguousIdError, NotFoundError
from mltrail.store.sql.driver import dialect_insert, driver_errors
from mltrail.store.sql.schema import (
    artifact_versions,
    artifacts,
    object_refs,
    projects,
    run_blobs,
    runs,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

__all__ = ["SqlScopedReads", "link_blobs"]

_CHUNK = 500


def _project_id(name: str) -> sa.ScalarSelect[str]:
    return sa.select(projects.c.project_id).where(projects.c.name == name).scalar_subquery()


def link_blobs(conn: sa.Connection, run_id: str, digests: Iterable[str]) -> None:
    """Record that ``run_id`` carried the blobs ``digests`` (in the caller's transaction)."""
    rows = [{"digest": d, "run_id": run_id} for d in dict.fromkeys(digests)]
    if rows:
        insert = dialect_insert(conn)(run_blobs).on_conflict_do_nothing()
        conn.execute(insert, rows)


class SqlScopedReads:
    """The scoped-read queries on a tracking store's database (shares its engine)."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def resolve_run_id(self, prefix: str, project: str) -> str:
        """The full id of the one run of ``project`` whose id starts with ``prefix``.

        Raises:
            NotFoundError: no run of the project matches (the message names the prefix
                only). AmbiguousIdError: several do.
        """
        rc = runs.c
        if not prefix:
            raise NotFoundError(f"no run id starts with {prefix!r}")
        where = [
            rc.project_id == _project_id(project),
            rc.run_id.startswith(prefix, autoescape=True),
        ]
        if self._engine.dialect.name == "sqlite":
            # run ids compare bytewise on SQLite: the range lets the primary key serve the
            # search (LIKE alone would read every run of the project)
            where += [rc.run_id >= prefix, rc.run_id < prefix + "\U0010ffff"]
        stmt = sa.select(rc.run_id).where(*where).order_by(rc.run_id).limit(2)
        with driver_errors("resolving a run id"), self._engine.connect() as conn:
            found = [str(r) for r in conn.execute(stmt).scalars()]
        if not found:
            raise NotFoundError(f"no run id starts with {prefix!r}")
        if found[0] == prefix:  # an exact id sorts first among the ids it prefixes
            return prefix
        if len(found) > 1:
            raise AmbiguousIdError(
                f"run id prefix {prefix!r} matches several runs; give more characters"
            )
        return found[0]

    def run_projects(self, run_ids: Iterable[str]) -> dict[str, str]:
        """The project (name) of each of ``run_ids`` that exists."""
        wanted = list(dict.fromkeys(run_ids))
        out: dict[str, str] = {}
        with driver_errors("reading the projects of runs"), self._engine.connect() as conn:
            for i in range(0, len(wanted), _CHUNK):
                stmt = (
                    sa.select(runs.c.run_id, projects.c.name)
                    .join(projects, projects.c.project_id == runs.c.project_id)
                    .where(runs.c.run_id.in_(wanted[i : i + _CHUNK]))
                )
                out.update((str(r), str(p)) for r, p in conn.execute(stmt))
        return out

    def blob_readable(self, digest: str, project: str) -> bool:
        """Whether a run of ``project`` carried the blob ``digest``."""
        stmt = (
            sa.select(sa.literal(1))
            .select_from(run_blobs)
            .join(runs, runs.c.run_id == run_blobs.c.run_id)
            .where(run_blobs.c.digest == digest, runs.c.project_id == _project_id(project))
            .limit(1)
        )
        with driver_errors(f"checking blob {digest}"), self._engine.connect() as conn:
            return conn.execute(stmt).first() is not None

    def readable_objects(self, digests: Sequence[str], project: str) -> set[str]:
        """Those of ``digests`` that ``project`` references."""
        oc = object_refs.c
        out: set[str] = set()
        with driver_errors("checking objects"), self._engine.connect() as conn:
            for i in range(0, len(digests), _CHUNK):
                chunk = list(digests[i : i + _CHUNK])
                stmt = sa.select(oc.digest).where(oc.project == project, oc.digest.in_(chunk))
                out.update(str(d) for d in conn.execute(stmt).scalars())
        return out

    def add_object_refs(self, project: str, digests: Iterable[str]) -> None:
        """Record that ``project`` references the objects ``digests`` (idempotent)."""
        rows = [{"digest": d, "project": project} for d in dict.fromkeys(digests)]
        if not rows:
            return
        from mltrail.store.sql.engine import write_connection

        with driver_errors("recording object references"), write_connection(self._engine) as conn:
            for i in range(0, len(rows), _CHUNK):
                insert = dialect_insert(conn)(object_refs).on_conflict_do_nothing()
                conn.execute(insert, rows[i : i + _CHUNK])
            from mltrail.store.sql.audit_hooks import inserted_rows

            inserted_rows(conn, "objects.refs", f"project:{project}", "object_refs", rows)

    def is_version_digest(self, digest: str, project: str) -> bool:
        """Whether an artifact version of ``project`` has the content ``digest``."""
        vc, ac = artifact_versions.c, artifacts.c
        stmt = (
            sa.select(sa.literal(1))
            .select_from(artifact_versions)
            .join(artifacts, ac.artifact_id == vc.artifact_id)
            .where(vc.digest == digest, ac.project_id == _project_id(project))
            .limit(1)
        )
        with driver_errors(f"checking object {digest}"), self._engine.connect() as conn:
            return conn.execute(stmt).first() is not None
