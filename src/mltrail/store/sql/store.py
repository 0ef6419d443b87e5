"""``SqlTrackingStore``: the TrackingStore on SQLAlchemy Core (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import os
import threading
import time
from collections import ChainMap
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from mltrail._validation import normalize_key
from mltrail.entities import Project, RunRecord
from mltrail.errors import (
    AmbiguousIdError,
    NotFoundError,
    StoreError,
)
from mltrail.store.base import ConsoleLine, MetricSeries, RunPage
from mltrail.store.buckets import downsample
from mltrail.store.sql import ingest, series
from mltrail.store.sql.append import OpenChunks
from mltrail.store.sql.audit import checkpoint_every
from mltrail.store.sql.driver import driver_errors
from mltrail.store.sql.engine import create_engine, upgrade_schema, write_connection
from mltrail.store.sql.records import CRASH_INTERVALS
from mltrail.store.sql.schema import (
    blobs,
    console_lines,
    ingest_cursors,
    projects,
    run_state,
    runs,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mltrail.audit.checkpoints import Checkpoint
    from mltrail.audit.entries import Entry
    from mltrail.audit.verify import LiveState
    from mltrail.store.batch import Batch, BatchResult
    from mltrail.store.registry import StoreLocation
    from mltrail.store.sql.artifacts import SqlArtifactStore
    from mltrail.store.sql.audit_reads import SqlAuditLog
    from mltrail.store.sql.edits import SqlRunEdits
    from mltrail.store.sql.registry import SqlModelRegistry
    from mltrail.store.sql.run_files import SqlRunFiles
    from mltrail.store.sql.scoped import SqlScopedReads
    from mltrail.store.sql.tokens import SqlTokenStore
    from mltrail.store.sql.ui_views import SqlUiViews

__all__ = ["SqlTrackingStore"]


class SqlTrackingStore:
    """Runs in an SQL database. See :mod:`mltrail.store.base` for the contract.

    Args:
        uri: ``sqlite:////abs/path.db`` or ``postgresql://user@host/db``.
        migrate: upgrade an older schema on open. Default: yes for SQLite (a laptop's own
            file), no for PostgreSQL (a team's database is upgraded with ``mltrail db
            upgrade``); ``mltrail server`` passes False. An empty database always gets the
            current schema.

    Raises:
        SchemaVersionError: the schema is older (and not migrated) or newer than this mltrail.
    """

    def __init__(self, uri: str, *, migrate: bool | None = None, _audit: bool = True) -> None:
        self.uri = uri
        with driver_errors(f"opening {sa.make_url(uri).render_as_string(hide_password=True)}"):
            self._engine = create_engine(uri)
            if migrate is None:
                migrate = self._engine.dialect.name == "sqlite"
            try:
                upgrade_schema(self._engine, migrate=migrate)
            except BaseException:
                self._engine.dispose()
                raise
        self._project_ids: dict[str, str] = {}
        self._lock = threading.Lock()
        self._open_chunks = OpenChunks()
        # the audit trail's checkpoint interval, read once (settings() is too slow per batch);
        # ``_audit=False`` (private: benchmarks' "before" figure) writes no entries
        self._audit_every: int | None = checkpoint_every() if _audit else None

    @classmethod
    def from_location(
        cls, location: StoreLocation, *, migrate: bool | None = None
    ) -> SqlTrackingStore:
        """Open the store a :class:`StoreLocation` names (``migrate``: see the class)."""
        return cls(location.uri, migrate=migrate)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return str(self._engine.dialect.name)

    def close(self) -> None:
        self._engine.dispose()

    def sync_log(self) -> None:
        """Put every committed transaction on stable storage (see
        :class:`~mltrail.store.optional.SyncsLog`): an SQLite database's write-ahead log is
        fsynced; PostgreSQL commits are durable already."""
        if self.dialect != "sqlite":
            return
        db = sa.make_url(self.uri).database or ""
        for path in (f"{db}-wal", db):
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise StoreError(f"cannot sync {path}: {exc.strerror}") from exc
            try:
                os.fsync(fd)
            except OSError as exc:
                raise StoreError(f"cannot sync {path}: {exc.strerror}") from exc
            finally:
                os.close(fd)
            return  # the log holds every commit not yet checkpointed (and synced) into db

    def artifacts(self) -> SqlArtifactStore:
        """Artifact versions, aliases and lineage in this store (shares its engine)."""
        from mltrail.store.sql.artifacts import SqlArtifactStore

        return SqlArtifactStore(self._engine)

    def model_registry(self) -> SqlModelRegistry:
        """Registered models, versions, aliases, cards and history (shares its engine)."""
        from mltrail.store.sql.registry import SqlModelRegistry

        return SqlModelRegistry(self._engine)

    def ui_views(self) -> SqlUiViews:
        """The web UI's saved workspace views (shares its engine)."""
        from mltrail.store.sql.ui_views import SqlUiViews

        return SqlUiViews(self._engine)

    def tokens(self) -> SqlTokenStore:
        """The API tokens kept in this store's database (used by ``mltrail server``)."""
        from mltrail.store.sql.tokens import SqlTokenStore

        return SqlTokenStore(self._engine)

    def scoped_reads(self) -> SqlScopedReads:
        """The queries behind project-scoped reads (run id prefixes, blobs, objects)."""
        from mltrail.store.sql.scoped import SqlScopedReads

        return SqlScopedReads(self._engine)

    def project_keys(self, project: str, limit: int) -> dict[str, list[str]]:
        """The distinct param, metric and tag keys of ``project``'s runs (see HasProjectKeys)."""
        from mltrail.store.sql.keys import project_keys

        return project_keys(self._engine, project, limit)

    def run_edits(self) -> SqlRunEdits:
        """Empty projects and tag deletions (what MLflow's API needs beyond batches)."""
        from mltrail.store.sql.edits import SqlRunEdits

        return SqlRunEdits(self._engine)

    def run_files(self) -> SqlRunFiles:
        """The index of run files (logical path -> content digest) in this database."""
        from mltrail.store.sql.run_files import SqlRunFiles

        return SqlRunFiles(self._engine)

    def audit_log(self) -> SqlAuditLog:
        """The audit trail of this database (docs/provenance.md)."""
        from mltrail.store.sql.audit_reads import SqlAuditLog

        return SqlAuditLog(self._engine)

    # the AuditLog protocol (mltrail.audit.base), so `audit` functions take the store itself
    def audit_size(self) -> int:
        return self.audit_log().audit_size()

    def audit_entries(
        self, start: int = 1, stop: int | None = None, subject: str | None = None
    ) -> Iterator[Entry]:
        return self.audit_log().audit_entries(start, stop, subject)

    def audit_checkpoints(self) -> list[Checkpoint]:
        return self.audit_log().audit_checkpoints()

    def audit_checkpoint(self, reason: str = "manual") -> Checkpoint | None:
        return self.audit_log().audit_checkpoint(reason)

    def audit_live_state(self) -> LiveState:
        return self.audit_log().audit_live_state()

    # -- writes ---------------------------------------------------------------------------

    def apply_batch(self, batch: Batch) -> BatchResult:
        # project ids learnt in this transaction are cached only once it commits; open
        # chunks kept in memory are forgotten if it does not (memory would be ahead of it)
        learnt: dict[str, str] = {}
        try:
            with (
                driver_errors(f"applying batch {batch.batch_id}"),
                write_connection(self._engine) as conn,
            ):
                result = ingest.apply_batch(
                    conn,
                    batch,
                    ChainMap(learnt, self._project_ids),
                    self._open_chunks,
                    self._audit_every,
                )
                if result.applied and batch.blobs:
                    from mltrail.store.sql.scoped import link_blobs

                    link_blobs(conn, batch.run_id, batch.blobs)
        except BaseException:
            self._open_chunks.forget(batch.run_id)
            raise
        self._project_ids.update(learnt)
        return result

    # -- reads ----------------------------------------------------------------------------

    def ingest_position(self, source: str) -> int:
        ic = ingest_cursors.c
        with driver_errors("reading an ingest position"), self._engine.connect() as conn:
            pos = conn.execute(sa.select(ic.position).where(ic.source == source)).scalar()
        return int(pos or 0)

    def get_run(self, run_id: str) -> RunRecord:
        with driver_errors(f"reading run {run_id}"), self._engine.connect() as conn:
            records = self._load_runs(conn, [run_id])
        if not records:
            raise NotFoundError(f"run {run_id!r} does not exist")
        return records[0]

    def resolve_run_id(self, prefix: str) -> str:
        if not prefix or any(ch in prefix for ch in "%_\\"):
            raise NotFoundError(f"no run id starts with {prefix!r}")
        with driver_errors("resolving a run id"), self._engine.connect() as conn:
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

        with driver_errors("searching runs"), self._engine.connect() as conn:
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
            return RunPage(self._load_runs(conn, ids), token)

    def project_exists(self, name: str) -> bool:
        stmt = sa.select(projects.c.project_id).where(projects.c.name == name)
        with driver_errors("looking up a project"), self._engine.connect() as conn:
            return conn.execute(stmt).first() is not None

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
        with driver_errors("listing projects"), self._engine.connect() as conn:
            return [Project(str(a), str(b), int(c), int(d)) for a, b, c, d in conn.execute(stmt)]

    def metric_history(self, run_id: str, key: str) -> MetricSeries:
        key = normalize_key(key)  # stored keys are NFC: find one typed in NFD too
        with (
            driver_errors(f"reading metric {key!r} of run {run_id}"),
            self._engine.connect() as conn,
        ):
            got = series.read_series(conn, run_id, key)
            if got is None:
                if not conn.execute(
                    sa.select(runs.c.run_id).where(runs.c.run_id == run_id)
                ).first():
                    raise NotFoundError(f"run {run_id!r} does not exist")
                raise NotFoundError(f"run {run_id!r} has no metric {key!r}")
        return MetricSeries(*got, key=key)

    def metric_buckets(
        self,
        run_id: str,
        key: str,
        points: int,
        step_min: int | None = None,
        step_max: int | None = None,
    ) -> dict[str, Any]:
        """A chart of the series: at most ``points`` min/max buckets over the step range,
        read from chunk sketches (see :mod:`mltrail.store.sql.sketch`); HasMetricBuckets."""
        from mltrail.store.sql.sketch import chart

        key = normalize_key(key)
        with (
            driver_errors(f"reading metric {key!r} of run {run_id}"),
            self._engine.connect() as conn,
        ):
            body = chart(conn, run_id, key, points, step_min, step_max)
        if body is not None:
            return body
        # no sketches (chunks written before they existed): bucket the whole series
        got = self.metric_history(run_id, key)
        return downsample(key, got.steps, got.timestamps, got.values, points, step_min, step_max)

    def get_state(self, run_id: str) -> dict[str, dict[str, Any]]:
        sc = run_state.c
        with driver_errors(f"reading the state of run {run_id}"), self._engine.connect() as conn:
            self._require_run(conn, run_id)
            rows = conn.execute(sa.select(sc.kind, sc.data).where(sc.run_id == run_id))
            return {r.kind: json.loads(r.data) for r in rows}

    def get_blob(self, digest: str) -> bytes:
        with driver_errors(f"reading blob {digest}"), self._engine.connect() as conn:
            data = conn.execute(sa.select(blobs.c.data).where(blobs.c.digest == digest)).scalar()
        if data is None:
            raise NotFoundError(f"no blob {digest!r}")
        return bytes(data)

    def read_console(self, run_id: str, tail: int | None = None) -> list[ConsoleLine]:
        cc = console_lines.c
        stmt = sa.select(cc.id, cc.ts_ms, cc.stream, cc.text).where(cc.run_id == run_id)
        if tail is not None:
            stmt = stmt.order_by(cc.id.desc()).limit(max(0, tail))
        else:
            stmt = stmt.order_by(cc.id)
        with driver_errors(f"reading the console of run {run_id}"), self._engine.connect() as conn:
            self._require_run(conn, run_id)
            rows = list(conn.execute(stmt).all())
        if tail is not None:
            rows.reverse()
        return [ConsoleLine(int(r.ts_ms), r.stream, r.text) for r in rows]

    def _require_run(self, conn: sa.Connection, run_id: str) -> None:
        if conn.execute(sa.select(runs.c.run_id).where(runs.c.run_id == run_id)).first() is None:
            raise NotFoundError(f"run {run_id!r} does not exist")

    def _load_runs(self, conn: sa.Connection, ids: list[str]) -> list[RunRecord]:
        from mltrail.store.sql.runload import load_runs

        return load_runs(conn, ids, _now_ms(), CRASH_INTERVALS)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
