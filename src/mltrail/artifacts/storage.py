"""Where artifact bytes live, and the two moves on them: store a path, materialise a digest.

Every call into :mod:`mltrail.objects` (hashing, trees, the cache, checkout, transfers) is in
this module, so the rest of ``artifacts/`` sees only digests and paths.

Locations:

- an explicit ``artifacts=`` (``mltrail.init``) or ``MLTRAIL_ARTIFACTS``: a directory, or an
  fsspec URL (``s3://bucket/prefix``) whose objects are cached locally in
  ``<cache_dir>/objects``;
- else, an embedded store (a folder like ``.mltrail/``) keeps them in its ``objects/``;
- else, a server (``http(s)://host:port``) keeps them (``/api/v1/objects``): they are hashed
  into ``<cache_dir>/objects`` and pushed before a version is recorded, and pulled (verified)
  into that cache before a checkout;
- else (``sqlite:///``, ``postgresql://``): ``<cache_dir>/objects``.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mltrail.errors import InvalidArgumentError, NotFoundError
from mltrail.settings import settings

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mltrail.objects.base import ObjectStore
    from mltrail.objects.cache import Cache
    from mltrail.store.registry import StoreLocation

__all__ = ["ArtifactStorage", "Staged", "storage_for"]

_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


@dataclass(frozen=True, slots=True)
class Staged:
    """What storing a path produced."""

    digest: str
    kind: str  # file | tree
    size: int
    file_count: int


@dataclass(frozen=True, slots=True)
class ArtifactStorage:
    """The object store artifacts use.

    Attributes:
        cache_root: the local object cache (a directory).
        remote: an fsspec URL the objects are pushed to and pulled from, or None when the
            cache is the storage itself.
    """

    cache_root: Path
    remote: str | None = None

    @property
    def display(self) -> str:
        """Where the objects are, for messages."""
        return self.remote or str(self.cache_root)

    def store_path(self, path: Path, *, progress: bool = False) -> Staged:
        """Hash ``path`` (a file or a directory) into the cache (and push it to the remote).

        Raises:
            NotFoundError: ``path`` does not exist.
            UnsafePathError: a symlink in a directory points outside it.
        """
        from mltrail.objects.build import build
        from mltrail.objects.cache import Cache

        if not path.exists() and not path.is_symlink():
            raise NotFoundError(f"artifact path {str(path)!r} does not exist")
        # reflink or copy, never hardlink: a logged file stays the user's, writable and
        # independent of the cache (a script that overwrites its checkpoint after logging
        # it must neither fail on a read-only file nor corrupt the stored version)
        # the cache's shared lock keeps a concurrent gc from collecting what is being added
        with Cache(self.cache_root, link_mode="reflink") as cache, cache.lock():
            digest, tree, size, count = build(path, cache, progress=progress)
            if self.remote is not None:
                from mltrail.objects.transfer import push

                with _remote(self.remote) as remote:
                    push(cache, remote, {digest}, progress=progress)  # trees expand
        return Staged(digest, "tree" if tree is not None else "file", int(size), int(count))

    def materialise(self, digest: str, dest: Path, *, progress: bool = False) -> None:
        """Check ``digest`` out at ``dest`` (a file path, or a directory for a tree), verified.

        Objects missing from the cache are pulled from the remote first.

        Raises:
            NotFoundError: the objects are neither in the cache nor in the remote.
            CorruptObjectError: a stored object does not match its digest (names it).
            UnsafePathError: the tree would write outside ``dest``.
        """
        from mltrail.objects.cache import Cache
        from mltrail.objects.checkout import checkout

        with Cache(self.cache_root) as cache, cache.lock():
            if self.remote is not None:
                self._pull(cache, digest, progress)
            if not cache.exists(digest):
                raise NotFoundError(
                    f"object {digest} is not in the artifact storage {self.display}; it was "
                    "logged on another machine or with another MLTRAIL_ARTIFACTS location"
                )
            checkout(digest, cache, dest, progress=progress)

    def _pull(self, cache: Cache, digest: str, progress: bool) -> None:
        from mltrail.objects.transfer import pull

        with _remote(self.remote or "") as remote:
            result = pull(remote, cache, {digest}, progress=progress)
        if result.missing:
            raise NotFoundError(
                f"object(s) {', '.join(sorted(result.missing)[:3])} of {digest} are not in "
                f"the artifact storage {self.display}"
            )


@contextlib.contextmanager
def _remote(url: str) -> Iterator[ObjectStore]:
    """The remote object store at ``url``, closed afterwards (a server's keeps sockets open)."""
    from mltrail.objects.registry import open_object_store

    odb = open_object_store(url)
    try:
        yield odb
    finally:
        odb.close()


def storage_for(
    location: StoreLocation, artifacts: str | os.PathLike[str] | None = None
) -> ArtifactStorage:
    """The artifact storage of a tracking store (see the module docstring).

    Raises:
        InvalidArgumentError: a malformed location.
    """
    raw = os.fspath(artifacts) if artifacts is not None else settings().artifacts
    cache_objects = settings().cache_dir / "objects"
    if raw:
        if "\x00" in raw:
            raise InvalidArgumentError("artifacts location contains a NUL byte")
        match = _URL.match(raw)
        if match is None:
            return ArtifactStorage(Path(raw).expanduser().resolve())
        if match.group(1).lower() == "file":
            return ArtifactStorage(Path(raw[len("file://") :]).resolve())
        return ArtifactStorage(cache_objects, remote=raw)
    if location.embedded:
        return ArtifactStorage(Path(location.display) / "objects")
    if location.scheme == "http":
        return ArtifactStorage(cache_objects, remote=location.uri)
    return ArtifactStorage(cache_objects)
