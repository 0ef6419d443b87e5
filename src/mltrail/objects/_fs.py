"""Low-level local filesystem helpers: durable syncs, reflinks, temp names, OS errors.

Temp names (:func:`temp_name`) say who wrote them: ``.tmp-h<host tag>-<pid>-<random>-<n>-``
followed by the start of the final name. The host tag is a short hash of the host name, the
kernel's boot id and the pid namespace, so :func:`is_stale_temp` can tell a temp file left by a
dead writer on this machine (its pid is gone: stale at once) from one a live writer is still
filling (kept), and treats temps of other machines (or older mltrail versions) by age alone
(:data:`TEMP_GRACE_S`). A killed push or add therefore leaves nothing behind for long: the next
write into the same shard directory, or a gc, removes it.
"""

from __future__ import annotations

import errno
import itertools
import os
import secrets
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from mltrail.errors import StoreError

if TYPE_CHECKING:
    import ctypes

__all__ = [
    "LINK_ERRNOS",
    "TEMP_GRACE_S",
    "TEMP_PREFIX",
    "describe_os_error",
    "fsync_dir",
    "io_error",
    "is_stale_temp",
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
TEMP_PREFIX = ".tmp-"
#: A temp file of another machine (or of an older mltrail, whose names carry no host tag) is
#: stale once it is this old: no single object write takes that long.
TEMP_GRACE_S = 3600.0
#: A temp file of this machine whose pid is alive is kept unless older than this (the pid was
#: reused by an unrelated process after its writer died).
_TEMP_MAX_AGE_S = 86400.0
_counter = itertools.count()
_prefix: tuple[int, str] | None = None  # (pid, prefix): a forked child makes its own
_host: str | None = None
_libc_lock = threading.Lock()
_libc: ctypes.CDLL | None = None
_CAUSES = {
    errno.ENOSPC: "disk full",
    errno.EDQUOT: "disk quota exceeded",
    errno.EIO: "I/O error",
    errno.EROFS: "read-only filesystem",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EMFILE: "too many open files",
    errno.ENAMETOOLONG: "file name too long",
}


def host_tag() -> str:
    """12 hex digits naming this host, boot and pid namespace (pids mean something only
    within one of these)."""
    global _host
    if _host is None:
        import hashlib

        parts = [os.uname().nodename]
        for probe in ("/proc/sys/kernel/random/boot_id", "/proc/self/ns/pid"):
            try:
                parts.append(os.readlink(probe) if probe.endswith("pid") else _read(probe))
            except OSError:
                parts.append("?")
        _host = hashlib.blake2b("\0".join(parts).encode(), digest_size=6).hexdigest()
    return _host


def _read(path: str) -> str:
    with open(path, encoding="ascii") as fh:
        return fh.read().strip()


def temp_name(final_name: str) -> str:
    """A unique temp file name for ``final_name`` (same directory; never a valid object name).

    The name carries this host's tag and this process's pid (see :func:`is_stale_temp`).
    """
    global _prefix
    pid = os.getpid()
    prefix = _prefix
    if prefix is None or prefix[0] != pid:
        prefix = (pid, f"{TEMP_PREFIX}h{host_tag()}-{pid}-{secrets.token_hex(4)}-")
        _prefix = prefix
    return f"{prefix[1]}{next(_counter)}-{final_name[:16]}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, owned by someone else
        return True
    return True


def is_stale_temp(name: str, age_s: float | None, *, grace_s: float = TEMP_GRACE_S) -> bool:
    """Whether the temp file ``name`` (``age_s`` seconds old, None if unknown) is garbage.

    A temp this host wrote is stale as soon as its writer's pid is gone (or after a day, for
    a reused pid); any other temp once it is ``grace_s`` old, so a live writer on another
    machine is never disturbed. A name that is no temp name is never stale.
    """
    if not name.startswith(TEMP_PREFIX):
        return False
    fields = name[len(TEMP_PREFIX) :].split("-", 2)
    if len(fields) == 3 and fields[0] == f"h{host_tag()}" and fields[1].isdigit():
        if not _pid_alive(int(fields[1])):
            return True
        return age_s is not None and age_s > _TEMP_MAX_AGE_S
    return age_s is not None and age_s > grace_s


def describe_os_error(exc: OSError) -> str:
    """``disk full (ENOSPC) at /path`` for an OSError: the cause in words, the errno's name,
    and the file (a temp file is shown as its directory, which means more to a user)."""
    code = exc.errno
    name = errno.errorcode.get(code, str(code)) if code is not None else "?"
    cause = _CAUSES.get(code) if code is not None else None
    if cause is None:
        cause = (os.strerror(code) if code is not None else str(exc)).lower()
    where = exc.filename
    text = f"{cause} ({name})"
    if where is not None:
        path = os.fsdecode(where) if isinstance(where, (str, bytes, os.PathLike)) else str(where)
        if os.path.basename(path).startswith(TEMP_PREFIX):
            path = os.path.dirname(path)
        text += f" at {path}"
    return text


def io_error(exc: OSError, doing: str) -> StoreError:
    """A :class:`~mltrail.errors.StoreError` saying what failed, why and where (one line);
    raise it ``from exc``."""
    return StoreError(f"{doing}: {describe_os_error(exc)}")


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
