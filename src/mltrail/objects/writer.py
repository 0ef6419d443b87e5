"""Batched, crash-safe writes into a local object DB (:class:`ObjectWriter`).

See :mod:`mltrail.objects.local` for the layout and the durability argument: temp names in the
shard directories, one ``syncfs(2)`` for a large batch (an ``fsync`` per file for a small one),
then the renames, then one more sync.

Failure leaves nothing behind: on an exception (a full disk, an I/O error, a rename that
fails half-way through the batch) every temp file not yet renamed is removed, and a workspace
file that was hardlinked in (and so made read-only) gets its mode back. After a commit, the
temp files a dead writer left in the shard directories the batch wrote into, or looked into
for an object it found already stored, are removed (:func:`~mltrail.objects._fs.
is_stale_temp`): a killed add or push is cleaned up by the next one. A batch also leaves a
marker in ``<store>/.writers/`` while its temps exist: a marker whose writer is dead makes
the next commit sweep every shard directory, wherever the dead batch's temps are.
"""

from __future__ import annotations

import contextlib
import os
import stat as stat_mod
import threading
from typing import TYPE_CHECKING, Protocol

from mltrail.objects._fs import TEMP_GRACE_S, fsync_dir, reflink, syncfs, temp_name
from mltrail.objects.digest import LARGE_FILE, TREE_SUFFIX, parse_digest
from mltrail.objects.verify import SourceChangedError, verify_bytes, verify_file

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from types import TracebackType

__all__ = ["ObjectWriter", "WriterTarget"]

_FEW = 16  # batches up to this size fsync each object instead of syncing the filesystem


class WriterTarget(Protocol):
    """What a writer needs of the local store it writes into
    (:class:`~mltrail.objects.local.LocalObjectStore`)."""

    @property
    def url(self) -> str:
        """The store's root directory (absolute)."""
        ...

    def ensure_dir(self, directory: str) -> None:
        """Create a shard directory (once per process)."""
        ...

    def register_writer(self) -> str:
        """Create this batch's marker in ``<root>/.writers``; return its path."""
        ...

    def unregister_writer(self, marker: str) -> None:
        """Remove a batch's marker."""
        ...

    def sweep_temps(
        self, dirs: Iterable[str] | None = None, *, grace_s: float = TEMP_GRACE_S
    ) -> int:
        """Remove stale temps from shard directories."""
        ...

    def recover(self, *, grace_s: float = TEMP_GRACE_S) -> int:
        """Sweep everywhere if a writer died mid-batch."""
        ...


