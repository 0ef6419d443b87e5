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
                for i in range(0, len(keys), _CHUNK):
                    chunk = keys[i : i + _CHUNK]
                    rows = self._conn.execute(
                        "SELECT path, inode, mtime_ns, size, digest FROM hashes_v2 "
                        f"WHERE algo = ? AND path IN ({','.join('?' * len(chunk))})",
                        [algo, *chunk],
                    ).fetchall()
                    for path, ino, mtime, size, digest in rows:
                        if wanted[path] == (ino, mtime, size):
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
