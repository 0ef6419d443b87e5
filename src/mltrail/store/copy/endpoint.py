"""One side of a copy or a check: a tracking store with where its bytes live.

A tracking store keeps runs; the bytes around them live beside it:

- artifact objects in an object store (:mod:`mltrail.objects`): ``<root>/objects`` under an
  explicit artifacts root (a folder or any fsspec URL, the server layout), else where the SDK
  puts them (:func:`mltrail.artifacts.storage.storage_for`), or a server's
  ``/api/v1/objects``;
- run files (``PUT /api/v1/runs/{id}/files``): indexed in the database
  (:class:`~mltrail.store.optional.HasRunFiles`), their bytes under ``<root>/files`` by
  SHA-256 (the layout of :mod:`mltrail.server.filestore`), or a server's
  ``/api/v1/runs/{id}/files`` routes.

Everything goes through the stores' public protocols, so any pair of backends works.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

from mltrail.errors import DigestMismatchError, NotFoundError

if TYPE_CHECKING:
    from mltrail.objects.base import ObjectStore
    from mltrail.store.base import TrackingStore
    from mltrail.store.registry import StoreLocation
    from mltrail.store.run_files import RunFile

__all__ = ["Endpoint", "RunFileBytes", "files_key", "open_endpoint"]


def files_key(digest: str) -> str:
    """Where a run file's bytes live under an artifacts root: ``files/sha256/ab/<64 hex>``."""
    hexdigest = digest.removeprefix("sha256:")
    return f"files/sha256/{hexdigest[:2]}/{hexdigest}"


class RunFileBytes(Protocol):
    """A store's run files: the index and the bytes."""

    def list(self, run_id: str) -> list[RunFile]:
        """The run's files, by path."""
        ...

    def read(self, run_id: str, record: RunFile) -> bytes:
        """The bytes of one file (verified against its digest).

        Raises:
            NotFoundError: the bytes are missing. DigestMismatchError: they are damaged.
        """
        ...

    def put(self, run_id: str, path: str, data: bytes) -> None:
        """Store ``data`` as ``path`` of ``run_id`` (idempotent)."""
        ...


def _check(data: bytes, record: RunFile, where: str) -> bytes:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    if digest != record.digest:
        raise DigestMismatchError(f"run file {record.path!r} in {where} hashes to {digest}")
    return data


class _RootFiles:
    """Run files of an SQL store: the index in the database, the bytes under a root."""

    def __init__(self, store: Any, root: str) -> None:
        from mltrail.objects.fsspec_store import filesystem

        self._index = store.run_files()
        self.root = root
        self._fs, self._path = filesystem(root)
        self._path = self._path.rstrip("/")

    def list(self, run_id: str) -> list[RunFile]:
        return list(self._index.list(run_id))

    def read(self, run_id: str, record: RunFile) -> bytes:
        try:
            data = bytes(self._fs.cat_file(f"{self._path}/{files_key(record.digest)}"))
        except FileNotFoundError:
            raise NotFoundError(
                f"run file {record.path!r} of run {run_id}: {record.digest} is missing "
                f"from {self.root}"
            ) from None
        return _check(data, record, self.root)

    def put(self, run_id: str, path: str, data: bytes) -> None:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        target = f"{self._path}/{files_key(digest)}"
        if not self._fs.exists(target):
            import secrets

            folder, name = target.rsplit("/", 1)
            self._fs.makedirs(folder, exist_ok=True)
            tmp = f"{folder}/.tmp-{secrets.token_hex(8)}-{name}"
            self._fs.pipe_file(tmp, data)  # whole, then renamed: never half a file by name
            self._fs.mv(tmp, target)
        self._index.put(run_id, path, digest, len(data))


class _ServerFiles:
    """Run files of a server, through its REST routes."""

    def __init__(self, store: Any) -> None:
        self._request = store.request
        self.root = store.uri

    def list(self, run_id: str) -> list[RunFile]:
        from mltrail.store.run_files import RunFile

        _, _, body = self._request("GET", f"/api/v1/runs/{quote(run_id)}/files")
        import json

        return [RunFile(run_id=run_id, **f) for f in json.loads(body)["files"]]

    def read(self, run_id: str, record: RunFile) -> bytes:
        _, _, data = self._request(
            "GET",
            f"/api/v1/runs/{quote(run_id)}/files/content",
            query={"path": record.path},
            accept="application/octet-stream",
        )
        return _check(data, record, self.root)

    def put(self, run_id: str, path: str, data: bytes) -> None:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        self._request(
            "PUT",
            f"/api/v1/runs/{quote(run_id)}/files?path={quote(path, safe='')}",
            body=data,
            content_type="application/octet-stream",
            headers={"X-Content-Digest": digest},
        )


@dataclass
class Endpoint:
    """A tracking store and the places of its bytes (either may be None: not kept there).

    Attributes:
        display: the store, safe to print.
        store: the tracking store.
        objects: the artifact object store, if the store has one.
        files: the run files, if the store keeps any.
        root: the artifacts root (a folder or URL) the bytes live under, if any.
    """

    display: str
    store: TrackingStore
    objects: ObjectStore | None = None
    files: RunFileBytes | None = None
    root: str | None = None
    _closers: list[Any] = field(default_factory=list)

    def close(self) -> None:
        """Close the stores this endpoint opened."""
        for closer in self._closers:
            with contextlib.suppress(Exception):
                closer()


def _default_root(location: StoreLocation) -> str | None:
    if location.embedded:
        return str(Path(location.display) / "artifacts")
    if location.scheme == "sqlite":
        db = Path(location.uri[len("sqlite:///") :])
        return str(db.parent / f"{db.stem}.artifacts")
    return None


def open_endpoint(
    uri: str,
    artifacts: str | None = None,
    *,
    create: bool = False,
    migrate: bool | None = None,
) -> Endpoint:
    """Open the store at ``uri`` with its bytes (``artifacts``: the root of its run files and
    objects, a folder or fsspec URL, as given to ``mltrail server --artifacts``).

    Args:
        create: the destination of a copy (roots are created when missing).
        migrate: upgrade an older schema; None: the store's default (SQLite yes,
            PostgreSQL no: ``mltrail db upgrade``); a check passes False.

    Raises:
        StoreError, InvalidArgumentError: the store cannot be opened.
    """
    from mltrail.objects.registry import open_object_store
    from mltrail.store.http import HttpTrackingStore
    from mltrail.store.optional import HasRunFiles
    from mltrail.store.registry import open_store, resolve_location

    location = resolve_location(uri)
    store = open_store(location, shared=False, migrate=migrate)
    end = Endpoint(location.display, store, _closers=[store.close])
    try:
        if isinstance(store, HttpTrackingStore):
            end.objects = open_object_store(location.uri)
            end.files = _ServerFiles(store)
            end.root = location.uri
        else:
            root = artifacts or _default_root(location)
            if root is not None and (create or _exists(root)):
                end.root = root
                end.files = _RootFiles(store, root) if isinstance(store, HasRunFiles) else None
                end.objects = open_object_store(_join(root, "objects"))
            elif artifacts is None:
                from mltrail.artifacts.storage import storage_for

                storage = storage_for(location)
                end.objects = open_object_store(storage.remote or str(storage.cache_root))
        if end.objects is not None:
            end._closers.append(end.objects.close)
    except BaseException:
        end.close()
        raise
    return end


def _join(root: str, name: str) -> str:
    return f"{root.rstrip('/')}/{name}"


def _exists(root: str) -> bool:
    from mltrail.objects.fsspec_store import filesystem

    fs, path = filesystem(root)
    return bool(fs.exists(path))
