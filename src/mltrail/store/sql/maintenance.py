"""Explicit database maintenance: schema upgrades (``mltrail db upgrade``) and the database
side of ``mltrail store check`` (revision, size, row counts, orphans, integrity).

Nothing here runs on a normal open: a store only checks its revision
(:func:`~mltrail.store.sql.engine.upgrade_schema`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import sqlalchemy as sa

from mltrail.store.sql.driver import driver_errors
from mltrail.store.sql.engine import (
    _check_known,
    _display,
    create_engine,
    schema_revision,
    upgrade_schema,
)
from mltrail.store.sql.schema import (
    SCHEMA_REVISION,
    artifact_versions,
    blobs,
    console_lines,
    metric_chunks,
    metric_summaries,
    model_versions,
    params,
    projects,
    registered_models,
    run_blobs,
    run_files,
    runs,
    tags,
)

__all__ = ["DatabaseReport", "Upgrade", "check_database", "upgrade_database"]


@dataclass(frozen=True, slots=True)
class Upgrade:
    """What :func:`upgrade_database` did: the revision before (None: an empty database)
    and after."""

    store: str
    before: str | None
    after: str

    @property
    def changed(self) -> bool:
        """Whether any migration ran (or the schema was created)."""
        return self.before != self.after


def upgrade_database(uri: str) -> Upgrade:
    """Apply every pending migration to the database at ``uri`` (under the migration lock,
    so two upgrades never run at once).

    Raises:
        SchemaVersionError: the database is newer than this mltrail.
        StoreError: the database cannot be reached or a migration failed (chained).
    """
    engine = create_engine(uri)
    try:
        with driver_errors(f"upgrading {_display(engine)}"):
            before = schema_revision(engine)
            _check_known(engine, before)
            upgrade_schema(engine, migrate=True)
            after = schema_revision(engine) or SCHEMA_REVISION
        return Upgrade(_display(engine), before, after)
    finally:
        engine.dispose()


@dataclass(slots=True)
class DatabaseReport:
    """The database half of ``mltrail store check``.

    Attributes:
        revision: the schema revision (None: not an mltrail database).
        head: the revision this mltrail expects.
        size_bytes: the database's size on disk (SQLite: the file and its WAL; PostgreSQL:
            ``pg_database_size``).
        counts: rows per table of interest.
        orphans: rows that refer to something missing, by kind.
        integrity: problems found by the database's own check (empty when healthy).
    """

    revision: str | None
    head: str
    size_bytes: int
    counts: dict[str, int] = field(default_factory=dict)
    orphans: dict[str, int] = field(default_factory=dict)
    integrity: list[str] = field(default_factory=list)


_COUNTED = {
    "projects": projects,
    "runs": runs,
    "params": params,
    "tags": tags,
    "metric_keys": metric_summaries,
    "metric_chunks": metric_chunks,
    "console_lines": console_lines,
    "blobs": blobs,
    "run_files": run_files,
    "artifact_versions": artifact_versions,
    "registered_models": registered_models,
    "model_versions": model_versions,
}


def _count(conn: sa.Connection, table: sa.Table) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() or 0)


def _orphans(conn: sa.Connection) -> dict[str, int]:
    """Rows whose run is gone, and blobs no run links to."""

    def without_run(table: sa.Table) -> int:
        missing = ~sa.exists().where(runs.c.run_id == table.c.run_id)
        query = sa.select(sa.func.count()).select_from(table).where(missing)
        return int(conn.execute(query).scalar() or 0)

    unlinked = ~sa.exists().where(run_blobs.c.digest == blobs.c.digest)
    return {
        "run_files_without_run": without_run(run_files),
        "metric_keys_without_run": without_run(metric_summaries),
        "console_lines_without_run": without_run(console_lines),
        "blobs_without_run": int(
            conn.execute(sa.select(sa.func.count()).select_from(blobs).where(unlinked)).scalar()
            or 0
        ),
    }


def _size(conn: sa.Connection, engine: sa.Engine) -> int:
    if engine.dialect.name == "postgresql":
        size = conn.execute(sa.text("SELECT pg_database_size(current_database())")).scalar()
        return int(size or 0)
    db = str(engine.url.database)
    return sum(os.path.getsize(p) for p in (db, f"{db}-wal") if os.path.exists(p))


def _integrity(conn: sa.Connection, engine: sa.Engine) -> list[str]:
    if engine.dialect.name == "sqlite":
        rows = [str(r[0]) for r in conn.exec_driver_sql("PRAGMA integrity_check").all()]
        return [] if rows == ["ok"] else rows
    # PostgreSQL checks pages on read; what can be asked cheaply is whether indexes are usable
    query = sa.text(
        "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = current_schema() AND NOT (i.indisvalid AND i.indisready)"
    )
    return [f"index {name} is not valid" for name in conn.execute(query).scalars()]


def check_database(uri: str) -> DatabaseReport:
    """Revision, size, counts, orphans and integrity of the database at ``uri`` (read-only:
    an older schema is reported, never migrated; counts need the current one).

    Raises:
        StoreError: the database cannot be read.
    """
    engine = create_engine(uri)
    try:
        with driver_errors(f"checking {_display(engine)}"), engine.connect() as conn:
            revision = schema_revision(engine)
            report = DatabaseReport(revision, SCHEMA_REVISION, _size(conn, engine))
            report.integrity = _integrity(conn, engine)
            if revision == SCHEMA_REVISION:
                report.counts = {name: _count(conn, t) for name, t in _COUNTED.items()}
                report.orphans = _orphans(conn)
        return report
    finally:
        engine.dispose()
