"""``SqlUiViews``: saved workspace views in the ``ui_views`` table (one row per name)."""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa

from mltrail.errors import InvalidArgumentError, NotFoundError
from mltrail.store.sql.driver import driver_errors
from mltrail.store.sql.engine import write_connection
from mltrail.store.sql.schema import projects, ui_views
from mltrail.store.ui_views import MAX_SPEC_BYTES, MAX_VIEWS, SavedView, check_view_name

__all__ = ["SqlUiViews"]


class SqlUiViews:
    """Saved views of the store's projects; shares the tracking store's engine."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def _project_id(self, conn: sa.Connection, project: str) -> str:
        pid = conn.execute(
            sa.select(projects.c.project_id).where(projects.c.name == project)
        ).scalar_one_or_none()
        if pid is None:
            raise NotFoundError(f"no project named {project!r}")
        return str(pid)

    @staticmethod
    def _view(project: str, row: Any) -> SavedView:
        return SavedView(
            project, str(row.name), str(row.spec), int(row.updated_ms), str(row.updated_by)
        )

    def _select(self) -> Any:
        v = ui_views.c
        return sa.select(v.name, v.spec, v.updated_ms, v.updated_by)

    def list_views(self, project: str) -> list[SavedView]:
        """Every view of ``project``, by name (``NotFoundError``: no such project)."""
        with driver_errors(f"listing the views of {project!r}"), self._engine.connect() as conn:
            pid = self._project_id(conn, project)
            rows = conn.execute(
                self._select().where(ui_views.c.project_id == pid).order_by(ui_views.c.name)
            ).all()
        return [self._view(project, r) for r in rows]

    def get_view(self, project: str, name: str) -> SavedView:
        """One view of ``project`` (``NotFoundError`` when it or the project is missing)."""
        with driver_errors(f"reading view {name!r}"), self._engine.connect() as conn:
            pid = self._project_id(conn, project)
            row = conn.execute(
                self._select().where(ui_views.c.project_id == pid, ui_views.c.name == name)
            ).one_or_none()
        if row is None:
            raise NotFoundError(f"no view named {name!r} in project {project!r}")
        return self._view(project, row)

    def save_view(self, project: str, name: str, spec: str, actor: str) -> SavedView:
        """Create or replace the view ``name`` of ``project``.

        Raises:
            InvalidArgumentError: a bad name, a document over :data:`MAX_SPEC_BYTES`, or a
                new view past :data:`MAX_VIEWS` in the project.
            NotFoundError: no such project.
        """
        name = check_view_name(name)
        if len(spec.encode("utf-8")) > MAX_SPEC_BYTES:
            raise InvalidArgumentError(f"spec: a view is at most {MAX_SPEC_BYTES} bytes of JSON")
        now = time.time_ns() // 1_000_000
        v = ui_views.c
        with driver_errors(f"saving view {name!r}"), write_connection(self._engine) as conn:
            pid = self._project_id(conn, project)
            where = (v.project_id == pid, v.name == name)
            updated = conn.execute(
                ui_views.update()
                .where(*where)
                .values(spec=spec, updated_ms=now, updated_by=actor[:250])
            ).rowcount
            if not updated:
                count = conn.execute(
                    sa.select(sa.func.count()).select_from(ui_views).where(v.project_id == pid)
                ).scalar_one()
                if count >= MAX_VIEWS:
                    raise InvalidArgumentError(
                        f"name: a project keeps at most {MAX_VIEWS} views; delete one first"
                    )
                conn.execute(
                    ui_views.insert().values(
                        project_id=pid, name=name, spec=spec, updated_ms=now, updated_by=actor[:250]
                    )
                )
        return SavedView(project, name, spec, now, actor[:250])

    def delete_view(self, project: str, name: str) -> bool:
        """Remove the view ``name`` of ``project``; False when there was none."""
        with driver_errors(f"deleting view {name!r}"), write_connection(self._engine) as conn:
            pid = self._project_id(conn, project)
            gone = conn.execute(
                ui_views.delete().where(ui_views.c.project_id == pid, ui_views.c.name == name)
            ).rowcount
        return bool(gone)
