"""Content-addressed file store for run files under the server's artifacts root.

Bytes are stored by their SHA-256 only: ``<root>/files/sha256/<2 hex>/<64 hex>``. A client's
path is a logical name kept in the ``run_files`` table and is never joined to a disk path.

An upload streams into ``<root>/files/tmp/<host>-<pid>-<random>.part`` while hashing; the
digest (and the size, when declared) must match what the client declared, else the temp file
is removed and nothing is stored. A verified file is fsynced, renamed into place (atomic; the
same content uploaded twice is stored once) and its folder fsynced. :meth:`FileStore.sweep`
(run at server start) removes temp files left by dead processes, so a crash mid-upload leaves
nothing behind. Several server processes may share one root.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING

from mltrail.errors import (
    DigestMismatchError,
    InvalidArgumentError,
    NotFoundError,
    PayloadTooLargeError,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ["DigestMismatchError", "FileStore", "check_digest"]

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_TMP_SUFFIX = ".part"
#: temp files of another host's processes cannot be checked for liveness: kept this long
_FOREIGN_TMP_MAX_AGE_S = 24 * 3600


def check_digest(digest: object, field: str = "digest") -> str:
    """A ``sha256:<64 lowercase hex>`` digest, or :class:`InvalidArgumentError` (422)."""
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise InvalidArgumentError(f"{field} must be sha256:<64 lowercase hex digits>")
    return digest


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileStore:
    """Files by SHA-256 under ``root/files``.

    Args:
        root: the artifacts root (a local directory; created if missing).
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self._objects = self.root / "files" / "sha256"
        self._tmp = self.root / "files" / "tmp"
        self._objects.mkdir(parents=True, exist_ok=True)
        self._tmp.mkdir(parents=True, exist_ok=True)
        self._host = socket.gethostname().replace("-", "_")[:64] or "host"

    def path_for(self, digest: str) -> Path:
        """Where the bytes of ``digest`` live (whether or not they exist yet)."""
        hexdigest = check_digest(digest)[len("sha256:") :]
        return self._objects / hexdigest[:2] / hexdigest

    def exists(self, digest: str) -> bool:
        """Whether the bytes of ``digest`` are stored."""
        return self.path_for(digest).is_file()

    def open_path(self, digest: str, size: int | None = None) -> Path:
        """The stored file of ``digest``, checked to exist (and to have ``size`` bytes).

        Raises:
            NotFoundError: missing, or its size differs from the recorded one.
        """
        path = self.path_for(digest)
        try:
            actual = path.stat().st_size
        except FileNotFoundError:
            raise NotFoundError(f"the content {digest} is missing from the file store") from None
        if size is not None and actual != size:
            raise NotFoundError(f"the content {digest} is damaged in the file store")
        return path

    async def put(
        self,
        chunks: AsyncIterator[bytes],
        expected_digest: str,
        *,
        expected_size: int | None = None,
        max_bytes: int,
    ) -> tuple[str, int]:
        """Stream ``chunks`` in, verify, and store them under their digest.

        Returns:
            ``(digest, size)``.

        Raises:
            DigestMismatchError: the bytes hash (or count) differently from what was declared.
            PayloadTooLargeError: more than ``max_bytes`` arrived.
        """
        import anyio

        tmp, digest, size = await self.receive(
            chunks, expected_digest, expected_size=expected_size, max_bytes=max_bytes
        )
        try:
            await anyio.to_thread.run_sync(self.place, tmp, digest)
        finally:
            tmp.unlink(missing_ok=True)
        return digest, size

    async def receive(
        self,
        chunks: AsyncIterator[bytes],
        expected_digest: str,
        *,
        expected_size: int | None = None,
        max_bytes: int,
    ) -> tuple[Path, str, int]:
        """Stream ``chunks`` into a synced temp file and verify them: ``(temp, digest, size)``
        (the caller places or removes the temp file; nothing is left on failure).

        Raises:
            DigestMismatchError, PayloadTooLargeError: as :meth:`put`.
        """
        import anyio

        check_digest(expected_digest, "X-Content-Digest")
        tmp = self.temp_path()
        hasher = hashlib.sha256()
        size = 0
        done = False
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            try:
                async for chunk in chunks:
                    if not chunk:
                        continue
                    size += len(chunk)
                    if size > max_bytes:
                        raise PayloadTooLargeError(f"upload is over the limit of {max_bytes} bytes")
                    hasher.update(chunk)
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(fd, view) :]
                digest = f"sha256:{hasher.hexdigest()}"
                if expected_size is not None and size != expected_size:
                    raise DigestMismatchError(
                        f"upload has {size} bytes but {expected_size} were declared"
                    )
                if digest != expected_digest:
                    raise DigestMismatchError(
                        f"uploaded bytes hash to {digest}, not the declared {expected_digest}"
                    )
                await anyio.to_thread.run_sync(os.fsync, fd)
            finally:
                os.close(fd)
            done = True
        finally:
            if not done:
                tmp.unlink(missing_ok=True)
        return tmp, digest, size

    def place(self, tmp: Path, digest: str) -> None:
        """Give the verified temp file ``tmp`` its name ``digest`` (atomic; a copy already
        stored is kept and ``tmp`` removed)."""
        self._place(tmp, self.path_for(digest))

    @staticmethod
    def _place(tmp: Path, final: Path) -> None:
        if final.is_file():  # same content stored before: keep the first copy
            tmp.unlink(missing_ok=True)
            return
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, final)
        _fsync_dir(final.parent)

    def temp_path(self) -> Path:
        """A fresh temp-file path in the upload area (removed by :meth:`sweep` if abandoned)."""
        return self._tmp / f"{self._host}-{os.getpid()}-{secrets.token_hex(8)}{_TMP_SUFFIX}"

    def sweep(self) -> int:
        """Remove temp files of dead uploads; returns how many were removed.

        A temp file of this host whose process is gone is removed; another host's is removed
        once a day old (this host cannot tell whether that process lives).
        """
        removed = 0
        now = time.time()
        for tmp in self._tmp.glob(f"*{_TMP_SUFFIX}"):
            host, _, rest = tmp.name.partition("-")
            pid_text = rest.partition("-")[0]
            if host == self._host and pid_text.isdigit():
                dead = int(pid_text) != os.getpid() and not _pid_alive(int(pid_text))
            else:
                try:
                    dead = now - tmp.stat().st_mtime > _FOREIGN_TMP_MAX_AGE_S
                except FileNotFoundError:
                    continue
            if dead:
                tmp.unlink(missing_ok=True)
                removed += 1
        return removed
