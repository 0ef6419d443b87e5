"""The hash index: ``(path, inode, mtime_ns, size) -> digest`` in SQLite, so unchanged files
are never hashed twice.

One SQLite file (WAL, usually ``<cache>/index.sqlite``) shared by every process; lookups and
updates are batched (one query per few hundred paths, one transaction per batch). An entry is
trusted only while the file's inode, size and mtime are unchanged.

Racy entries: a file modified within the filesystem's timestamp granularity after it was
hashed could keep its mtime. As git does, an entry whose mtime is not safely older than the
moment hashing started (by :data:`RACY_NS`) is not recorded: that file is hashed again next
time, after which its entry is stable.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from mltrail.errors import StoreError
from mltrail.objects.digest import DEFAULT_ALGO

if TYPE_CHECKING:
    import os
    from collections.abc import Iterable
    from types import TracebackType

__all__ = ["RACY_NS", "HashIndex"]

RACY_NS = 20_000_000  # 20 ms: above the coarse kernel clock tick that stamps mtimes
_CHUNK = 500
# v2: keyed by (path, algo), so md5 (DVC's) and blake3 digests of one file coexist.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS hashes_v2 (
    path TEXT NOT NULL,
    algo TEXT NOT NULL,
    inode INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    size INTEGER NOT NULL,
    digest TEXT NOT NULL,
    PRIMARY KEY (path, algo)
) WITHOUT ROWID
"""
# A directory's listing stamp -> its tree digest (see build.build): a no-op status over a
# directory whose files all kept (name, inode, mtime_ns, size, mode) skips the per-file work.
_SCHEMA_SNAPSHOTS = """
CREATE TABLE IF NOT EXISTS snapshots_v1 (
    root TEXT NOT NULL,
    algo TEXT NOT NULL,
    stamp TEXT NOT NULL,
    digest TEXT NOT NULL,
    size INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (root, algo)
) WITHOUT ROWID
"""
# Trees whose objects were all seen in the cache: per shard directory, its mtime when it was
# listed (0: too recent to trust) and the tree's object names in it (see
# cache.Cache.is_complete). Only the _COMPLETE_KEEP most recently checked trees are kept.
_SCHEMA_COMPLETE = """
CREATE TABLE IF NOT EXISTS complete_v2 (
    digest TEXT NOT NULL,
    shard TEXT NOT NULL,
    mtime_ns INTEGER NOT NULL,
    names TEXT NOT NULL,
    PRIMARY KEY (digest, shard)
) WITHOUT ROWID
"""
_SCHEMA_COMPLETE_TREES = """
CREATE TABLE IF NOT EXISTS complete_trees_v2 (
    digest TEXT PRIMARY KEY,
    checked_ns INTEGER NOT NULL
) WITHOUT ROWID
"""
_COMPLETE_KEEP = 32


def _ino(st: os.stat_result) -> int:
    ino = st.st_ino
    return ino - (1 << 64) if ino >= (1 << 63) else ino  # SQLite integers are signed 64-bit


