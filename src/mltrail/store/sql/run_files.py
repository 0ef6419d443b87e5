"""The ``run_files`` table: :class:`~mltrail.store.run_files.RunFiles` in SQL."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from mltrail.errors import NotFoundError
from mltrail.store.run_files import RunFile
from mltrail.store.sql.audit_hooks import rows_change
from mltrail.store.sql.driver import driver_errors
from mltrail.store.sql.engine import write_connection
from mltrail.store.sql.schema import run_files, runs

if TYPE_CHECKING:
    import builtins

__all__ = ["SqlRunFiles"]


def _record(row: Any) -> RunFile:
    return RunFile(row.run_id, row.path, row.digest, int(row.size), int(row.created_ms))


class SqlRunFiles:
    """Read and write the ``run_files`` table; shares the tracking store's engine."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def put(self, run_id: str, path: str, digest: str, size: int) -> RunFile:
        """Point ``path`` of ``run_id`` at ``digest`` (replacing an earlier upload).

        Raises:
            NotFoundError: no such run.
        """
        fc = run_files.c
        now = time.time_ns() // 1_000_000
        row = {"run_id": run_id, "path": path, "digest": digest, "size": size, "created_ms": now}
        with driver_errors(f"recording file {path!r}"), write_connection(self._engine) as conn:
            if (
                conn.execute(sa.select(runs.c.run_id).where(runs.c.run_id == run_id)).first()
                is None
            ):
                raise NotFoundError(f"run {run_id!r} does not exist")
            where = (fc.run_id == run_id, fc.path == path)
            if conn.execute(sa.select(fc.path).where(*where)).first() is None:
                conn.execute(sa.insert(run_files), row)
            else:
                conn.execute(
                    sa.update(run_files)
                    .where(*where)
                    .values(digest=digest, size=size, created_ms=now)
                )
            key = {"run_id": run_id, "path": path}
            rows_change(conn, "run.file", f"run:{run_id}", {"run_files": key})
        return RunFile(run_id, path, digest, size, now)

    def list(self, run_id: str) -> builtins.list[RunFile]:
        """The run's files, by path."""
        fc = run_files.c
        stmt = sa.select(run_files).where(fc.run_id == run_id).order_by(fc.path)
        with driver_errors(f"listing the files of run {run_id}"), self._engine.connect() as conn:
            return [_record(r) for r in conn.execute(stmt)]

    def get(self, run_id: str, path: str) -> RunFile:
        """One file of a run.

        Raises:
            NotFoundError: the run has no file at ``path``.
        """
        fc = run_files.c
        stmt = sa.select(run_files).where(fc.run_id == run_id, fc.path == path)
        with driver_errors(f"reading file {path!r}"), self._engine.connect() as conn:
            row = conn.execute(stmt).first()
        if row is None:
            raise NotFoundError(f"run {run_id!r} has no file {path!r}")
        return _record(row)

    def is_referenced(self, digest: str) -> bool:
        """Whether any run's file points at ``digest``."""
        fc = run_files.c
        with driver_errors("checking a file digest"), self._engine.connect() as conn:
            stmt = sa.select(fc.run_id).where(fc.digest == digest).limit(1)
            return conn.execute(stmt).first() is not None
