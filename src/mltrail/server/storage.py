"""Where a server keeps bytes: a local directory, or any fsspec URL (``s3://bucket/prefix``,
``gs://``, ``az://``, ...) so that many replicas on many hosts serve the same data.

Both layouts are the same under the root: run files at ``files/sha256/<2 hex>/<64 hex>``
(:mod:`mltrail.server.filestore`), content-addressed objects (data and artifact versions) at
``objects/<algo>/<2 hex>/<rest>`` (:mod:`mltrail.objects.layout`). Artifact versions and run
files are *indexed* in the database; only bytes live here.

With a URL, a replica holds no state another replica needs:

- an upload streams into a private scratch folder of this replica (a fresh temp directory,
  removed when the app stops), is verified there, and only then is written to the object
  store under its digest (one PUT: an object appears whole or not at all);
- reads go to the object store, with no listing cache (s3fs's ``use_listings_cache`` off),
  so an object another replica stored a moment ago is found;
- run-file downloads are served from a read-through copy in the scratch folder, keyed by
  the content's digest: content under a digest never changes, so it can never be stale,
  and losing it costs one download.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltrail.errors import InvalidArgumentError, NotFoundError
from mltrail.server.filestore import FileStore

if TYPE_CHECKING:
    from collections.abc import Callable

    from mltrail.objects.base import ObjectStore

__all__ = ["RemoteFileStore", "ServerStorage", "is_url", "open_storage"]

_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
#: fsspec options that keep a replica from answering from a stale listing
NO_LISTING_CACHE: dict[str, Any] = {"use_listings_cache": False}
_LOCAL_PROTOCOLS = frozenset({"file", "local"})


def is_url(artifacts: str) -> bool:
    """Whether ``artifacts`` names an object store (a URL) rather than a local directory."""
    match = _URL.match(artifacts)
    return match is not None and match.group(1).lower() not in _LOCAL_PROTOCOLS


def _files_key(digest: str) -> str:
    hexdigest = digest.removeprefix("sha256:")
    return f"files/sha256/{hexdigest[:2]}/{hexdigest}"


class RemoteFileStore(FileStore):
    """Run files in an object store under ``<url>/files``; uploads in flight and a
    read-through copy of downloaded content in a local scratch folder (see the module doc).

    Args:
        url: the artifacts root (any fsspec URL).
        scratch: this replica's private folder.
    """

    def __init__(self, url: str, scratch: Path) -> None:
        from mltrail.objects.fsspec_store import filesystem

        super().__init__(scratch)
        self.url = url.rstrip("/")
        protocol = url.split("://", 1)[0].lower()
        opts = NO_LISTING_CACHE if protocol not in _LOCAL_PROTOCOLS else {}
        self._fs, root = filesystem(self.url, **opts)
        self._root = str(root).rstrip("/")

    def _key(self, digest: str) -> str:
        return f"{self._root}/{_files_key(digest)}"

    def exists(self, digest: str) -> bool:
        """Whether the object store holds the content ``digest``."""
        return bool(self._fs.exists(self._key(digest)))

    def place(self, tmp: Path, digest: str) -> None:
        """Write the verified temp file to the object store (once per content), then keep
        it as this replica's read-through copy."""
        key = self._key(digest)
        if not self._fs.exists(key):
            self._fs.makedirs(key.rsplit("/", 1)[0], exist_ok=True)
            self._fs.put_file(os.fspath(tmp), key)
        super().place(tmp, digest)

    def open_path(self, digest: str, size: int | None = None) -> Path:
        """A local file with the content ``digest`` (downloaded and verified on first use).

        Raises:
            NotFoundError: the object store does not hold it (or holds other bytes).
        """
        local = self.path_for(digest)
        with contextlib.suppress(FileNotFoundError):
            if size is None or local.stat().st_size == size:
                return local
        tmp = self.temp_path()
        try:
            try:
                self._fs.get_file(self._key(digest), os.fspath(tmp))
            except FileNotFoundError:
                raise NotFoundError(
                    f"the content {digest} is missing from the file store {self.url}"
                ) from None
            hasher = hashlib.sha256()
            with open(tmp, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    hasher.update(block)
            if f"sha256:{hasher.hexdigest()}" != digest:
                raise NotFoundError(f"the content {digest} is damaged in the file store {self.url}")
            self._place(tmp, local)
        finally:
            tmp.unlink(missing_ok=True)
        return super().open_path(digest, size)


class ServerStorage:
    """A server's run files and objects (see the module docstring).

    Attributes:
        files: the run-file store.
        objects: the object store (a local directory or an fsspec store).
        root: the artifacts root as given (a folder or a URL).
    """

    def __init__(
        self, root: str, files: FileStore, objects: ObjectStore, cleanup: Callable[[], None]
    ) -> None:
        self.root = root
        self.files = files
        self.objects = objects
        self._cleanup = cleanup

    @property
    def presigns(self) -> bool:
        """Whether objects can be handed out as presigned URLs (an S3-like object store)."""
        from mltrail.objects.fsspec_store import FsspecObjectStore

        return isinstance(self.objects, FsspecObjectStore) and self.objects.protocol in (
            "s3",
            "s3a",
            "gs",
            "gcs",
        )

    def presigned_url(self, digest: str, expires_s: int) -> str:
        """A URL that reads the object ``digest`` for ``expires_s`` seconds, no token needed.

        Raises:
            InvalidArgumentError: the object store cannot sign URLs.
        """
        from mltrail.objects.fsspec_store import FsspecObjectStore

        if not self.presigns or not isinstance(self.objects, FsspecObjectStore):
            raise InvalidArgumentError(f"the artifacts root {self.root} cannot sign URLs")
        return str(self.objects.fs.sign(self.objects.path(digest), expiration=expires_s))

    def close(self) -> None:
        """Release the object store and remove this replica's scratch folder."""
        with contextlib.suppress(Exception):
            self.objects.close()
        self._cleanup()


def open_storage(artifacts: str) -> ServerStorage:
    """The storage of a server whose artifacts root is ``artifacts`` (a folder or a URL).

    Raises:
        InvalidArgumentError: the root cannot be used (the message names it).
        StoreError: the URL's backend is not installed (names the extra).
    """
    if not is_url(artifacts):
        from mltrail.server.objects_api import open_objects

        root = Path(artifacts.removeprefix("file://")).expanduser()
        try:
            files = FileStore(root)
            objects: ObjectStore = open_objects(root)
        except OSError as exc:
            raise InvalidArgumentError(
                f"artifacts root {root}: cannot be used ({exc.strerror or exc})"
            ) from None
        return ServerStorage(str(root), files, objects, lambda: None)
    from mltrail.objects.fsspec_store import FsspecObjectStore
    from mltrail.objects.registry import BACKENDS, scheme_of

    backend = BACKENDS.get(scheme_of(artifacts))
    if backend is not None and backend.requires:
        import importlib.util

        for module in backend.requires:
            if importlib.util.find_spec(module) is None:
                from mltrail.errors import StoreError

                raise StoreError(
                    f"--artifacts {artifacts}: needs {module} "
                    f"(install it with: pip install '{backend.install}')"
                )
    scratch = Path(tempfile.mkdtemp(prefix="mltrail-server-"))
    try:
        files = RemoteFileStore(artifacts, scratch)
        objects = FsspecObjectStore(f"{artifacts.rstrip('/')}/objects", **NO_LISTING_CACHE)
        objects.create()
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return ServerStorage(
        artifacts, files, objects, lambda: shutil.rmtree(scratch, ignore_errors=True)
    )
