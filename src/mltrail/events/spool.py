"""The spool: one append-only file per run session.

Writers append whole frames with a single ``os.write`` on an ``O_APPEND`` descriptor, so a
call that returned has handed its bytes to the kernel and survives the death of the process.
The owning process holds an exclusive ``flock`` on the file for its lifetime; the kernel drops
it when the process dies, which is how recovery tells an orphaned spool from a live one
(more robust than pid checks, which pid reuse defeats).

Readers parse frames from an offset and stop at the first incomplete or corrupt frame; a
truncated tail (a write cut short by a full disk) is ignored, never misread.
"""

from __future__ import annotations

import errno
import json
import os
import sys
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mltrail.errors import SpoolError
from mltrail.events.codec import FRAME_HEADER

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "KEYS_SUFFIX",
    "SPOOL_SUFFIX",
    "TEMP_SUFFIX",
    "SpoolAppender",
    "load_snapshot",
    "move_spool",
    "read_frames",
    "remove_spool",
    "snapshot_path",
    "try_lock",
]

SPOOL_SUFFIX = ".spool"
TEMP_SUFFIX = ".new"  # a spool being created: ".<name>.spool.new"
_HDR = FRAME_HEADER.size
MAX_FRAME_BYTES = 64 * 1024 * 1024
#: Beside a spool whose applied prefix was released: ``<name>.spool.keys``, what that prefix
#: declared (header, keysets) and where whole frames resume (see SpoolAppender.release).
KEYS_SUFFIX = ".keys"
_BLOCK = 4096


def snapshot_path(path: Path) -> Path:
    """The ``.keys`` file of a spool (present once part of it was released)."""
    return path.with_name(path.name + KEYS_SUFFIX)


