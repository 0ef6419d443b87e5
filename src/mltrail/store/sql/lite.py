"""Reads of an embedded SQLite store with the standard library alone: the CLI's fast path.

``mltrail runs list`` on a laptop spends most of its time importing SQLAlchemy (and NumPy,
for spool recovery), not reading. For the plain listing (a project or all, newest first, no
filter) this module answers with :mod:`sqlite3` and the same queries as
:mod:`mltrail.store.sql.search` and :mod:`mltrail.store.sql.runload` would run, producing the
same :class:`~mltrail.entities.RunRecord` objects, so the output is identical.

It only reads, and only a store it fully understands: :meth:`LiteReader.open` returns None
(the caller takes the full path, which migrates, recovers and reports errors in its words)
when the file is missing, is at a schema revision not in :data:`READABLE_REVISIONS`, or
cannot be opened read-only. The database is opened ``mode=ro``: nothing is ever created or
changed here.
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import TYPE_CHECKING, Any

from mltrail.errors import AmbiguousIdError, NotFoundError
from mltrail.store.base import ConsoleLine
from mltrail.store.sql.records import build_records

if TYPE_CHECKING:
    from pathlib import Path

    from mltrail.entities import RunRecord

__all__ = ["LiteReader"]

#: the schema revisions whose tables these queries read as written (the newest must be
#: schema.SCHEMA_REVISION: a test checks it; schema.py imports SQLAlchemy, this module
#: must not). A migration that changes runs, projects, params, tags, metric_summaries,
#: run_state, console_lines, run_inputs or artifact_versions starts a new list.
READABLE_REVISIONS = ("0009", "0010")
_IN_CHUNK = 500  # ids per IN (...) query: below SQLite's variable limit


class LiteReader:
    """Read-only queries on one SQLite store file (see the module docstring)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    @classmethod
    def open(cls, db: Path) -> LiteReader | None:
        """A reader of ``db``, or None when the full path must answer instead."""
        if not db.is_file():
            return None
        try:
            conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=5.0)
        except sqlite3.Error:
            return None
        try:
            row = conn.execute("SELECT version_num FROM mltrail_alembic_version").fetchone()
        except sqlite3.Error:
            conn.close()
            return None
        if row is None or row[0] not in READABLE_REVISIONS:
            conn.close()
            return None
        return cls(conn)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> LiteReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def newest_runs(self, project: str | None, limit: int) -> list[RunRecord]:
        """Up to ``limit`` runs (of ``project``, or all), newest first (ties: run id)."""
        sql = "SELECT run_id FROM runs"
        args: list[Any] = []
        if project is not None:
            found = self._conn.execute(
                "SELECT project_id FROM projects WHERE name = ?", (project,)
            ).fetchone()
            if found is None:
                return []
            sql += " WHERE project_id = ?"
            args.append(found[0])
        sql += " ORDER BY created_ms DESC, run_id DESC LIMIT ?"
        args.append(limit)
        ids = [str(r[0]) for r in self._conn.execute(sql, args)]
        return self.load(ids)

    def resolve_run_id(self, prefix: str) -> str:
        """The run id ``prefix`` names (as :meth:`TrackingStore.resolve_run_id`).

        Raises:
            NotFoundError: no run id starts with it.
            AmbiguousIdError: several do, and none is exactly ``prefix``.
        """
        if not prefix or any(ch in prefix for ch in "%_\\"):
            raise NotFoundError(f"no run id starts with {prefix!r}")
        # run ids are lowercase ASCII: SQLite's LIKE (the full path) ignores ASCII case, and a
        # range on the primary key finds the same ids without a scan
        low = prefix.lower()
        found = [
            str(r[0])
            for r in self._conn.execute(
                "SELECT run_id FROM runs WHERE run_id >= ? AND run_id < ? ORDER BY run_id LIMIT 2",
                (low, low + "\U0010ffff"),
            )
        ]
        if not found:
            raise NotFoundError(f"no run id starts with {prefix!r}")
        if len(found) > 1 and prefix not in found:
            raise AmbiguousIdError(
                f"run id prefix {prefix!r} matches several runs; give more characters"
            )
        return prefix if prefix in found else found[0]

    def state(self, run_id: str) -> dict[str, dict[str, Any]]:
        """The run's captured state, by kind."""
        rows = self._conn.execute("SELECT kind, data FROM run_state WHERE run_id = ?", (run_id,))
        return {kind: json.loads(data) for kind, data in rows}

    def console_tail(self, run_id: str, tail: int) -> list[ConsoleLine]:
        """The last ``tail`` console lines of the run, oldest first."""
        rows = self._conn.execute(
            "SELECT ts_ms, stream, text FROM console_lines WHERE run_id = ?"
            " ORDER BY id DESC LIMIT ?",
            (run_id, max(0, tail)),
        ).fetchall()
        rows.reverse()
        return [ConsoleLine(int(ts), stream, text) for ts, stream, text in rows]

    def tagged_values(self, run_id: str, link_tag: str, value_tag: str) -> list[str]:
        """The ``value_tag`` of the runs of ``run_id``'s project whose ``link_tag`` is
        ``run_id`` (a reproduction's verdict names the run it reproduced that way)."""
        rows = self._conn.execute(
            "SELECT v.value FROM tags AS l"
            " JOIN runs AS r ON r.run_id = l.run_id"
            " JOIN runs AS o ON o.run_id = ? AND o.project_id = r.project_id"
            " JOIN tags AS v ON v.run_id = l.run_id AND v.key = ?"
            " WHERE l.key = ? AND l.value = ? ORDER BY r.created_ms DESC, r.run_id DESC",
            (run_id, value_tag, link_tag, run_id),
        )
        return [str(r[0]) for r in rows if r[0]]

    def has_artifacts(self, run_id: str) -> bool:
        """Whether the run used or produced any artifact version."""
        conn = self._conn
        return any(
            conn.execute(sql, (run_id,)).fetchone() is not None
            for sql in (
                "SELECT 1 FROM run_inputs WHERE run_id = ? LIMIT 1",
                "SELECT 1 FROM artifact_versions WHERE run_id = ? LIMIT 1",
            )
        )

    def load(self, ids: list[str]) -> list[RunRecord]:
        """The records of ``ids``, in that order (as ``runload.load_runs`` builds them)."""
        out: dict[str, RunRecord] = {}
        for i in range(0, len(ids), _IN_CHUNK):
            out.update(self._load_chunk(ids[i : i + _IN_CHUNK]))
        return [out[i] for i in ids if i in out]

    def _load_chunk(self, ids: list[str]) -> dict[str, RunRecord]:
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        conn = self._conn
        base = conn.execute(
            "SELECT r.run_id, p.name, r.name, r.status, r.created_ms, r.end_ms, r.heartbeat_ms,"
            " r.heartbeat_s, r.user_name, r.host, r.command, r.config FROM runs r"
            f" JOIN projects p ON p.project_id = r.project_id WHERE r.run_id IN ({marks})",
            ids,
        ).fetchall()
        params = conn.execute(
            f"SELECT run_id, key, value, vtype FROM params WHERE run_id IN ({marks})", ids
        )
        tags = conn.execute(f"SELECT run_id, key, value FROM tags WHERE run_id IN ({marks})", ids)
        summaries = conn.execute(
            "SELECT run_id, key, last_value, last_step, last_ms, min_value, max_value, count"
            f" FROM metric_summaries WHERE run_id IN ({marks})",
            ids,
        )
        return build_records(base, params, tags, summaries, time.time_ns() // 1_000_000)
