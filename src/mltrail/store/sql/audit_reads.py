"""The audit log's reads: entries, checkpoints, the live database in the trail's terms, and
the baseline entry of a store that held rows before its trail began."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from mltrail.audit.checkpoints import Checkpoint
from mltrail.audit.entries import Entry, metric_digest
from mltrail.audit.verify import LiveState
from mltrail.errors import StoreError
from mltrail.store.sql.audit import Change as _Change
from mltrail.store.sql.audit import append, checkpoint
from mltrail.store.sql.audit_rows import AUDITED, columns, live_rows, live_table
from mltrail.store.sql.driver import driver_errors
from mltrail.store.sql.engine import write_connection
from mltrail.store.sql.schema import audit_checkpoints, audit_log, metric_chunks

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["SqlAuditLog"]

_al = audit_log.c
_ac = audit_checkpoints.c


_ENTRY_SQL = (
    "SELECT seq, ts_ms, actor, action, subject, payload, payload_digest, prev_hash, hash, "
    "blobs FROM audit_log WHERE seq >= {mark}"
)


def _entry(r: Any) -> Entry:
    blobs = r[9]
    return Entry(
        int(r[0]),
        int(r[1]),
        r[2],
        r[3],
        r[4],
        r[5],
        r[6],
        r[7],
        r[8],
        () if blobs == "[]" or not blobs else tuple(json.loads(blobs)),
    )


class SqlAuditLog:
    """The audit trail of an SQL store (implements :class:`mltrail.audit.base.AuditLog`)."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def audit_size(self) -> int:
        with driver_errors("reading the audit log"), self._engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.max(_al.seq))).scalar() or 0)

    def audit_entries(
        self, start: int = 1, stop: int | None = None, subject: str | None = None
    ) -> Iterator[Entry]:
        mark = "?" if self._engine.dialect.paramstyle == "qmark" else "%s"
        sql = _ENTRY_SQL.format(mark=mark)
        args: list[Any] = [start]
        if stop is not None:
            sql += f" AND seq <= {mark}"
            args.append(stop)
        if subject is not None:
            sql += f" AND subject = {mark}"
            args.append(subject)
        sql += " ORDER BY seq"
        # the driver's cursor: verify reads 10^6 entries, SQLAlchemy rows cost too much
        with driver_errors("reading the audit log"), self._engine.connect() as conn:
            dbapi = conn.connection.dbapi_connection
            assert dbapi is not None
            cur = dbapi.cursor()
            try:
                cur.execute(sql, args)
                while True:
                    batch = cur.fetchmany(20_000)
                    if not batch:
                        break
                    for r in batch:
                        yield _entry(r)
            except conn.dialect.loaded_dbapi.Error as exc:
                raise StoreError(f"reading the audit log failed: {exc}") from exc
            finally:
                cur.close()

    def audit_subjects(self, text: str) -> list[str]:
        """The subjects that ``text`` names: exact, or ``<kind>:text``, or a model or
        artifact ``project/name`` ending in ``/text``."""
        stmt = (
            sa.select(_al.subject)
            .distinct()
            .where(
                sa.or_(
                    _al.subject == text,
                    _al.subject.like("%:" + _escape(text), escape="\\"),
                    _al.subject.like("%/" + _escape(text), escape="\\"),
                )
            )
        )
        with driver_errors("reading the audit log"), self._engine.connect() as conn:
            return sorted(str(s) for s in conn.execute(stmt).scalars())

    def audit_checkpoints(self) -> list[Checkpoint]:
        stmt = sa.select(audit_checkpoints).order_by(_ac.tree_size)
        with driver_errors("reading audit checkpoints"), self._engine.connect() as conn:
            return [
                Checkpoint(
                    int(r.tree_size),
                    r.root,
                    int(r.timestamp_ms),
                    r.key_id,
                    r.signature,
                    r.head_hash,
                    r.reason,
                )
                for r in conn.execute(stmt)
            ]

    def audit_checkpoint(
        self, reason: str = "manual", *, key_path: Any = None, offbox: str | None = None
    ) -> Checkpoint | None:
        with driver_errors("writing an audit checkpoint"):
            return checkpoint(self._engine, reason, key_path=key_path, offbox=offbox)

    def audit_live_state(self) -> LiveState:
        state = LiveState()
        with driver_errors("reading the database for the audit"), self._engine.connect() as conn:
            for name in AUDITED:
                state.rows[name] = dict(live_rows(conn, name))
                state.cols[name] = columns(name)
        at = state.cols["blobs"].index("data")
        for (name, *_), row in state.rows["blobs"].items():
            if str(name).startswith("sha256:"):
                state.blobs[str(name)] = row[at]
        state.series = self._series()
        return state

    def _series(self) -> Iterator[tuple[tuple[str, str], tuple[bytes, bytes, bytes]]]:
        mc = metric_chunks.c
        stmt = sa.select(mc.run_id, mc.key, mc.steps, mc.timestamps, mc.vals).order_by(
            mc.run_id, mc.key, mc.seq
        )
        with driver_errors("reading metric chunks"), self._engine.connect() as conn:
            result = conn.execute(stmt, execution_options={"yield_per": 500})
            current: tuple[str, str] | None = None
            parts: list[tuple[bytes, bytes, bytes]] = []
            for r in result:
                sk = (str(r.run_id), str(r.key))
                if sk != current:
                    if current is not None:
                        yield current, _join(parts)
                    current, parts = sk, []
                parts.append((bytes(r.steps), bytes(r.timestamps), bytes(r.vals)))
            if current is not None:
                yield current, _join(parts)

    def audit_baseline(self) -> int:
        """Record every row and series already in the database in one ``audit.baseline``
        entry when the log is empty (a store older than its trail); its sequence number, 0
        when the log was not empty or the database holds nothing."""
        with driver_errors("recording the audit baseline"), write_connection(self._engine) as conn:
            if conn.execute(sa.select(_al.seq).limit(1)).first() is not None:
                return 0
            rows: dict[str, dict[str, Any]] = {}
            for name in AUDITED:
                got = live_table(conn, name)
                if got["rows"]:
                    rows[name] = got
            metrics = []
            for (run_id, key), (s, t, v) in self._series_in(conn):
                record = {"run": run_id, "keys": [[key, len(s) // 8]]}
                metrics.append({**record, "digest": metric_digest([(s, t, v)])})
            if not rows and not metrics:
                return 0
            spec = rows.get("blobs", {"cols": [], "rows": []})
            at = spec["cols"].index("digest") if spec["rows"] else 0
            blobs = tuple(sorted(str(r[at]) for r in spec["rows"]))
            payload = {"rows": rows, "metrics": metrics}
            return append(conn, [_Change("audit.baseline", "store", payload, blobs)])

    def _series_in(
        self, conn: sa.Connection
    ) -> Iterator[tuple[tuple[str, str], tuple[bytes, bytes, bytes]]]:
        mc = metric_chunks.c
        stmt = sa.select(mc.run_id, mc.key, mc.steps, mc.timestamps, mc.vals).order_by(
            mc.run_id, mc.key, mc.seq
        )
        grouped: dict[tuple[str, str], list[tuple[bytes, bytes, bytes]]] = {}
        for r in conn.execute(stmt):
            grouped.setdefault((str(r.run_id), str(r.key)), []).append(
                (bytes(r.steps), bytes(r.timestamps), bytes(r.vals))
            )
        for sk, parts in grouped.items():
            yield sk, _join(parts)


def _join(parts: list[tuple[bytes, bytes, bytes]]) -> tuple[bytes, bytes, bytes]:
    if len(parts) == 1:
        return parts[0]
    return (
        b"".join(p[0] for p in parts),
        b"".join(p[1] for p in parts),
        b"".join(p[2] for p in parts),
    )


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
