"""The local cache: a :class:`LocalObjectDB` plus the link modes that put its objects to use.

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
import hashlib
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from mltrail.errors import InvalidArgumentError, NotFoundError
from mltrail.objects._fs import LINK_ERRNOS, reflink, temp_name
from mltrail.objects.digest import TREE_SUFFIX
from mltrail.objects.odb import LocalObjectDB, SourceChangedError

if TYPE_CHECKING:
    from mltrail.objects.index import HashIndex
    from mltrail.objects.odb import ObjectWriter

__all__ = ["LINK_MODES", "Cache"]

LINK_MODES = ("reflink", "hardlink", "copy")
INDEX_NAME = "index.sqlite"


class Cache(LocalObjectDB):
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

    def __enter__(self) -> Cache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- complete trees ----------------------------------------------------------------------

    def shard_stamp(self, algo: str) -> tuple[str, bool]:
        """A digest of the modification times of ``<cache>/<algo>`` and its shard directories,
        and whether any of them is too recent to be trusted (racy, see ``RACY_NS``).

        Removing (or adding) an object changes its shard directory's mtime, so an unchanged
        stamp means no object was removed since it was taken.
        """
        from mltrail.objects.index import RACY_NS

        now = time.time_ns()
        base = f"{self.url}/{algo}"
        try:
            top = os.stat(base).st_mtime_ns
        except FileNotFoundError:
            return "", True
        rows = [f"{top}"]
        newest = top
        with os.scandir(base) as it:
            for entry in it:
                m = entry.stat(follow_symlinks=False).st_mtime_ns
                newest = max(newest, m)
                rows.append(f"{entry.name}:{m}")
        rows.sort()
        stamp = hashlib.blake2b("\n".join(rows).encode(), digest_size=24).hexdigest()
        return stamp, newest >= now - RACY_NS

    def is_complete(self, digest: str) -> bool:
        """Whether every object of the tree ``digest`` is known to be in the cache: it was
        all there when :meth:`mark_complete` recorded it and no shard directory changed since
        (no object removed). False means "unknown": check with :meth:`exists_many`.
        """
        if not digest.endswith(TREE_SUFFIX) or not self.exists(digest):
            return False
        recorded = self.index.get_complete(digest)
        if recorded is None:
            return False
        return recorded == self.shard_stamp(digest.partition(":")[0])[0]

    def mark_complete(self, digest: str) -> bool:
        """Record that every object of the tree ``digest`` is in the cache (the caller just
        checked); skipped (False) while a shard directory is racily recent."""
        stamp, racy = self.shard_stamp(digest.partition(":")[0])
        if racy or not stamp:
            return False
        self.index.put_complete(digest, stamp)
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
