"""I/O fault injection for tests: make the Nth write, fsync, rename, truncate or open fail.

SQLite's discipline applied to mltrail: run a real workload once to count the I/O calls it
makes under a directory, then run it again for every ``N`` with the ``N``-th call failing
(``ENOSPC`` or ``EIO``), and check after each that nothing acknowledged was lost and nothing
half-written is visible.

Calls relative to a directory descriptor (``os.open(name, ..., dir_fd=fd)``, ``os.rename`` with
``dst_dir_fd``, ``os.link`` with ``dst_dir_fd``: how checkout writes) are resolved through
that descriptor, so they count wherever the process's working directory is.

Faults are injected by wrapping the ``os`` functions the code under test calls
(``os.write``, ``os.fsync``, ``os.replace`` ...) and the built-in ``open`` (whose file
objects are wrapped so that their ``write``/``flush`` count too). Only calls that touch a
path under ``root`` (for descriptors, the path ``/proc/self/fd`` names) are counted, so the
test runner's own I/O is never hit. Linux only (``/proc``).

Example::

    with FaultInjector(tmp_path, fail_at=7, errno_=errno.ENOSPC) as faults:
        workload()
    assert faults.fired  # the 7th counted call raised OSError(ENOSPC)
"""

from __future__ import annotations

import builtins
import errno
import io
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from types import TracebackType

__all__ = ["ALL_OPS", "FaultInjector", "FaultPoint", "files_under"]

#: The kinds of call that can be made to fail.
ALL_OPS = frozenset({"open", "write", "fsync", "rename", "truncate", "link"})

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


@dataclass(frozen=True, slots=True)
class FaultPoint:
    """One injected failure: the call's kind, its ordinal and the path it touched."""

    op: str
    n: int
    path: str