def load_snapshot(path: Path) -> dict[str, Any] | None:
    """A spool's released-prefix snapshot: ``{"upto", "header", "keysets"}``, or None."""
    try:
        raw = snapshot_path(path).read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _spool_error(path, exc, "read the snapshot of") from exc
    try:
        doc = json.loads(raw)
        upto = int(doc["upto"])
        keysets = {int(k): [str(x) for x in v] for k, v in doc["keysets"].items()}
        header = dict(doc["header"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SpoolError(f"the snapshot of spool {path} is unreadable: {exc}") from exc
    return {"upto": upto, "header": header, "keysets": keysets}


def remove_spool(path: Path) -> None:
    """Remove a spool and its snapshot (either may be gone already)."""
    path.unlink(missing_ok=True)
    snapshot_path(path).unlink(missing_ok=True)


def move_spool(path: Path, dest: Path) -> None:
    """Rename a spool, its snapshot with it (``os.replace`` semantics; raises OSError)."""
    os.replace(path, dest)
    try:
        os.replace(snapshot_path(path), snapshot_path(dest))
    except FileNotFoundError:
        pass


_fallocate: Any = None


def _punch_hole(fd: int, start: int, length: int) -> bool:
    """Give the blocks of ``[start, start + length)`` back to the filesystem, keeping the
    file's size and every offset (Linux ``fallocate(PUNCH_HOLE | KEEP_SIZE)``); False where
    the platform or filesystem cannot."""
    global _fallocate
    if not sys.platform.startswith("linux"):
        return False
    if _fallocate is None:
        import ctypes

        try:
            fn = ctypes.CDLL(None, use_errno=True).fallocate
        except (OSError, AttributeError):
            _fallocate = False
            return False
        fn.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong]
        fn.restype = ctypes.c_int
        _fallocate = fn
    if _fallocate is False:
        return False
    return bool(_fallocate(fd, 0x01 | 0x02, start, length) == 0)  # KEEP_SIZE | PUNCH_HOLE


def _spool_error(path: Path, exc: OSError, action: str) -> SpoolError:
    cause = os.strerror(exc.errno) if exc.errno else str(exc)
    hint = " (disk full)" if exc.errno == errno.ENOSPC else ""
    return SpoolError(f"cannot {action} spool {path}: {cause}{hint}")


def _sync_dir(folder: Path) -> None:
    """Sync a folder's entries (a new file's name), where the platform allows it."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def try_lock(fd: int) -> bool:
    """Take an exclusive, non-blocking flock on ``fd``; False when another process holds it."""
    if fcntl is None:  # pragma: no cover
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


class SpoolAppender:
    """Append side of a spool file. Not thread-safe: the caller serialises appends.

    The file is created under a temporary name (``.<name>.new``, which recovery does not
    look at), locked, given its header, and only then renamed into place: a spool never
    exists under its real name without its owner's lock. Otherwise a recoverer could lock
    it between the owner's ``open`` and ``flock``, find it empty and delete it, and the
    owner would log into an unlinked file.

    Args:
        path: the spool file; it must not exist.
        header: bytes (whole frames) written before the file appears under ``path``.
        sync_each_append: ``fdatasync`` after every append (``MLTRAIL_DURABILITY=call``):
            a call that returned survives power loss. Otherwise :meth:`sync` syncs what was
            appended so far (the writer calls it each flush interval in ``batch`` mode).

    Raises:
        SpoolError: the file cannot be created or written (the message names path and cause).
    """

    def __init__(self, path: Path, header: bytes = b"", sync_each_append: bool = False) -> None:
        self.path = path
        self.size = 0
        self.synced = 0  # bytes known to be on stable storage
        self.released = 0  # the blocks before this offset were given back (see release)
        self._header_end = len(header)
        self._dir_synced = False
        self.sync_each_append = sync_each_append
        self._torn = False  # a failed append left bytes past ``size`` that could not be cut
        tmp = path.with_name(f".{path.name}{TEMP_SUFFIX}")
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(tmp, flags, 0o600)
        except OSError as exc:
            raise _spool_error(path, exc, "create") from exc
        try:
            if not try_lock(self._fd):  # pragma: no cover - nobody opens temporary names
                raise SpoolError(f"spool {path} is locked by another process")
            if header:
                self.append(header)
            if path.exists():
                raise SpoolError(f"spool {path} already exists")
            os.rename(tmp, path)
            if sync_each_append:  # the header is synced by append; now the new name
                _sync_dir(path.parent)
                self._dir_synced = True
        except SpoolError:
            self._discard(tmp)
            raise
        except OSError as exc:
            self._discard(tmp)
            raise _spool_error(path, exc, "create") from exc
        except BaseException:
            self._discard(tmp)
            raise

    def _discard(self, tmp: Path) -> None:
        os.close(self._fd)
        self._fd = -1
        try:
            tmp.unlink()
        except OSError:
            pass

    def append(self, data: bytes) -> None:
        """Write ``data`` (one or more whole frames) with one system call.

        All or nothing: when the write fails part-way (``ENOSPC`` after a short write, EIO),
        the file is cut back to its last whole frame before the error is raised, so a later
        append that succeeds is never hidden behind a torn frame. If even the cut fails, the
        spool refuses every later append (each would land after the torn bytes) until a cut
        succeeds.

        Raises:
            SpoolError: nothing of ``data`` is in the spool (the message names path and cause).
        """
        if self._torn:
            self._cut_back(None)
        try:
            n = os.write(self._fd, data)
            while n < len(data):  # a short write: the disk filled up part-way
                n += os.write(self._fd, data[n:])
        except OSError as exc:
            self._cut_back(exc)
            raise _spool_error(self.path, exc, "append to") from exc
        self.size += len(data)
        if self.sync_each_append:
            self.sync()

    def sync(self) -> None:
        """Put what was appended so far on stable storage (``fdatasync``); no-op when done.

        Safe to call from another thread than the appending one while the spool is open.

        Raises:
            SpoolError: the device refused (EIO): what was appended may be lost on power loss.
        """
        size, fd = self.size, self._fd
        if size <= self.synced or fd < 0:
            return
        try:
            (getattr(os, "fdatasync", None) or os.fsync)(fd)
        except OSError as exc:
            raise _spool_error(self.path, exc, "sync") from exc
        self.synced = max(self.synced, size)
        if not self._dir_synced:
            _sync_dir(self.path.parent)
            self._dir_synced = True

    def release(self, upto: int, header: dict[str, Any], keysets: dict[int, list[str]]) -> int:
        """Give back the disk blocks of the frames before ``upto``, which the store holds.

        A long run's spool then takes the disk its unapplied tail needs, not all it ever
        logged. The file keeps its size and offsets (the blocks become a hole that reads as
        zeros); what the released frames declared (the header, keysets) is first written
        to ``<spool>.keys``, synced and renamed into place, so a decoder resuming at or past
        ``upto`` (:func:`load_snapshot`) never needs the hole. The header frame itself is
        never released. Safe to call from the writer thread while the run appends.

        Args:
            upto: a frame boundary the store has applied up to (durably).
            header: the spool's header frame, decoded.
            keysets: every keyset declared before ``upto`` (more is harmless).

        Returns:
            How many bytes were given back (0 where the filesystem cannot punch holes).

        Raises:
            SpoolError: the snapshot cannot be written.
        """
        start = max(self.released, -(-self._header_end // _BLOCK) * _BLOCK)
        end = upto // _BLOCK * _BLOCK
        fd = self._fd
        if end <= start or fd < 0:
            return 0
        doc = {"upto": upto, "header": header, "keysets": {str(k): v for k, v in keysets.items()}}
        snap = snapshot_path(self.path)
        tmp = snap.with_name(f".{snap.name}{TEMP_SUFFIX}")
        try:
            with open(tmp, "wb") as f:
                f.write(json.dumps(doc, separators=(",", ":")).encode("utf-8"))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, snap)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise _spool_error(self.path, exc, "write the snapshot of") from exc
        if not _punch_hole(fd, start, end - start):
            return 0
        self.released = end
        return end - start

    def _cut_back(self, cause: OSError | None) -> None:
        """Truncate the file to ``size`` (the end of the last whole frame)."""
        try:
            if os.fstat(self._fd).st_size != self.size:
                os.ftruncate(self._fd, self.size)
        except OSError as exc:
            self._torn = True
            if cause is None:
                raise _spool_error(self.path, exc, "repair a failed append to") from exc
            return
        self._torn = False

    def close(self) -> None:
        """Close the descriptor, releasing the lock."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


@dataclass(slots=True)
class FrameRead:
    """Frames read from a spool: ``(offset, payload)`` pairs and where reading stopped."""

    frames: list[tuple[int, memoryview]]
    end: int
    corrupt_at: int | None = None


def read_frames(fd: int, start: int, max_bytes: int = 4 * 1024 * 1024) -> FrameRead:
    """Read whole frames from ``start``, about ``max_bytes`` at most.

    Stops at EOF, at an incomplete tail frame (not an error: it may still be being written,
    or a write was cut short), or at a CRC mismatch (``corrupt_at`` is set).
    """
    buf = os.pread(fd, max_bytes, start)
    view = memoryview(buf)
    frames: list[tuple[int, memoryview]] = []
    off = 0
    n = len(buf)
    unpack = FRAME_HEADER.unpack_from
    crc32 = zlib.crc32
    while off + _HDR <= n:
        length, crc = unpack(view, off)
        end = off + _HDR + length
        if end > n:
            if length > MAX_FRAME_BYTES:
                return FrameRead(frames, start + off, corrupt_at=start + off)
            if not frames and length + _HDR > max_bytes:
                # one frame larger than the read window: read exactly it
                big = os.pread(fd, _HDR + length, start + off)
                if len(big) == _HDR + length and crc32(big[_HDR:]) == crc:
                    return FrameRead(
                        [(start + off, memoryview(big)[_HDR:])], start + off + len(big)
                    )
            break
        payload = view[off + _HDR : end]
        if not length or crc32(payload) != crc:
            return FrameRead(frames, start + off, corrupt_at=start + off)
        frames.append((start + off, payload))
        off = end
    return FrameRead(frames, start + off)


def iter_all_frames(path: Path) -> Iterator[tuple[int, memoryview]]:
    """Every readable frame of a spool file, from the start (for tools and tests)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        pos = 0
        while True:
            got = read_frames(fd, pos)
            if not got.frames:
                return
            yield from got.frames
            pos = got.end
    finally:
        os.close(fd)
