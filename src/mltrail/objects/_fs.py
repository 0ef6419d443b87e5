"""Low-level local filesystem helpers: durable syncs, reflinks, temp names."""

from __future__ import annotations

import errno
import itertools
import os
import secrets
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ctypes

__all__ = [
    "LINK_ERRNOS",
    "fsync_dir",
    "reflink",
    "syncfs",
    "temp_name",
]

# A link (hard or reflink) across these errors falls back to the next mode.
LINK_ERRNOS = frozenset(
    {
        errno.EXDEV,
        errno.EPERM,
        errno.EACCES,
        errno.EMLINK,
        errno.EOPNOTSUPP,
        errno.ENOTSUP,
        errno.ENOTTY,
        errno.EINVAL,
        errno.ENOSYS,
        errno.EBADF,
    }
)
_FICLONE = 0x40049409  # _IOW(0x94, 9, int)
_PREFIX = f".tmp-{os.getpid()}-{secrets.token_hex(4)}-"
_counter = itertools.count()
_libc_lock = threading.Lock()
_libc: ctypes.CDLL | None = None


def temp_name(final_name: str) -> str:
    """A unique temp file name for ``final_name`` (same directory; never a valid object name)."""
    return f"{_PREFIX}{next(_counter)}-{final_name[:16]}"


def _get_libc() -> ctypes.CDLL | None:
    global _libc
    if sys.platform != "linux":
        return None
    with _libc_lock:
        if _libc is None:
            import ctypes  # only to sync: importing this module stays light

            try:
                _libc = ctypes.CDLL(None, use_errno=True)
            except OSError:  # pragma: no cover - no libc (unusual)
                return None
        return _libc


def syncfs(path: str | os.PathLike[str]) -> None:
    """Flush every dirty page and inode of the filesystem holding ``path`` to disk.

    One ``syncfs(2)`` replaces thousands of ``fsync`` calls when a batch of objects was
    written (Linux); elsewhere falls back to ``os.sync()``.
    """
    libc = _get_libc()
    if libc is not None and hasattr(libc, "syncfs"):
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            if libc.syncfs(fd) == 0:
                return
        finally:
            os.close(fd)
    os.sync()


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """fsync a directory (makes renames and creations in it durable)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def reflink(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
    """Create ``dst`` as a copy-on-write clone of ``src`` (``ioctl FICLONE``, Linux).

    Raises:
        OSError: with ``errno`` EOPNOTSUPP/EXDEV/... when the filesystem cannot clone;
            ``dst`` is removed then.
    """
    if sys.platform != "linux":
        raise OSError(errno.EOPNOTSUPP, "reflink is only implemented on Linux", str(dst))
    import fcntl

    sfd = os.open(src, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        dfd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            fcntl.ioctl(dfd, _FICLONE, sfd)
        except OSError:
            os.close(dfd)
            Path(dst).unlink(missing_ok=True)
            raise
        os.close(dfd)
    finally:
        os.close(sfd)
