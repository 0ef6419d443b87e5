"""``SqlTrackingStore``: the TrackingStore on SQLAlchemy Core (SQLite and PostgreSQL)."""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
import time
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
import sqlalchemy.exc as sa_exc

from mltrail.entities import MetricSummary, ParamValue, Project, RunRecord, RunStatus
from mltrail.errors import (
    AmbiguousIdError,
    IntegrityError,
    MltrailError,
    NotFoundError,
    StoreError,
)
from mltrail.events.batch import Batch, BatchResult, StatusChange
from mltrail.store.base import MetricSeries, RunPage
from mltrail.store.sql import series
from mltrail.store.sql.engine import create_engine, upgrade_schema, write_connection
from mltrail.store.sql.schema import (
    ingest_cursors,
    metric_summaries,
    params,
    projects,
    runs,
    tags,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mltrail.store.registry import StoreLocation

__all__ = ["SqlTrackingStore", "decode_param", "encode_param"]

_CRASH_INTERVALS = 3


def encode_param(value: ParamValue) -> tuple[str, str, float | None]:
    """``(text, vtype, number)`` columns for a param value."""
    if value is None:
        return "null", "n", None
    if isinstance(value, bool):
        return ("true" if value else "false"), "b", None
    if isinstance(value, int):
        return str(value), "i", float(value) if abs(value) < 2**1023 else None
    if isinstance(value, float):
        text = json.dumps(value)  # repr, with NaN / Infinity spelled out
        return text, "f", (None if value != value else value)
    return str(value), "s", None


def decode_param(text: str, vtype: str) -> ParamValue:
    """Inverse of :func:`encode_param`."""
    if vtype == "s":
        return text
    if vtype == "i":
        return int(text)
    if vtype == "f":
        return float(text)  # float() reads NaN / Infinity / -Infinity too
    if vtype == "b":
        return text == "true"
    return None


@contextlib.contextmanager
def _driver_errors(action: str) -> Iterator[None]:
    """Wrap driver exceptions in StoreError, chaining the original."""
    try:
        yield
    except MltrailError:
        raise
    except sa_exc.SQLAlchemyError as exc:
        detail = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise StoreError(f"{action} failed: {detail}") from exc


class SqlTrackingStore:
    """Runs in an SQL database. See :mod:`mltrail.store.base` for the contract.

    Args:
        uri: ``sqlite:////abs/path.db`` or ``postgresql://user@host/db``.
    """

    def __init__(self, uri: str) -> None:
        self.uri = uri
        with _driver_errors(f"opening {sa.make_url(uri).render_as_string(hide_password=True)}"):
            self._engine = create_engine(uri)
            upgrade_schema(self._engine)
        self._project_ids: dict[str, str] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_location(cls, location: StoreLocation) -> SqlTrackingStore:
        """Open the store a :class:`StoreLocation` names."""
        return cls(location.uri)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return str(self._engine.dialect.name)

    def close(self) -> None:
        self._engine.dispose()

    # -- writes ---------------------------------------------------------------------------

    def apply_batch(self, batch: Batch) -> BatchResult:
        with (
            _driver_errors(f"applying batch {batch.batch_id}"),
            write_connection(self._engine) as conn,
        ):
            if batch.source is not None and not self._advance_cursor(conn, batch):
                return BatchResult(applied=False)
            if batch.create is not None:
                self._create_run(conn, batch)
            elif not conn.execute(
                sa.select(runs.c.run_id).where(runs.c.run_id == batch.run_id)
            ).first():
                raise NotFoundError(f"run {batch.run_id!r} does not exist")
            if batch.resume_ms is not None:
                conn.execute(
                    sa.update(runs)
                    .where(runs.c.run_id == batch.run_id)
                    .values(
                        status=RunStatus.RUNNING.value, end_ms=None, heartbeat_ms=batch.resume_ms
                    )
                )
            conflicts = self._write_params(conn, batch.run_id, batch.params) if batch.params else {}
            if batch.tags:
                self._write_tags(conn, batch.run_id, batch.tags)
            if batch.metrics:
                series.append_metrics(conn, batch.run_id, batch.metrics)
            if batch.heartbeat_ms is not None:
                rc = runs.c
                conn.execute(
                    sa.update(runs)
                    .where(rc.run_id == batch.run_id)
                    .values(
                        heartbeat_ms=sa.func.coalesce(
                            sa.case(
                                (rc.heartbeat_ms > batch.heartbeat_ms, rc.heartbeat_ms),
                                else_=batch.heartbeat_ms,
                            ),
                            batch.heartbeat_ms,
                        )
                    )
                )
            if batch.status is not None:
                self._set_status(conn, batch.run_id, batch.status)
            return BatchResult(applied=True, param_conflicts=conflicts)

    def _advance_cursor(self, conn: sa.Connection, batch: Batch) -> bool:
        ic = ingest_cursors.c
        pos = conn.execute(sa.select(ic.position).where(ic.source == batch.source)).scalar()
        if pos is None:
            pos = 0
            if batch.start == 0:
                conn.execute(
                    sa.insert(ingest_cursors).values(
                        source=batch.source, run_id=batch.run_id, position=batch.end
                    )
                )
                return True
        if batch.end <= pos:
            return False
        if batch.start != pos:
            raise IntegrityError(
                f"batch {batch.batch_id} does not continue {batch.source} at offset {pos}"
            )
        conn.execute(
            sa.update(ingest_cursors).where(ic.source == batch.source).values(position=batch.end)
        )
        return True

    def _project_id(self, conn: sa.Connection, name: str, now_ms: int) -> str:
        cached = self._project_ids.get(name)
        if cached is not None:
            return cached
        pc = projects.c
        found = conn.execute(sa.select(pc.project_id).where(pc.name == name)).scalar()
        if found is None:
            found = secrets.token_hex(8)
            insert = (
                _dialect_insert(conn)
                .__call__(projects)
                .values(project_id=found, name=name, created_ms=now_ms)
            )
            conn.execute(insert.on_conflict_do_nothing(index_elements=["name"]))
            found = conn.execute(sa.select(pc.project_id).where(pc.name == name)).scalar_one()
        self._project_ids[name] = found
        return str(found)

    def _create_run(self, conn: sa.Connection, batch: Batch) -> None:
        c = batch.create
        assert c is not None
        if conn.execute(sa.select(runs.c.run_id).where(runs.c.run_id == batch.run_id)).first():
            return  # created by an earlier (sourceless) retry
        conn.execute(
            sa.insert(runs).values(
                run_id=batch.run_id,
                project_id=self._project_id(conn, c.project, c.created_ms),
                name=c.name,
                status=RunStatus.RUNNING.value,
                created_ms=c.created_ms,
                heartbeat_ms=c.created_ms,
                heartbeat_s=c.heartbeat_s,
                user_name=c.user,
                host=c.host,
                command=c.command,
                config=json.dumps(c.config, default=str),
            )
        )

    def _write_params(
        self, conn: sa.Connection, run_id: str, new: dict[str, ParamValue]
    ) -> dict[str, tuple[ParamValue, ParamValue]]:
        pc = params.c
        keys = list(new)
        existing: dict[str, ParamValue] = {}
        for i in range(0, len(keys), 500):
            rows = conn.execute(
                sa.select(pc.key, pc.value, pc.vtype).where(
                    pc.run_id == run_id, pc.key.in_(keys[i : i + 500])
                )
            )
            existing.update({r.key: decode_param(r.value, r.vtype) for r in rows})
        conflicts: dict[str, tuple[ParamValue, ParamValue]] = {}
        rows_out = []
        for key, value in new.items():
            if key in existing:
                old = existing[key]
                if encode_param(old)[:2] != encode_param(value)[:2]:
                    conflicts[key] = (old, value)
                continue
            text, vtype, num = encode_param(value)
            rows_out.append(
                {"run_id": run_id, "key": key, "value": text, "vtype": vtype, "value_num": num}
            )
        if rows_out:
            conn.execute(sa.insert(params), rows_out)
        return conflicts

    def _write_tags(self, conn: sa.Connection, run_id: str, new: dict[str, str]) -> None:
        rows = [{"run_id": run_id, "key": k, "value": v} for k, v in new.items()]
        insert = _dialect_insert(conn)(tags)
        conn.execute(
            insert.on_conflict_do_update(
                index_elements=["run_id", "key"], set_={"value": insert.excluded.value}
            ),
            rows,
        )

    def _set_status(self, conn: sa.Connection, run_id: str, change: StatusChange) -> None:
        rc = runs.c
        end: Any = change.end_ms
        if end is None:
            end = sa.func.coalesce(rc.heartbeat_ms, rc.created_ms)
        stmt = sa.update(runs).where(rc.run_id == run_id)
        if change.only_if_running:
            stmt = stmt.where(rc.status == RunStatus.RUNNING.value)
        conn.execute(stmt.values(status=change.status.value, end_ms=end))

    # -- reads ----------------------------------------------------------------------------

    def ingest_position(self, source: str) -> int:
        ic = ingest_cursors.c
        with _driver_errors("reading an ingest position"), self._engine.connect() as conn:
            pos = conn.execute(sa.select(ic.position).where(ic.source == source)).scalar()
        return int(pos or 0)

    def get_run(self, run_id: str) -> RunRecord:
        with _driver_errors(f"reading run {run_id}"), self._engine.connect() as conn:
            records = self._load_runs(conn, [run_id])
        if not records:
            raise NotFoundError(f"run {run_id!r} does not exist")
        return records[0]

    def resolve_run_id(self, prefix: str) -> str:
        if not prefix or any(ch in prefix for ch in "%_\\"):
            raise NotFoundError(f"no run id starts with {prefix!r}")
        with _driver_errors("resolving a run id"), self._engine.connect() as conn:
            found = (
                conn.execute(
                    sa.select(runs.c.run_id).where(runs.c.run_id.startswith(prefix)).limit(2)
                )
                .scalars()
                .all()
            )
        if not found:
            raise NotFoundError(f"no run id starts with {prefix!r}")
        if len(found) > 1 and prefix not in found:
            raise AmbiguousIdError(
                f"run id prefix {prefix!r} matches several runs; give more characters"
            )
        return prefix if prefix in found else str(found[0])

    def search_runs(
        self,
        project: str | None = None,
        filter: str | None = None,
        order_by: str | None = None,
        limit: int = 100,
        page_token: str | None = None,
    ) -> RunPage:
        from mltrail.store.sql.search import search_run_ids

        with _driver_errors("searching runs"), self._engine.connect() as conn:
            project_id = None
            if project is not None:
                project_id = conn.execute(
                    sa.select(projects.c.project_id).where(projects.c.name == project)
                ).scalar()
                if project_id is None:
                    return RunPage([], None)
            ids, token = search_run_ids(
                conn,
                project_id=project_id,
                filter=filter,
                order_by=order_by,
                limit=limit,
                page_token=page_token,
                now_ms=_now_ms(),
            )
            by_id = {r.run_id: r for r in self._load_runs(conn, ids)}
        return RunPage([by_id[i] for i in ids if i in by_id], token)

    def list_projects(self) -> list[Project]:
        pc, rc = projects.c, runs.c
        counts = (
            sa.select(rc.project_id, sa.func.count().label("n")).group_by(rc.project_id).subquery()
        )
        stmt = (
            sa.select(pc.project_id, pc.name, pc.created_ms, sa.func.coalesce(counts.c.n, 0))
            .outerjoin(counts, counts.c.project_id == pc.project_id)
            .order_by(pc.name)
        )
        with _driver_errors("listing projects"), self._engine.connect() as conn:
            return [Project(str(a), str(b), int(c), int(d)) for a, b, c, d in conn.execute(stmt)]

    def metric_history(self, run_id: str, key: str) -> MetricSeries:
        with (
            _driver_errors(f"reading metric {key!r} of run {run_id}"),
            self._engine.connect() as conn,
        ):
            got = series.read_series(conn, run_id, key)
            if got is None:
                if not conn.execute(
                    sa.select(runs.c.run_id).where(runs.c.run_id == run_id)
                ).first():
                    raise NotFoundError(f"run {run_id!r} does not exist")
                raise NotFoundError(f"run {run_id!r} has no metric {key!r}")
        return MetricSeries(key, *got)

    def _load_runs(self, conn: sa.Connection, ids: list[str]) -> list[RunRecord]:
        if not ids:
            return []
        rc = runs.c
        now = _now_ms()
        base = conn.execute(
            sa.select(runs, projects.c.name.label("project_name"))
            .join(projects, projects.c.project_id == rc.project_id)
            .where(rc.run_id.in_(ids))
        ).all()
        p_rows = conn.execute(sa.select(params).where(params.c.run_id.in_(ids))).all()
        t_rows = conn.execute(sa.select(tags).where(tags.c.run_id.in_(ids))).all()
        m_rows = conn.execute(
            sa.select(metric_summaries).where(metric_summaries.c.run_id.in_(ids))
        ).all()
        by_run: dict[str, dict[str, Any]] = {
            r.run_id: {"params": {}, "tags": {}, "metrics": {}} for r in base
        }
        for p in p_rows:
            by_run[p.run_id]["params"][p.key] = decode_param(p.value, p.vtype)
        for t in t_rows:
            by_run[t.run_id]["tags"][t.key] = t.value
        for m in m_rows:
            by_run[m.run_id]["metrics"][m.key] = _summary(m)
        order = {run_id: i for i, run_id in enumerate(ids)}
        records = [_record(r, by_run[r.run_id], now) for r in base]
        records.sort(key=lambda rec: order[rec.run_id])
        return records


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _nan_if_none(x: float | None) -> float:
    return float("nan") if x is None else float(x)


def _summary(m: Any) -> MetricSummary:
    return MetricSummary(
        key=m.key,
        last=_nan_if_none(m.last_value),
        last_step=int(m.last_step),
        last_timestamp_ms=int(m.last_ms),
        min=_nan_if_none(m.min_value),
        max=_nan_if_none(m.max_value),
        count=int(m.count),
    )


def _record(r: Any, extra: dict[str, Any], now_ms: int) -> RunRecord:
    status = RunStatus(r.status)
    end_ms = r.end_ms
    if (
        status is RunStatus.RUNNING
        and r.heartbeat_ms is not None
        and now_ms - r.heartbeat_ms > _CRASH_INTERVALS * r.heartbeat_s * 1000
    ):
        status, end_ms = RunStatus.CRASHED, r.heartbeat_ms
    return RunRecord(
        run_id=r.run_id,
        project=r.project_name,
        name=r.name,
        status=status,
        created_ms=int(r.created_ms),
        end_ms=None if end_ms is None else int(end_ms),
        heartbeat_ms=None if r.heartbeat_ms is None else int(r.heartbeat_ms),
        user=r.user_name,
        host=r.host,
        command=r.command,
        params=extra["params"],
        tags=extra["tags"],
        config=json.loads(r.config),
        metrics=extra["metrics"],
    )


def _dialect_insert(conn: sa.Connection) -> Any:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert
