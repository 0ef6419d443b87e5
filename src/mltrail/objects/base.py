"""The object-store seam: :class:`ObjectStore`, and the optional capabilities beside it.

An object store keeps immutable blobs by digest (``"blake3:<hex>"``, ``"<...>.tree"`` for a
tree manifest). Backends (opened by URL through :func:`mltrail.objects.registry.
open_object_store`):

- :class:`~mltrail.objects.local.LocalObjectStore`: a local directory, plain ``os`` calls;
  :class:`~mltrail.objects.cache.Cache` adds link modes and a hash index to it;
- :class:`~mltrail.objects.fsspec_store.FsspecObjectStore`: any fsspec filesystem (``s3://``,
  ``gs://``, ``az://``, ``memory://``, ``local://``, ...);
- :class:`~mltrail.objects.http.HttpObjectStore`: an ``mltrail server``'s ``/api/v1/objects``.

Every backend passes :class:`mltrail.testing.objects.ObjectStoreContract`.

What a backend can do beyond the core is a capability of its own, a protocol checked with
``isinstance`` (never a method that raises ``NotImplementedError``):

- :class:`ListableObjectStore`: enumerate what is stored (``fsck`` of a whole store);
- :class:`PrunableObjectStore`: listable, and objects and stale temp files can be deleted
  (``gc``);
- :class:`BulkObjectStore`: many objects per call, whole files without holding them in
  memory (what :mod:`~mltrail.objects.transfer` uses to reach a remote).

A local directory is all three; an fsspec store is all three; a server is only
:class:`BulkObjectStore` (a client may neither list nor delete a server's objects). The
local fast paths (batched durable writes through
:class:`~mltrail.objects.writer.ObjectWriter`, links for checkout) need a directory on this
machine and are methods of :class:`~mltrail.objects.local.LocalObjectStore` itself.
"""

from __future__ import annotations

from typing import IO, TYPE_CHECKING, Protocol, runtime_checkable

from mltrail.objects._fs import TEMP_GRACE_S
from mltrail.objects.digest import DEFAULT_ALGO

if TYPE_CHECKING:
    import os
    from collections.abc import Iterable, Iterator

    from mltrail.objects.tree import Tree

__all__ = ["BulkObjectStore", "ListableObjectStore", "ObjectStore", "PrunableObjectStore"]


@runtime_checkable
class ObjectStore(Protocol):
    """A content-addressed store: put, get and ask by digest.

    Contract (every backend; :class:`mltrail.testing.objects.ObjectStoreContract` checks it):

    - **Names are content.** An object is named by the digest of its bytes; ``add_*`` return
      that digest and storing the same bytes twice is a no-op that returns the same digest.
    - **Verification on write.** An object never appears under its real name unless its
      bytes hash to it. ``add_bytes`` and ``add_file`` hash what they store (a ``digest``
      given to ``add_file`` is checked, never trusted: :class:`~mltrail.errors.
      CorruptObjectError` and nothing stored); a local store writes a temp name, verifies,
      then renames; a server verifies every upload before it gets its name. A crash leaves
      temp files (swept later), never a partial object under a real name.
    - **Verification on read.** ``read_bytes`` and ``read_tree`` hash what they return
      (``read_bytes(verify=False)`` and ``open`` do not: the caller hashes, as a transfer
      does on arrival); ``verify`` hashes the stored object.
    - **Immutability.** Stored objects never change; what a read returns (bytes, a
      :class:`~mltrail.objects.tree.Tree`) is the caller's. Parsed trees may be memoised and
      shared: a ``Tree`` is never modified after parsing.
    - **Thread-safety.** Every method may be called from many threads at once (transfers
      use 4-32); writes of the same object race harmlessly (same bytes, same name).
    - **Trees are untrusted manifests.** ``read_tree`` verifies the manifest's digest and
      checks every path (:meth:`Tree.from_bytes <mltrail.objects.tree.Tree.from_bytes>`).

    Errors, the same in every backend:

    - :class:`~mltrail.errors.NotFoundError`: the object is not stored (``size``,
      ``read_bytes``, ``read_tree``, ``open``, ``verify``); ``exists`` answers False.
    - :class:`~mltrail.errors.CorruptObjectError`: content does not hash to its digest; the
      message names the digest and where the content was.
    - :class:`~mltrail.errors.InvalidArgumentError`: a malformed digest, or a file digest
      given to ``read_tree``.
    - :class:`~mltrail.errors.StoreError`: a server that cannot be reached or fails; a
      local or fsspec filesystem's I/O failure stays the ``OSError`` it is (after cleaning
      up), and the data verbs turn it into a one-line ``StoreError``.
    """

    @property
    def url(self) -> str:
        """Where the store is: an absolute path for a local store, else its URL."""
        ...

    def exists(self, digest: str) -> bool:
        """Whether the object is stored (its content is not checked)."""
        ...

    def exists_many(self, digests: Iterable[str]) -> set[str]:
        """The subset of ``digests`` that is stored (batched: a listing, parallel checks
        or one request)."""
        ...

    def size(self, digest: str) -> int:
        """The stored object's size in bytes.

        Raises:
            NotFoundError: the object is not stored.
        """
        ...

    def add_bytes(self, data: bytes, *, algo: str = DEFAULT_ALGO, tree: bool = False) -> str:
        """Store ``data``; return its digest (a ``.tree`` digest when ``tree``)."""
        ...

    def add_file(self, path: str | os.PathLike[str], digest: str | None = None) -> str:
        """Store a copy of the file at ``path``; return its digest.

        Raises:
            CorruptObjectError: ``digest`` was given and the file does not hash to it
                (nothing is stored).
        """
        ...

    def add_tree(self, tree: Tree) -> str:
        """Store a tree's manifest; return the tree's digest."""
        ...

    def read_bytes(self, digest: str, *, verify: bool = True) -> bytes:
        """The object's content, hashed against ``digest`` unless ``verify=False``.

        Raises:
            NotFoundError: the object is not stored.
            CorruptObjectError: the stored content does not hash to ``digest``.
        """
        ...

    def read_tree(self, digest: str) -> Tree:
        """Read, verify and parse the tree ``digest`` (an untrusted manifest: checked).

        Raises:
            InvalidArgumentError: ``digest`` names a file, not a tree (or the manifest is
                unsafe: :class:`~mltrail.errors.UnsafePathError`).
            NotFoundError: the tree is not stored.
            CorruptObjectError: the manifest does not hash to ``digest``.
        """
        ...

    def open(self, digest: str) -> IO[bytes]:
        """A binary read stream of the object (not verified: see :meth:`verify`).

        Raises:
            NotFoundError: the object is not stored.
        """
        ...

    def verify(self, digest: str) -> None:
        """Hash the stored object against its digest.

        Raises:
            NotFoundError: the object is not stored.
            CorruptObjectError: it does not match; the message names it and where it is.
        """
        ...

    def close(self) -> None:
        """Release connections and handles (a no-op for most backends); idempotent."""
        ...


@runtime_checkable
class ListableObjectStore(ObjectStore, Protocol):
    """A store that can enumerate what it holds."""

    def iter_digests(self) -> Iterator[str]:
        """Every stored object's digest (temp files and strangers are skipped)."""
        ...


@runtime_checkable
class PrunableObjectStore(ListableObjectStore, Protocol):
    """A listable store whose objects, and stale temp files, can be deleted (``gc``)."""

    def remove(self, digest: str) -> None:
        """Delete the object; no error if it is absent."""
        ...

    def sweep_temps(
        self, dirs: Iterable[str] | None = None, *, grace_s: float = TEMP_GRACE_S
    ) -> int:
        """Remove stale temp files (:func:`~mltrail.objects._fs.is_stale_temp`) from the
        shard directories ``dirs`` (None: all of them); return how many. Best effort: an
        error listing or removing one is skipped. A store that never writes temps
        returns 0."""
        ...


@runtime_checkable
class BulkObjectStore(ObjectStore, Protocol):
    """Many objects per call and whole files without holding them in memory: what a
    transfer uses to reach a remote store.

    Bulk reads are not verified (the transfer hashes everything on arrival, fsck is the
    hashing); bulk writes verify unless the caller says it already has (``verified=True``:
    a transfer hashed the bytes it read before handing them over).
    """

    def get_many(self, digests: Iterable[str]) -> dict[str, bytes | BaseException]:
        """Fetch objects concurrently, unverified: digest -> bytes, or the error for that
        object (:class:`~mltrail.errors.NotFoundError` or ``FileNotFoundError`` when it
        is not stored)."""
        ...

    def get_to_local(self, digest: str, local: str | os.PathLike[str]) -> None:
        """Download an object into the local file ``local``, unverified.

        Raises:
            NotFoundError: the object is not stored.
        """
        ...

    def put_many(self, items: dict[str, bytes], *, verified: bool = False) -> None:
        """Store objects (digest -> bytes) concurrently; each is hashed first unless
        ``verified``.

        Raises:
            CorruptObjectError: some bytes do not hash to their digest (nothing stored).
        """
        ...

    def put_local_file(
        self, digest: str, local: str | os.PathLike[str], *, verified: bool = False
    ) -> None:
        """Store the local file ``local`` as ``digest`` (streamed); it is hashed first
        unless ``verified``.

        Raises:
            CorruptObjectError: the file does not hash to ``digest`` (nothing stored).
        """
        ...
