"""Object stores on any fsspec filesystem: S3 (and S3-compatible servers), GCS, Azure, memory.

``open_object_store("s3://bucket/prefix")`` returns a :class:`FsspecObjectStore` (so does any
URL whose scheme fsspec knows: ``gs://``, ``az://``, ``memory://``, ``local://``, ...). It is
a :class:`~mltrail.objects.base.PrunableObjectStore` and a
:class:`~mltrail.objects.base.BulkObjectStore`: transfers reach it through batched ``pipe`` /
``cat`` (s3fs runs them concurrently) and whole-file ``put_file`` / ``get_file``. Objects are
uploaded whole where one PUT is atomic (the object stores, ``memory://``), else through a
temp key and a move. fsspec (and s3fs) are imported only here.
"""

from __future__ import annotations

import contextlib
import errno
import os
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any, NamedTuple

from mltrail.errors import InvalidArgumentError, NotFoundError
from mltrail.objects._fs import TEMP_GRACE_S, TEMP_PREFIX, is_stale_temp, temp_name
from mltrail.objects._shared import StoreMixin
from mltrail.objects.digest import DEFAULT_ALGO, hash_bytes
from mltrail.objects.layout import digest_from_parts, object_key
from mltrail.objects.verify import checked_file_digest, verify_bytes, verify_file

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from mltrail.objects.base import BulkObjectStore, PrunableObjectStore

__all__ = ["FsspecObjectStore", "RemoteListing", "filesystem", "info_mtime"]

# Protocols whose single PUT is atomic (an object appears whole or not at all).
_ATOMIC_PROTOCOLS = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "memory"})


class RemoteListing(NamedTuple):
    """What :meth:`FsspecObjectStore.scan` found: objects (digest -> (size, mtime)) and temp
    files ((path, mtime)); a time is None when the filesystem does not say."""

    objects: dict[str, tuple[int | None, float | None]]
    temps: list[tuple[str, float | None]]


def info_mtime(info: dict[str, Any]) -> float | None:
    """The modification time (POSIX seconds) in an fsspec ``info`` dict, if it has one."""
    for key in ("mtime", "LastModified", "last_modified", "modified", "created"):
        value = info.get(key)
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return None


def filesystem(url: str, **storage_options: Any) -> tuple[Any, str]:
    """``(fsspec filesystem, path)`` for ``url``, with the same settings a store gets.

    ``s3://`` URLs use ``MLTRAIL_S3_ENDPOINT`` (:attr:`mltrail.settings.Settings.
    s3_endpoint`: a custom endpoint, e.g. SeaweedFS or MinIO) unless ``endpoint_url`` is
    given; credentials come from the usual ``AWS_*`` variables.

    Raises:
        InvalidArgumentError: fsspec cannot open ``url`` (unknown protocol, bad options).
    """
    import fsspec

    from mltrail.settings import settings

    protocol = url.split("://", 1)[0].lower() if "://" in url else "file"
    opts = dict(storage_options)
    if protocol in ("s3", "s3a"):
        endpoint = settings().s3_endpoint
        if endpoint and "endpoint_url" not in opts:
            opts["endpoint_url"] = endpoint
    try:
        fs, path = fsspec.core.url_to_fs(url, **opts)
    except (ImportError, ValueError) as exc:
        raise InvalidArgumentError(f"url: cannot open {url!r}: {exc}") from None
    return fs, str(path)