class ObjectWriter:
    """Writes a batch of objects into a local store (:class:`~mltrail.objects.local.
    LocalObjectStore`); thread-safe.

    Every ``put_*`` writes a temp file in the object's shard directory and returns; nothing
    is visible under a real name until :meth:`commit` (called by ``with``) has made the
    batch durable (``fsync`` each file when few, else one ``syncfs``), renamed every temp to
    its real name and made the renames durable. On an exception the temps are removed.
    """

    def __init__(self, odb: WriterTarget) -> None:
        self.odb = odb
        self._pending: dict[str, tuple[str, str]] = {}  # digest -> (temp, final)
        self._modes: dict[str, int] = {}  # temp hardlinked to a workspace file -> its mode
        self._touched: set[str] = set()  # shard directories written to or checked
        self._marker: str | None = None  # see LocalObjectStore.register_writer
        self._listings: dict[str, frozenset[str]] = {}  # shard directory -> names at first use
        self._claims = 0
        self._lock = threading.Lock()
        self.bytes_written = 0
        self.objects_written = 0

    def __enter__(self) -> ObjectWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()

    # -- helpers ---------------------------------------------------------------------------
    def _claim(self, digest: str, size: int | None) -> tuple[str, str] | None:
        """(temp, final) paths for a new object, or None if it is stored or being stored."""
        if digest in self._pending:
            return None
        algo, hexd = parse_digest(digest)
        directory = f"{self.odb.url}/{algo}/{hexd[:2]}"
        name = f"{hexd[2:]}{TREE_SUFFIX if digest.endswith(TREE_SUFFIX) else ''}"
        final = f"{directory}/{name}"
        self._claims += 1
        self._touched.add(directory)
        # Big batches list each shard directory once instead of a stat per object.
        if self._claims <= _FEW or name in self._listing(directory):
            try:
                st = os.stat(final)
            except FileNotFoundError:
                pass
            else:
                if size is None or st.st_size == size:
                    return None
                # A wrong-sized object under a real name (a torn write on a filesystem without
                # ordered data, or tampering): replace it.
        self.odb.ensure_dir(directory)
        tmp = f"{directory}/{temp_name(hexd[2:])}"
        with self._lock:
            if digest in self._pending:
                return None
            if self._marker is None:  # before the batch's first temp exists
                self._marker = self.odb.register_writer()
            self._pending[digest] = (tmp, final)
        return tmp, final

    def _listing(self, directory: str) -> frozenset[str]:
        """The names in a shard directory when this batch first touched it.

        An object another process stores after the listing is written again by this batch:
        the rename replaces it with the same verified content (harmless).
        """
        names = self._listings.get(directory)
        if names is None:
            try:
                names = frozenset(os.listdir(directory))
            except FileNotFoundError:
                names = frozenset()
            self._listings[directory] = names
        return names

    def _release(self, digest: str) -> None:
        with self._lock:
            tmp, _ = self._pending.pop(digest, ("", ""))
        if tmp:
            self._discard(tmp)

    def _discard(self, tmp: str) -> None:
        """Remove a temp; a hardlinked workspace file gets its own mode back first."""
        mode = self._modes.pop(tmp, None)
        if mode is not None:
            with contextlib.suppress(OSError):
                os.chmod(tmp, mode)  # the same inode as the workspace file
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)

    def pending(self, digest: str) -> bool:
        """Whether ``digest`` is part of this batch."""
        return digest in self._pending

    # -- writes ----------------------------------------------------------------------------
    def put_bytes(self, digest: str, data: bytes, *, verified: bool = False) -> bool:
        """Add ``data`` as ``digest`` (hashing it first unless ``verified``); False if present."""
        if not verified:
            verify_bytes(digest, data, "data to store")
        claim = self._claim(digest, len(data))
        if claim is None:
            return False
        tmp, _ = claim
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
            try:
                view = memoryview(data)
                while view:
                    n = os.write(fd, view)
                    view = view[n:]
            finally:
                os.close(fd)
        except BaseException:
            self._release(digest)
            raise
        self.bytes_written += len(data)
        self.objects_written += 1
        return True

    def put_file(
        self, digest: str, src: str | os.PathLike[str], *, size: int | None = None
    ) -> bool:
        """Copy the file ``src`` in as ``digest``, verifying the copy; False if present.

        Raises:
            CorruptObjectError: the bytes copied do not hash to ``digest``.
        """
        if size is None:
            size = os.stat(src).st_size
        if size < LARGE_FILE:
            with open(src, "rb") as f:
                data = f.read()
            verify_bytes(digest, data, os.fspath(src))
            return self.put_bytes(digest, data, verified=True)
        claim = self._claim(digest, size)
        if claim is None:
            return False
        tmp, _ = claim
        try:
            try:
                reflink(src, tmp)
            except OSError:
                import shutil

                shutil.copyfile(src, tmp)
            verify_file(digest, tmp, os.fspath(src))
            os.chmod(tmp, 0o444)
        except BaseException:
            self._release(digest)
            raise
        self.bytes_written += size
        self.objects_written += 1
        return True

    def put_from(
        self, digest: str, fill: Callable[[str], None], *, size: int | None = None
    ) -> bool:
        """Add ``digest`` by letting ``fill(temp_path)`` write the file (a download), then
        verifying it; False if already present.

        Raises:
            CorruptObjectError: what ``fill`` wrote does not hash to ``digest`` (discarded).
        """
        claim = self._claim(digest, size)
        if claim is None:
            return False
        tmp, _ = claim
        try:
            fill(tmp)
            verify_file(digest, tmp, "the data received")
            os.chmod(tmp, 0o444)
            written = os.stat(tmp).st_size
        except BaseException:
            self._release(digest)
            raise
        self.bytes_written += written
        self.objects_written += 1
        return True

    def put_link(
        self, digest: str, src: str | os.PathLike[str], st: os.stat_result, *, how: str
    ) -> bool:
        """Add ``src`` by hardlink (``how="hardlink"``) or clone (``how="reflink"``).

        ``st`` is the ``fstat`` taken before ``src`` was hashed: if the linked file is not
        that same, unchanged file (inode, size, mtime), nothing is stored and
        :class:`SourceChangedError` is raised. A hardlinked source becomes read-only: it is
        the cache's object now. OSError (EXDEV, EPERM, EOPNOTSUPP, ...) means the mode is
        not available here.
        """
        claim = self._claim(digest, st.st_size)
        if claim is None:
            return False
        tmp, _ = claim
        try:
            if how == "hardlink":
                os.link(src, tmp)
                now = os.lstat(tmp)
                if (now.st_ino, now.st_dev) != (st.st_ino, st.st_dev):
                    raise SourceChangedError(os.fspath(src))
                with self._lock:
                    self._modes[tmp] = stat_mod.S_IMODE(now.st_mode)
            else:
                reflink(src, tmp)
                now = os.stat(src)
                if now.st_ino != st.st_ino:
                    raise SourceChangedError(os.fspath(src))
            if (now.st_size, now.st_mtime_ns) != (st.st_size, st.st_mtime_ns):
                raise SourceChangedError(os.fspath(src))
            os.chmod(tmp, 0o555 if st.st_mode & 0o111 else 0o444)
        except BaseException:
            self._release(digest)
            raise
        self.objects_written += 1
        return True

    # -- commit ----------------------------------------------------------------------------
    def commit(self) -> None:
        """Make the batch durable and visible (see the class docstring)."""
        with self._lock:
            items = list(self._pending.values())
            self._pending.clear()
            touched, self._touched = self._touched, set()
        if not items:
            self._unregister()
            self.odb.sweep_temps(touched)
            self.odb.recover()
            return
        done = 0
        try:
            if len(items) <= _FEW:
                for tmp, _ in items:
                    fd = os.open(tmp, os.O_RDONLY | os.O_CLOEXEC)
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
            else:
                syncfs(self.odb.url)
            for tmp, final in items:
                os.replace(tmp, final)
                done += 1
        except BaseException:
            for tmp, _ in items[done:]:  # the renamed ones are whole, verified objects
                self._discard(tmp)
            self._unregister()
            raise
        finally:
            for tmp, _ in items[:done]:
                self._modes.pop(tmp, None)
        dirs = {os.path.dirname(final) for _, final in items}
        if len(dirs) <= _FEW:
            for d in dirs:
                fsync_dir(d)
        else:
            syncfs(self.odb.url)
        self._unregister()
        # a killed writer's temps: where this batch wrote or found its objects present, and
        # everywhere if a writer's marker says it died mid-batch
        self.odb.sweep_temps(dirs | touched)
        self.odb.recover()

    def _unregister(self) -> None:
        with self._lock:
            marker, self._marker = self._marker, None
        if marker is not None:
            self.odb.unregister_writer(marker)

    def abort(self) -> None:
        """Remove every temp of the batch; nothing becomes visible."""
        with self._lock:
            items = list(self._pending.values())
            self._pending.clear()
        for tmp, _ in items:
            self._discard(tmp)
        self._unregister()