class HashIndex:
    """A persistent map from a file's identity to its digest; thread-safe."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        """Open (creating) the index at ``path`` (an SQLite file)."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._conn = sqlite3.connect(
                self.path, timeout=30, check_same_thread=False, isolation_level=None
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute(_SCHEMA)
            self._conn.execute(_SCHEMA_SNAPSHOTS)
            self._conn.execute(_SCHEMA_COMPLETE)
            self._conn.execute(_SCHEMA_COMPLETE_TREES)
        except sqlite3.Error as exc:
            raise StoreError(f"hash index {self.path}: cannot open ({exc})") from exc

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> HashIndex:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT count(*) FROM hashes_v2").fetchone()[0])

    def get(self, path: str, st: os.stat_result, algo: str = DEFAULT_ALGO) -> str | None:
        """The recorded ``algo`` digest of ``path`` if the file is unchanged since."""
        return self.get_many([(path, st)], algo).get(path)

    def get_many(
        self, items: Iterable[tuple[str, os.stat_result]], algo: str = DEFAULT_ALGO
    ) -> dict[str, str]:
        """``algo`` digests of the unchanged files among ``items`` (path -> digest)."""
        wanted = {p: (_ino(st), st.st_mtime_ns, st.st_size) for p, st in items}
        out: dict[str, str] = {}
        keys = list(wanted)
        try:
            with self._lock:
                batches = []
                for i in range(0, len(keys), _CHUNK):
                    chunk = keys[i : i + _CHUNK]
                    batches.append(
                        self._conn.execute(
                            "SELECT path, inode, mtime_ns, size, digest FROM hashes_v2 "
                            f"WHERE algo = ? AND path IN ({','.join('?' * len(chunk))})",
                            [algo, *chunk],
                        ).fetchall()
                    )
                for rows in batches:
                    for path, ino, mtime, size, digest in rows:
                        if wanted.get(path) == (ino, mtime, size):
                            out[path] = digest
        except sqlite3.Error as exc:
            raise StoreError(f"hash index {self.path}: read failed ({exc})") from exc
        return out

    def put(self, path: str, st: os.stat_result, digest: str) -> None:
        """Record one file's digest."""
        self.put_many([(path, st, digest)])

    def put_many(
        self,
        items: Iterable[tuple[str, os.stat_result, str]],
        *,
        hashed_at_ns: int | None = None,
    ) -> int:
        """Record digests in one transaction; return how many were recorded.

        ``hashed_at_ns`` (``time.time_ns()`` taken before the files were read) skips racy
        entries: files whose mtime is not at least :data:`RACY_NS` older than that.
        """
        limit = None if hashed_at_ns is None else hashed_at_ns - RACY_NS
        rows = [
            (p, d.partition(":")[0], _ino(st), st.st_mtime_ns, st.st_size, d)
            for p, st, d in items
            if limit is None or st.st_mtime_ns < limit
        ]
        if not rows:
            return 0
        try:
            with self._lock:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    self._conn.executemany(
                        "INSERT OR REPLACE INTO hashes_v2 "
                        "(path, algo, inode, mtime_ns, size, digest) VALUES (?, ?, ?, ?, ?, ?)",
                        rows,
                    )
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"hash index {self.path}: write failed ({exc})") from exc
        return len(rows)

    # -- directory snapshots and complete trees -------------------------------------------

    def get_snapshot(self, root: str, algo: str) -> tuple[str, str, int, int] | None:
        """``(stamp, digest, size, count)`` recorded for the directory ``root``, if any."""
        try:
            with self._lock:
                row = self._conn.execute(
                    "SELECT stamp, digest, size, count FROM snapshots_v1 "
                    "WHERE root = ? AND algo = ?",
                    (root, algo),
                ).fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"hash index {self.path}: read failed ({exc})") from exc
        return None if row is None else (str(row[0]), str(row[1]), int(row[2]), int(row[3]))

    def put_snapshot(
        self, root: str, algo: str, stamp: str, digest: str, size: int, count: int
    ) -> None:
        """Record that the directory ``root`` listed as ``stamp`` hashes to ``digest``."""
        self._write(
            "INSERT OR REPLACE INTO snapshots_v1 (root, algo, stamp, digest, size, count) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (root, algo, stamp, digest, size, count),
        )

    def get_complete(self, digest: str) -> list[tuple[str, int, str]] | None:
        """``[(shard, mtime_ns, names)]`` recorded when every object of the tree ``digest``
        was present (``names``: its object names in that shard, one per line)."""
        try:
            with self._lock:
                known = self._conn.execute(
                    "SELECT 1 FROM complete_trees_v2 WHERE digest = ?", (digest,)
                ).fetchone()
                if known is None:
                    return None
                rows = self._conn.execute(
                    "SELECT shard, mtime_ns, names FROM complete_v2 WHERE digest = ?", (digest,)
                ).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"hash index {self.path}: read failed ({exc})") from exc
        return [(str(a), int(b), str(c)) for a, b, c in rows]

    def put_complete(
        self, digest: str, rows: Iterable[tuple[str, int, str]], *, replace: bool = True
    ) -> None:
        """Record the tree ``digest`` complete with its ``(shard, mtime_ns, names)`` rows
        (``replace=False`` only updates the given shards' rows); keeps the most recent
        trees only."""
        now = time.time_ns()
        try:
            with self._lock:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    if replace:
                        self._conn.execute("DELETE FROM complete_v2 WHERE digest = ?", (digest,))
                    self._conn.executemany(
                        "INSERT OR REPLACE INTO complete_v2 (digest, shard, mtime_ns, names) "
                        "VALUES (?, ?, ?, ?)",
                        [(digest, *row) for row in rows],
                    )
                    self._conn.execute(
                        "INSERT OR REPLACE INTO complete_trees_v2 (digest, checked_ns) "
                        "VALUES (?, ?)",
                        (digest, now),
                    )
                    stale = self._conn.execute(
                        "SELECT digest FROM complete_trees_v2 ORDER BY checked_ns DESC "
                        "LIMIT -1 OFFSET ?",
                        (_COMPLETE_KEEP,),
                    ).fetchall()
                    for (old,) in stale:
                        self._conn.execute("DELETE FROM complete_v2 WHERE digest = ?", (old,))
                        self._conn.execute("DELETE FROM complete_trees_v2 WHERE digest = ?", (old,))
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"hash index {self.path}: write failed ({exc})") from exc

    def _write(self, sql: str, params: tuple[object, ...]) -> None:
        try:
            with self._lock:
                self._conn.execute(sql, params)
        except sqlite3.Error as exc:
            raise StoreError(f"hash index {self.path}: write failed ({exc})") from exc

    # The names data/ asked for (same functions).
    lookup_many = get_many
    store_many = put_many

    def remove_many(self, paths: Iterable[str]) -> None:
        """Forget these paths."""
        keys = list(paths)
        try:
            with self._lock:
                self._conn.execute("BEGIN IMMEDIATE")
                for i in range(0, len(keys), _CHUNK):
                    chunk = keys[i : i + _CHUNK]
                    self._conn.execute(
                        f"DELETE FROM hashes_v2 WHERE path IN ({','.join('?' * len(chunk))})", chunk
                    )
                self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"hash index {self.path}: write failed ({exc})") from exc