class FsspecObjectStore(StoreMixin):
    """An object store on any fsspec filesystem (S3, GCS, Azure, memory, SFTP, ...)."""

    def __init__(self, url: str | os.PathLike[str], **storage_options: Any) -> None:
        text = os.fspath(url)
        protocol = text.split("://", 1)[0].lower()
        self.fs, root = filesystem(text, **storage_options)
        self.root = str(root).rstrip("/")
        self.url = text
        self.protocol = protocol
        self.atomic_put = protocol in _ATOMIC_PROTOCOLS

    def _path(self, digest: str) -> str:
        return f"{self.root}/{object_key(digest)}"

    def path(self, digest: str) -> str:
        """The object's path on the filesystem (without protocol)."""
        return self._path(digest)

    def create(self) -> None:
        """Create the root (the bucket, for S3) if it does not exist."""
        self.fs.makedirs(self.root, exist_ok=True)

    def exists(self, digest: str) -> bool:  # noqa: D102
        return bool(self.fs.exists(self._path(digest)))

    def exists_many(self, digests: Iterable[str]) -> set[str]:  # noqa: D102
        wanted = set(digests)
        if not wanted:
            return set()
        if len(wanted) <= 1024:
            # A HEAD per object (32 in flight) beats listing a remote that may hold millions.
            ordered = sorted(wanted)
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(min(32, len(ordered))) as pool:
                flags = list(pool.map(self.exists, ordered))
            return {d for d, ok in zip(ordered, flags, strict=True) if ok}
        return wanted & set(self.iter_digests())

    def size(self, digest: str) -> int:  # noqa: D102
        try:
            return int(self.fs.size(self._path(digest)))
        except FileNotFoundError:
            raise NotFoundError(f"object {digest} is not in {self.url}") from None

    def put_many(self, items: dict[str, bytes], *, verified: bool = False) -> None:
        """Upload objects (digest -> bytes) concurrently, each hashed first unless
        ``verified``."""
        if not items:
            return
        if not verified:
            for digest, data in items.items():
                verify_bytes(digest, data, "data to store")
        paths = {self._path(d): data for d, data in items.items()}
        if self.atomic_put:
            self.fs.pipe(paths)
            return
        for path, data in paths.items():
            self._put_atomic_bytes(path, data)

    def _put_atomic_bytes(self, path: str, data: bytes) -> None:
        parent = path.rsplit("/", 1)[0]
        self.fs.makedirs(parent, exist_ok=True)
        tmp = f"{parent}/{temp_name(path.rsplit('/', 1)[1])}"
        try:
            self.fs.pipe_file(tmp, data)
            self.fs.mv(tmp, path)
        except BaseException:
            with contextlib.suppress(Exception):
                self.fs.rm_file(tmp)
            raise

    def put_local_file(
        self, digest: str, local: str | os.PathLike[str], *, verified: bool = False
    ) -> None:
        """Upload the local file ``local`` as ``digest``, hashed first unless ``verified``."""
        if not verified:
            verify_file(digest, local)
        path = self._path(digest)
        if self.atomic_put:
            self.fs.put_file(os.fspath(local), path)
            return
        parent = path.rsplit("/", 1)[0]
        self.fs.makedirs(parent, exist_ok=True)
        tmp = f"{parent}/{temp_name(path.rsplit('/', 1)[1])}"
        try:
            self.fs.put_file(os.fspath(local), tmp)
            self.fs.mv(tmp, path)
        except BaseException:
            with contextlib.suppress(Exception):
                self.fs.rm_file(tmp)
            raise

    def get_many(self, digests: Iterable[str]) -> dict[str, bytes | BaseException]:
        """Download objects concurrently (unverified): digest -> bytes, or the error."""
        by_path = {self._path(d): d for d in digests}
        if not by_path:
            return {}
        got = self.fs.cat(list(by_path), on_error="return")
        if not isinstance(got, dict):  # a single path returns bytes
            got = {next(iter(by_path)): got}
        out: dict[str, bytes | BaseException] = {}
        for path, digest in by_path.items():
            value = got.get(path, FileNotFoundError(errno.ENOENT, "missing", path))
            out[digest] = value
        return out

    def get_to_local(self, digest: str, local: str | os.PathLike[str]) -> None:
        """Download an object into the local file ``local`` (unverified)."""
        try:
            self.fs.get_file(self._path(digest), os.fspath(local))
        except FileNotFoundError:
            raise NotFoundError(f"object {digest} is not in {self.url}") from None

    def add_bytes(  # noqa: D102
        self, data: bytes, *, algo: str = DEFAULT_ALGO, tree: bool = False
    ) -> str:
        digest = hash_bytes(data, algo, tree=tree)
        if not self.exists(digest):
            self.put_many({digest: data}, verified=True)
        return digest

    def add_file(  # noqa: D102
        self, path: str | os.PathLike[str], digest: str | None = None
    ) -> str:
        actual = checked_file_digest(path, digest)
        if not self.exists(actual):
            self.put_local_file(actual, path, verified=True)
        return actual

    def read_bytes(self, digest: str, *, verify: bool = True) -> bytes:  # noqa: D102
        path = self._path(digest)
        try:
            data = bytes(self.fs.cat_file(path))
        except FileNotFoundError:
            raise NotFoundError(f"object {digest} is not in {self.url}") from None
        if verify:
            verify_bytes(digest, data, f"{self.url}/{object_key(digest)}")
        return data

    def open(self, digest: str) -> IO[bytes]:  # noqa: D102
        try:
            return self.fs.open(self._path(digest), "rb")  # type: ignore[no-any-return]
        except FileNotFoundError:
            raise NotFoundError(f"object {digest} is not in {self.url}") from None

    def iter_digests(self) -> Iterator[str]:  # noqa: D102
        with contextlib.suppress(AttributeError):
            self.fs.invalidate_cache(self.root)
        try:
            found = self.fs.find(self.root)
        except FileNotFoundError:
            return
        prefix = self.root + "/" if self.root else ""
        for full in sorted(found):
            rel = full[len(prefix) :] if full.startswith(prefix) else full
            parts = rel.split("/")
            if len(parts) != 3:
                continue
            digest = digest_from_parts(*parts)
            if digest is not None:
                yield digest

    def scan(self) -> RemoteListing:
        """One detailed listing: every object (size, mtime) and every temp file (mtime)."""
        with contextlib.suppress(AttributeError):
            self.fs.invalidate_cache(self.root)
        out = RemoteListing({}, [])
        try:
            found = self.fs.find(self.root, detail=True)
        except FileNotFoundError:
            return out
        prefix = self.root + "/" if self.root else ""
        for full, info in sorted(found.items()):
            rel = full[len(prefix) :] if full.startswith(prefix) else full
            parts = rel.split("/")
            if len(parts) != 3:
                continue
            mtime = info_mtime(info)
            if parts[2].startswith(TEMP_PREFIX):
                out.temps.append((full, mtime))
                continue
            digest = digest_from_parts(*parts)
            if digest is not None:
                size = info.get("size")
                out.objects[digest] = (size if isinstance(size, int) else None, mtime)
        return out

    def sweep_temps(  # noqa: D102
        self, dirs: Iterable[str] | None = None, *, grace_s: float = TEMP_GRACE_S
    ) -> int:
        import time

        temps: list[tuple[str, float | None]] = []
        try:
            if dirs is None:
                temps = self.scan().temps
            else:
                for d in dirs:
                    with contextlib.suppress(FileNotFoundError):
                        for info in self.fs.ls(d, detail=True, refresh=True):
                            name = str(info.get("name", ""))
                            if name.rsplit("/", 1)[-1].startswith(TEMP_PREFIX):
                                temps.append((name, info_mtime(info)))
        except OSError:
            return 0
        now = time.time()
        removed = 0
        for path, mtime in temps:
            age = None if mtime is None else now - mtime
            if is_stale_temp(path.rsplit("/", 1)[-1], age, grace_s=grace_s):
                try:
                    self.fs.rm_file(path)
                except OSError:
                    continue
                removed += 1
        return removed

    def shard_dir(self, digest: str) -> str:
        """The directory (prefix) the object ``digest`` is stored under."""
        return self._path(digest).rsplit("/", 1)[0]

    def remove(self, digest: str) -> None:  # noqa: D102
        self._forget_tree(digest)
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self._path(digest))


if TYPE_CHECKING:  # the backend satisfies its protocols (checked by mypy)
    _prunable: type[PrunableObjectStore] = FsspecObjectStore
    _bulk: type[BulkObjectStore] = FsspecObjectStore
