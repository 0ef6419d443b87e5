"""The cache lock: writers share it, gc takes it alone.

``gc`` decides what is live (the pointer files, runs, artifacts) and then removes the rest. A
writer running meanwhile (an ``add`` whose pointer file is not written yet, a ``pull`` whose
checkout has not happened, a ``push`` reading objects) holds objects nothing references *yet*.
So every writer holds ``<cache>/lock`` shared (``flock(LOCK_SH)``) from before its first object
until its pointer files are written, and gc holds it exclusive (``LOCK_EX``) from before it
computes what is live until its last removal: the two never overlap, and whatever a writer
stored is referenced by the time gc can look. The kernel releases a flock when its process
dies (even by SIGKILL), so a crashed writer never blocks gc.

Writers that do not take the lock (older versions, other tools) are covered by gc's grace
window: objects younger than it are never collected (:func:`mltrail.objects.gc.gc`).

On a filesystem without ``flock`` (some network filesystems answer ENOLCK or EOPNOTSUPP) the
lock is skipped and the grace window alone protects.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from typing import TYPE_CHECKING

from mltrail.errors import StoreError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = ["LOCK_NAME", "cache_lock"]

LOCK_NAME = "lock"
_UNSUPPORTED = frozenset({errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL})
_POLL_S = 0.05


@contextlib.contextmanager
def cache_lock(
    root: str | os.PathLike[str],
    *,
    exclusive: bool = False,
    timeout_s: float | None = None,
    on_wait: Callable[[], None] | None = None,
) -> Iterator[None]:
    """Hold the lock of the cache at ``root`` (shared, or ``exclusive`` for gc).

    Args:
        root: The cache directory (created if missing).
        exclusive: Take it alone (gc); else shared with the other writers.
        timeout_s: Give up after this long (None: wait as long as it takes).
        on_wait: Called once if the lock is busy, before waiting (to tell the user).

    Raises:
        StoreError: the lock stayed busy for ``timeout_s``.
        OSError: the lock file cannot be created (a full disk, permissions).
    """
    import fcntl

    path = os.path.join(os.fspath(root), LOCK_NAME)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        os.makedirs(os.fspath(root), exist_ok=True)
        fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        op = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        try:
            fcntl.flock(fd, op | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait()
            _wait(fd, op, path, timeout_s)
        except OSError as exc:
            if exc.errno not in _UNSUPPORTED:
                raise
        yield
    finally:
        os.close(fd)  # releases the flock


def _wait(fd: int, op: int, path: str, timeout_s: float | None) -> None:
    import fcntl

    if timeout_s is None:
        fcntl.flock(fd, op)
        return
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            fcntl.flock(fd, op | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise StoreError(
                    f"the cache lock {path} is still held by another mltrail process after "
                    f"{timeout_s:g} s (a gc, or a long add/push/pull/checkout); try again later"
                ) from None
            time.sleep(_POLL_S)
