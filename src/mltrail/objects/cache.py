"""The local cache: a :class:`~mltrail.objects.local.LocalObjectStore` plus the link modes
that put its objects to use.

Link modes, tried in order by ``"auto"``: ``reflink`` (a copy-on-write clone, ``ioctl
FICLONE``: btrfs, xfs, bcachefs, ...), ``hardlink`` (same filesystem), ``copy``. A mode the
filesystem refuses (EXDEV, EOPNOTSUPP, EPERM, ...) falls through to the next one and is not
tried again by this cache instance.

A hardlinked file *is* the cache object: it is made read-only (``0o444``, ``0o555`` for
executables), so an edit in the workspace fails instead of corrupting the cache (dvc #9641);
to edit such a file, replace it (``cp f f.tmp && mv f.tmp f``) or check out with ``copy``.
Reflinks and copies are independent files and stay writable. Every read of an object for
checkout or transfer verifies its digest, so even a forced edit (``chmod +w``) is caught.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from mltrail.errors import InvalidArgumentError, NotFoundError
from mltrail.objects._fs import LINK_ERRNOS, reflink, temp_name
from mltrail.objects.digest import TREE_SUFFIX, parse_digest
from mltrail.objects.layout import VALID_DIGEST
from mltrail.objects.local import LocalObjectStore
from mltrail.objects.verify import SourceChangedError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from mltrail.objects.index import HashIndex
    from mltrail.objects.writer import ObjectWriter

__all__ = ["LINK_MODES", "Cache"]

LINK_MODES = ("reflink", "hardlink", "copy")
INDEX_NAME = "index.sqlite"


class Cache(LocalObjectStore):
    """A local object cache with link modes and its own hash index (``index.sqlite``)."""

    def __init__(self, root: str | os.PathLike[str], *, link_mode: str = "auto") -> None:
        """``link_mode``: ``"auto"`` (reflink, hardlink, copy), or one of those three."""
        super().__init__(root)
        if link_mode != "auto" and link_mode not in LINK_MODES:
            raise InvalidArgumentError(
                f"link_mode: {link_mode!r} is not one of auto, {', '.join(LINK_MODES)}"
            )
        self.link_mode = link_mode
        self.unsupported: set[str] = set()  # modes this filesystem refused
        self._index: HashIndex | None = None
        self._index_lock = threading.Lock()

    @property
    def index(self) -> HashIndex:
        """The cache's hash index (opened on first use; closed by :meth:`close`)."""
        with self._index_lock:
            if self._index is None:
                from mltrail.objects.index import HashIndex

                self._index = HashIndex(self.root / INDEX_NAME)
            return self._index

    def close(self) -> None:
        """Close the hash index if it was opened."""
        with self._index_lock:
            if self._index is not None:
                self._index.close()
                self._index = None

    def lock(
        self,
        *,
        exclusive: bool = False,
        timeout_s: float | None = None,
        on_wait: Callable[[], None] | None = None,
    ) -> contextlib.AbstractContextManager[None]:
        """The cache lock (:mod:`mltrail.objects.lock`): writers hold it shared, gc exclusive.

        ``with cache.lock(): ...``; ``on_wait`` is called once if it has to wait.
        """
        from mltrail.objects.lock import cache_lock

        return cache_lock(self.root, exclusive=exclusive, timeout_s=timeout_s, on_wait=on_wait)

    def __enter__(self) -> Cache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- complete trees ----------------------------------------------------------------------

    def check_complete(self, digest: str, objects: Iterable[str]) -> list[str]:
        """The objects (of the tree ``digest``) missing from the cache, sorted; when none is
        (and the tree object is there), the tree is recorded complete for :meth:`is_complete`.

        One ``listdir`` per shard directory. Each shard's mtime is taken *before* it is listed
        and kept only if older than ``RACY_NS`` (else 0: always listed again), so a removal
        after the listing always shows as a newer mtime.
        """
        from mltrail.objects.index import RACY_NS

        by_shard: dict[str, list[tuple[str, str]]] = {}
        valid = VALID_DIGEST.fullmatch
        for d in objects:
            if valid(d) is None:
                parse_digest(d)  # raises, naming what is wrong
                raise InvalidArgumentError(f"digest: {d!r} is not a file object")
            algo, _, rest = d.partition(":")
            by_shard.setdefault(f"{algo}/{rest[:2]}", []).append((rest[2:], d))
        limit = time.time_ns() - RACY_NS
        missing: list[str] = []
        rows: list[tuple[str, int, str]] = []
        for shard, items in by_shard.items():
            path = f"{self.url}/{shard}"
            try:
                mtime = os.stat(path).st_mtime_ns
                present = set(os.listdir(path))
            except (FileNotFoundError, NotADirectoryError):
                missing.extend(d for _, d in items)
                continue
            missing.extend(d for name, d in items if name not in present)
            rows.append((shard, mtime if mtime < limit else 0, "\n".join(n for n, _ in items)))
        if not missing and digest.endswith(TREE_SUFFIX) and self.exists(digest):
            self.index.put_complete(digest, rows)
        return sorted(missing)

    def is_complete(self, digest: str) -> bool:
        """Whether every object of the tree ``digest`` is known to be in the cache, cheaply:
        it was all there at :meth:`check_complete`, and each shard directory either kept its
        mtime since (nothing removed) or still lists the tree's names. False means "unknown":
        call :meth:`check_complete` for the missing objects.
        """
        from mltrail.objects.index import RACY_NS

        if not digest.endswith(TREE_SUFFIX):
            return False
        rows = self.index.get_complete(digest)
        if rows is None or not self.exists(digest):
            return False
        limit = time.time_ns() - RACY_NS
        refreshed: list[tuple[str, int, str]] = []
        for shard, recorded, names in rows:
            path = f"{self.url}/{shard}"
            try:
                mtime = os.stat(path).st_mtime_ns
                if recorded and mtime == recorded:
                    continue
                present = set(os.listdir(path))
            except (FileNotFoundError, NotADirectoryError):
                return False
            if not present.issuperset(names.split("\n")):
                return False
            if mtime < limit:
                refreshed.append((shard, mtime, names))  # trusted from now on
        if refreshed:
            self.index.put_complete(digest, refreshed, replace=False)
        return True

    def modes(self, mode: str | None = None) -> list[str]:
        """The link modes to try, in order, for ``mode`` (default: the cache's)."""
        mode = mode or self.link_mode
        if mode != "auto" and mode not in LINK_MODES:
            raise InvalidArgumentError(
                f"link_mode: {mode!r} is not one of auto, {', '.join(LINK_MODES)}"
            )
        if mode != "auto":
            return [mode] if mode == "copy" else [mode, "copy"]
        return [m for m in LINK_MODES if m not in self.unsupported]

    def mark_unsupported(self, mode: str, err: OSError) -> None:
        """Remember that the filesystem refused ``mode`` (not for per-file errors)."""
        import errno

        if mode != "copy" and err.errno not in (errno.EMLINK, errno.EACCES):
            self.unsupported.add(mode)

    def store(
        self,
        writer: ObjectWriter,
        digest: str,
        src: str,
        st: os.stat_result,
        data: bytes | None = None,
    ) -> str | None:
        """Store the file ``src`` (hashed as ``digest`` with ``fstat`` ``st``) into the cache.

        ``data``, when given, is the content that was hashed (small files): a copy writes it
        without reading the file again. Returns the mode used, or None if already present.

        Raises:
            SourceChangedError: the file changed after it was hashed.
        """
        if writer.pending(digest):
            return None
        for mode in self.modes():
            if mode == "copy":
                if data is not None:
                    stored = writer.put_bytes(digest, data, verified=True)
                else:
                    stored = writer.put_file(digest, src, size=st.st_size)
                return mode if stored else None
            try:
                stored = writer.put_link(digest, src, st, how=mode)
            except SourceChangedError:
                raise
            except OSError as exc:
                if exc.errno not in LINK_ERRNOS:
                    raise
                self.mark_unsupported(mode, exc)
                continue
            return mode if stored else None
        return None  # pragma: no cover - "copy" always ends the loop

    def link(self, digest: str, dest: str | os.PathLike[str], mode: str | None = None) -> str:
        """Materialise the file object ``digest`` at ``dest`` (replacing it atomically).

        Returns the mode used. ``dest`` itself is never followed if it is a symlink (it is
        replaced); its parent directory must exist. Hardlinks are read-only (the object's
        mode); reflinks and copies are writable (``0o644``).
        """
        src = self.path(digest)
        if not src.exists():
            raise NotFoundError(f"object {digest} is not in the cache {self.url}")
        dest = Path(dest)
        tmp = dest.parent / temp_name(dest.name)
        for m in self.modes(mode):
            try:
                if m == "hardlink":
                    os.link(src, tmp)
                elif m == "reflink":
                    reflink(src, tmp)
                    os.chmod(tmp, 0o644)
                else:
                    import shutil

                    shutil.copyfile(src, tmp)
                    os.chmod(tmp, 0o644)
            except OSError as exc:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
                if m == "copy" or exc.errno not in LINK_ERRNOS:
                    raise
                self.mark_unsupported(m, exc)
                continue
            try:
                os.replace(tmp, dest)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()  # rename onto another link of the same inode is a no-op
            return m
        raise AssertionError("unreachable")  # pragma: no cover