@dataclass
class _State:
    root: str
    ops: frozenset[str]
    fail_at: int | None
    errno_: int
    sticky: bool
    count: int = 0
    fired: list[FaultPoint] = field(default_factory=list)
    seen: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class FaultInjector:
    """Counts I/O calls under ``root`` and makes the ``fail_at``-th one fail.

    Args:
        root: only calls on paths under this directory are counted.
        fail_at: the 1-based ordinal of the call that fails; ``None`` only counts.
        errno_: the error raised (``ENOSPC`` by default; ``EIO`` is the other usual one).
        ops: which kinds of call count (see :data:`ALL_OPS`).
        sticky: keep failing every counted call after the first failure (a disk that stays
            full) until :meth:`heal` is called.
        torn: a failing ``os.write`` first writes half of its bytes (a short write cut by a
            full disk), then raises.

    Attributes:
        count: counted calls so far.
        fired: the failures raised.
        seen: ``(op, path)`` of every counted call, in order (for reports).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        fail_at: int | None = None,
        errno_: int = errno.ENOSPC,
        ops: Iterable[str] = ALL_OPS,
        *,
        sticky: bool = False,
        torn: bool = False,
    ) -> None:
        unknown = set(ops) - ALL_OPS
        if unknown:
            raise ValueError(f"unknown fault ops {sorted(unknown)}; known: {sorted(ALL_OPS)}")
        real = os.path.realpath(os.fspath(root))
        self._s = _State(real.rstrip("/") + "/", frozenset(ops), fail_at, errno_, sticky)
        self._saved: dict[tuple[Any, str], Any] = {}
        self._torn = torn

    # -- results ---------------------------------------------------------------------------
    @property
    def count(self) -> int:
        return self._s.count

    @property
    def fired(self) -> list[FaultPoint]:
        return list(self._s.fired)

    @property
    def seen(self) -> list[tuple[str, str]]:
        return list(self._s.seen)

    def heal(self) -> None:
        """Stop failing (space came back): later calls succeed."""
        self._s.fail_at = None
        self._s.sticky = False

    # -- the check -------------------------------------------------------------------------
    def _under(self, path: str | None) -> bool:
        if not path:
            return False
        if not os.path.isabs(path):
            path = os.path.join(os.getcwd(), path)
        # realpath of the parent: the file itself may not exist yet
        full = os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))
        return (full + "/").startswith(self._s.root) or full.startswith(self._s.root)

    def _check(self, op: str, path: str | None) -> None:
        s = self._s
        if op not in s.ops or not self._under(path):
            return
        with s.lock:
            s.count += 1
            n = s.count
            s.seen.append((op, path or ""))
            fail = (s.fail_at is not None and n == s.fail_at) or (s.sticky and bool(s.fired))
            if fail:
                s.fired.append(FaultPoint(op, n, path or ""))
        if fail:
            raise OSError(s.errno_, f"{os.strerror(s.errno_)} (injected at {op} #{n})", path)

    # -- patching --------------------------------------------------------------------------
    def __enter__(self) -> FaultInjector:
        self._patch(os, "write", self._fd_op("write"))
        self._patch(os, "pwrite", self._fd_op("write"))
        self._patch(os, "writev", self._fd_op("write"))
        self._patch(os, "fsync", self._fd_op("fsync"))
        self._patch(os, "fdatasync", self._fd_op("fsync"))
        self._patch(os, "ftruncate", self._fd_op("truncate"))
        self._patch(os, "truncate", self._path_op("truncate"))
        self._patch(os, "rename", self._two_path_op("rename"))
        self._patch(os, "replace", self._two_path_op("rename"))
        self._patch(os, "link", self._two_path_op("link"))
        self._patch(os, "open", self._os_open())
        if hasattr(os, "sendfile"):
            self._patch(os, "sendfile", self._out_fd_op("write"))
        if hasattr(os, "copy_file_range"):
            self._patch(os, "copy_file_range", self._copy_range_op())
        opener = self._builtin_open()
        self._patch(builtins, "open", opener)
        self._patch(io, "open", opener)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for (owner, name), original in self._saved.items():
            setattr(owner, name, original)
        self._saved.clear()

    def _patch(self, owner: Any, name: str, make: Callable[[Any], Any]) -> None:
        original = getattr(owner, name)
        self._saved[(owner, name)] = original
        setattr(owner, name, make(original))

    @staticmethod
    def _fd_path(fd: int) -> str | None:
        try:
            return os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return None

    def _fd_op(self, op: str) -> Callable[[Any], Any]:
        def make(original: Any) -> Any:
            def wrapper(fd: int, *args: Any, **kwargs: Any) -> Any:
                try:
                    self._check(op, self._fd_path(fd))
                except OSError:
                    if self._torn and getattr(original, "__name__", "") == "write" and args:
                        data = bytes(args[0])
                        original(fd, data[: len(data) // 2])
                    raise
                return original(fd, *args, **kwargs)

            return wrapper

        return make

    def _out_fd_op(self, op: str) -> Callable[[Any], Any]:
        def make(original: Any) -> Any:
            def wrapper(out_fd: int, in_fd: int, *args: Any, **kwargs: Any) -> Any:
                self._check(op, self._fd_path(out_fd))
                return original(out_fd, in_fd, *args, **kwargs)

            return wrapper

        return make

    def _copy_range_op(self) -> Callable[[Any], Any]:
        def make(original: Any) -> Any:
            def wrapper(src: int, dst: int, *args: Any, **kwargs: Any) -> Any:
                self._check("write", self._fd_path(dst))
                return original(src, dst, *args, **kwargs)

            return wrapper

        return make

    def _path_op(self, op: str) -> Callable[[Any], Any]:
        def make(original: Any) -> Any:
            def wrapper(path: Any, *args: Any, **kwargs: Any) -> Any:
                if isinstance(path, int):
                    self._check(op, self._fd_path(path))
                else:
                    self._check(op, os.fsdecode(path))
                return original(path, *args, **kwargs)

            return wrapper

        return make

    def _at(self, path: Any, dir_fd: int | None) -> str:
        """``path`` as an absolute path: relative to ``dir_fd`` (``openat`` & co.) when given."""
        text = os.fsdecode(path)
        if dir_fd is not None and not os.path.isabs(text):
            base = self._fd_path(dir_fd)
            if base is not None:
                return os.path.join(base, text)
        return text

    def _two_path_op(self, op: str) -> Callable[[Any], Any]:
        def make(original: Any) -> Any:
            def wrapper(src: Any, dst: Any, *args: Any, **kwargs: Any) -> Any:
                self._check(op, self._at(dst, kwargs.get("dst_dir_fd")))
                return original(src, dst, *args, **kwargs)

            return wrapper

        return make

    def _os_open(self) -> Callable[[Any], Any]:
        def make(original: Any) -> Any:
            def wrapper(path: Any, flags: int, *args: Any, **kwargs: Any) -> Any:
                if flags & _WRITE_FLAGS and not isinstance(path, int):
                    self._check("open", self._at(path, kwargs.get("dir_fd")))
                return original(path, flags, *args, **kwargs)

            return wrapper

        return make

    def _builtin_open(self) -> Callable[[Any], Any]:
        injector = self

        def make(original: Any) -> Any:
            def wrapper(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
                writing = any(c in mode for c in "wax+")
                path = None if isinstance(file, int) else os.fsdecode(file)
                if writing and path is not None:
                    injector._check("open", path)
                f = original(file, mode, *args, **kwargs)
                if writing and path is not None and injector._under(path):
                    return _FaultyFile(f, injector, path)
                return f

            return wrapper

        return make


class _FaultyFile:
    """A file object whose writes and flushes are counted fault points."""

    def __init__(self, f: Any, injector: FaultInjector, path: str) -> None:
        self._f = f
        self._inj = injector
        self._path = path

    def write(self, data: Any) -> Any:
        self._inj._check("write", self._path)
        return self._f.write(data)

    def writelines(self, lines: Any) -> Any:
        self._inj._check("write", self._path)
        return self._f.writelines(lines)

    def flush(self) -> Any:
        return self._f.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)

    def __iter__(self) -> Any:
        return iter(self._f)

    def __enter__(self) -> _FaultyFile:
        self._f.__enter__()
        return self

    def __exit__(self, *exc: Any) -> Any:
        return self._f.__exit__(*exc)


def files_under(root: str | os.PathLike[str]) -> dict[str, int]:
    """``{relative path: size}`` of every file under ``root`` (a snapshot for diffs)."""
    out: dict[str, int] = {}
    base = Path(root)
    for p in base.rglob("*"):
        if p.is_file() and not p.is_symlink():
            out[str(p.relative_to(base))] = p.stat().st_size
    return out
