"""The ObjectStore contract as a pytest suite (see :mod:`mltrail.objects.base`).

Subclass :class:`ObjectStoreContract` in a test module and provide two fixtures:

- ``object_store``: a fresh, empty :class:`~mltrail.objects.base.ObjectStore`;
- ``tamper``: ``tamper(digest, data)`` overwrites the stored bytes of the object ``digest``
  behind the store's back (bit rot, a torn write, an attacker), so the suite can check that
  every read path notices.

The core tests run on every backend; the tests of a capability
(:class:`~mltrail.objects.base.ListableObjectStore`, :class:`~mltrail.objects.base.
PrunableObjectStore`, :class:`~mltrail.objects.base.BulkObjectStore`) skip, saying so, on a
backend without it. Example::

    @pytest.fixture
    def object_store(tmp_path):
        return LocalObjectStore(tmp_path / "objects")

    @pytest.fixture
    def tamper(object_store):
        def write(digest, data):
            path = object_store.path(digest)
            path.chmod(0o644)
            path.write_bytes(data)
        return write

    class TestLocalObjectStore(ObjectStoreContract):
        '''LocalObjectStore keeps every promise of the ObjectStore contract.'''
"""

from __future__ import annotations

import json
import os
import threading
from typing import TYPE_CHECKING

import pytest

from mltrail.errors import CorruptObjectError, InvalidArgumentError, NotFoundError, UnsafePathError
from mltrail.objects.base import (
    BulkObjectStore,
    ListableObjectStore,
    ObjectStore,
    PrunableObjectStore,
)
from mltrail.objects.digest import LARGE_FILE, hash_bytes
from mltrail.objects.tree import MODE_EXEC, MODE_LINK, Tree, TreeEntry

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

__all__ = ["ObjectStoreContract"]

_MISSING = hash_bytes(b"never stored by the contract")


def _need(store: ObjectStore, capability: type, name: str) -> None:
    if not isinstance(store, capability):
        pytest.skip(f"{type(store).__name__} is not a {name}")


class ObjectStoreContract:
    """Every ObjectStore backend must pass these tests."""

    # -- put and get ----------------------------------------------------------------------

    def test_is_an_object_store(self, object_store: ObjectStore) -> None:
        """The backend satisfies the ObjectStore protocol and names where it is."""
        assert isinstance(object_store, ObjectStore)
        assert isinstance(object_store.url, str) and object_store.url

    def test_add_bytes_round_trip(self, object_store: ObjectStore) -> None:
        """Stored bytes come back under the digest of their content, with their size."""
        d = object_store.add_bytes(b"hello objects")
        assert d == hash_bytes(b"hello objects")
        assert object_store.exists(d)
        assert object_store.size(d) == len(b"hello objects")
        assert object_store.read_bytes(d) == b"hello objects"
        with object_store.open(d) as f:
            assert f.read() == b"hello objects"
        object_store.verify(d)

    def test_add_is_idempotent(self, object_store: ObjectStore) -> None:
        """Storing the same bytes again returns the same digest and changes nothing."""
        first = object_store.add_bytes(b"same")
        assert object_store.add_bytes(b"same") == first
        assert object_store.read_bytes(first) == b"same"

    def test_empty_object(self, object_store: ObjectStore) -> None:
        """The empty object is an object like any other."""
        d = object_store.add_bytes(b"")
        assert object_store.exists(d) and object_store.size(d) == 0
        assert object_store.read_bytes(d) == b""

    def test_other_algorithm(self, object_store: ObjectStore) -> None:
        """A sha256 digest is stored and read back like a blake3 one."""
        d = object_store.add_bytes(b"sha", algo="sha256")
        assert d == hash_bytes(b"sha", "sha256") and d.startswith("sha256:")
        assert object_store.read_bytes(d) == b"sha"

    def test_round_trip_any_bytes(self, object_store: ObjectStore) -> None:
        """Any content round-trips, and its digest is that of the content (stable)."""
        from hypothesis import given, settings
        from hypothesis import strategies as st

        @settings(max_examples=15, deadline=None, database=None)
        @given(data=st.binary(max_size=4096))
        def round_trip(data: bytes) -> None:
            d = object_store.add_bytes(data)
            assert d == hash_bytes(data)
            assert object_store.read_bytes(d) == data

        round_trip()

    def test_add_file_small_and_large(self, object_store: ObjectStore, tmp_path: Path) -> None:
        """Files are stored by content, a large one (hashed on every core) too."""
        small, large = tmp_path / "small", tmp_path / "large"
        small.write_bytes(b"a small file")
        large.write_bytes(os.urandom(LARGE_FILE + 123))
        ds = object_store.add_file(small)
        dl = object_store.add_file(large, hash_bytes(large.read_bytes()))
        assert ds == hash_bytes(b"a small file")
        assert object_store.read_bytes(ds) == b"a small file"
        assert object_store.size(dl) == LARGE_FILE + 123
        with object_store.open(dl) as f:
            assert f.read() == large.read_bytes()
        object_store.verify(dl)

    def test_add_file_checks_a_given_digest(
        self, object_store: ObjectStore, tmp_path: Path
    ) -> None:
        """A digest given with a file is verified, not trusted: a wrong one stores nothing."""
        src = tmp_path / "f"
        src.write_bytes(b"actual content")
        wrong = hash_bytes(b"claimed content")
        with pytest.raises(CorruptObjectError, match=wrong):
            object_store.add_file(src, wrong)
        assert not object_store.exists(wrong)
        assert not object_store.exists(hash_bytes(b"actual content"))

    def test_exists_many(self, object_store: ObjectStore) -> None:
        """exists_many answers with the stored subset (and nothing for nothing)."""
        a, b = object_store.add_bytes(b"a"), object_store.add_bytes(b"b")
        assert object_store.exists_many([a, b, _MISSING]) == {a, b}
        assert object_store.exists_many([]) == set()

    def test_concurrent_writers(self, object_store: ObjectStore) -> None:
        """Threads storing the same and different objects at once all succeed."""
        blobs = [f"blob {i % 4}".encode() for i in range(16)]
        got: list[str] = []
        lock = threading.Lock()

        def put(data: bytes) -> None:
            d = object_store.add_bytes(data)
            with lock:
                got.append(d)

        threads = [threading.Thread(target=put, args=(b,)) for b in blobs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(got) == sorted(hash_bytes(b) for b in blobs)
        for b in set(blobs):
            assert object_store.read_bytes(hash_bytes(b)) == b

    # -- errors ---------------------------------------------------------------------------

    def test_missing_object(self, object_store: ObjectStore) -> None:
        """An object not stored: exists is False, every read is NotFoundError naming it."""
        assert not object_store.exists(_MISSING)
        with pytest.raises(NotFoundError, match=_MISSING):
            object_store.size(_MISSING)
        with pytest.raises(NotFoundError, match=_MISSING):
            object_store.read_bytes(_MISSING)
        with pytest.raises(NotFoundError, match=_MISSING):
            object_store.verify(_MISSING)
        with pytest.raises(NotFoundError):
            object_store.open(_MISSING).close()
        tree = hash_bytes(b"no such tree", tree=True)
        with pytest.raises(NotFoundError):
            object_store.read_tree(tree)

    def test_malformed_digest(self, object_store: ObjectStore) -> None:
        """Anything that is not a digest is InvalidArgumentError before any I/O."""
        for bad in ("nope", "md5:xyz", "blake3:" + "0" * 63, "../../etc/passwd"):
            with pytest.raises(InvalidArgumentError):
                object_store.read_bytes(bad)
            with pytest.raises(InvalidArgumentError):
                object_store.exists(bad)

    def test_corruption_is_caught_on_read(
        self, object_store: ObjectStore, tamper: Callable[[str, bytes], None]
    ) -> None:
        """Bytes changed behind the store's back fail read_bytes and verify, naming the
        object; an unverified read returns them as they are."""
        d = object_store.add_bytes(b"the real bytes")
        tamper(d, b"the fake bytes")
        with pytest.raises(CorruptObjectError, match=d):
            object_store.read_bytes(d)
        with pytest.raises(CorruptObjectError, match=d):
            object_store.verify(d)
        assert object_store.read_bytes(d, verify=False) == b"the fake bytes"

    def test_truncation_is_caught(
        self, object_store: ObjectStore, tamper: Callable[[str, bytes], None]
    ) -> None:
        """A truncated object (a torn write) is corrupt, not short."""
        data = os.urandom(1000)
        d = object_store.add_bytes(data)
        tamper(d, data[:999])
        with pytest.raises(CorruptObjectError, match=d):
            object_store.verify(d)

    # -- trees ----------------------------------------------------------------------------

    def test_tree_round_trip(self, object_store: ObjectStore) -> None:
        """A tree is stored as a .tree object and reads back equal, verified and parsed."""
        a = object_store.add_bytes(b"aaa")
        tree = Tree(
            [
                TreeEntry("a.txt", a, 3),
                TreeEntry("bin/run", a, 3, MODE_EXEC),
                TreeEntry("link", hash_bytes(b"a.txt"), 5, MODE_LINK, "a.txt"),
            ]
        )
        d = object_store.add_tree(tree)
        assert d == tree.digest and d.endswith(".tree")
        assert object_store.exists(d)
        assert object_store.read_tree(d) == tree
        assert object_store.read_tree(d) == tree  # again (a memo may answer)

    def test_read_tree_of_a_file_digest(self, object_store: ObjectStore) -> None:
        """read_tree refuses a digest that names a file."""
        d = object_store.add_bytes(b"not a tree")
        with pytest.raises(InvalidArgumentError, match="names a file"):
            object_store.read_tree(d)

    def test_unsafe_manifest_is_refused(self, object_store: ObjectStore) -> None:
        """A stored manifest is untrusted: one that leaves its root is refused on read."""
        a = hash_bytes(b"x")
        raw = json.dumps({"entries": [["../x", a, 1, 0o100644]], "format": "mltrail.tree/1"})
        d = object_store.add_bytes(raw.encode(), tree=True)
        with pytest.raises(UnsafePathError):
            object_store.read_tree(d)

    def test_corrupt_manifest_is_refused(
        self, object_store: ObjectStore, tamper: Callable[[str, bytes], None]
    ) -> None:
        """A tree whose manifest was changed does not parse: CorruptObjectError."""
        tree = Tree([TreeEntry("f", hash_bytes(b"f"), 1)])
        d = object_store.add_tree(tree)
        tamper(d, tree.to_bytes().replace(b'"f"', b'"g"'))
        with pytest.raises(CorruptObjectError, match=d):
            object_store.read_tree(d)

    def test_close_is_idempotent(self, object_store: ObjectStore) -> None:
        """close() may be called more than once."""
        object_store.close()
        object_store.close()

    # -- capabilities ---------------------------------------------------------------------

    def test_listing(self, object_store: ObjectStore) -> None:
        """A listable store lists exactly what it holds, files and trees."""
        _need(object_store, ListableObjectStore, "ListableObjectStore")
        assert isinstance(object_store, ListableObjectStore)
        assert list(object_store.iter_digests()) == []
        a = object_store.add_bytes(b"listed")
        t = object_store.add_tree(Tree([TreeEntry("f", a, 6)]))
        assert set(object_store.iter_digests()) == {a, t}

    def test_remove(self, object_store: ObjectStore) -> None:
        """A prunable store removes objects (idempotently), trees included, and forgets them."""
        _need(object_store, PrunableObjectStore, "PrunableObjectStore")
        assert isinstance(object_store, PrunableObjectStore)
        a = object_store.add_bytes(b"doomed")
        t = object_store.add_tree(Tree([TreeEntry("f", a, 6)]))
        object_store.read_tree(t)  # a memo must not outlive the object
        object_store.remove(a)
        object_store.remove(a)
        object_store.remove(t)
        assert not object_store.exists(a) and not object_store.exists(t)
        with pytest.raises(NotFoundError):
            object_store.read_bytes(a)
        with pytest.raises(NotFoundError):
            object_store.read_tree(t)
        assert list(object_store.iter_digests()) == []
        assert object_store.sweep_temps() == 0

    def test_bulk_round_trip(self, object_store: ObjectStore, tmp_path: Path) -> None:
        """Bulk writes and reads move many objects, and whole files, by digest."""
        _need(object_store, BulkObjectStore, "BulkObjectStore")
        assert isinstance(object_store, BulkObjectStore)
        items = {hash_bytes(b): b for b in (b"one", b"two", b"three")}
        object_store.put_many(items)
        assert object_store.exists_many(items) == set(items)
        got = object_store.get_many([*items, _MISSING])
        assert {d: got[d] for d in items} == items
        assert isinstance(got[_MISSING], (NotFoundError, FileNotFoundError))
        src = tmp_path / "src"
        src.write_bytes(os.urandom(LARGE_FILE + 7))
        d = hash_bytes(src.read_bytes())
        object_store.put_local_file(d, src)
        object_store.get_to_local(d, tmp_path / "back")
        assert (tmp_path / "back").read_bytes() == src.read_bytes()
        with pytest.raises(NotFoundError):
            object_store.get_to_local(_MISSING, tmp_path / "missing")

    def test_bulk_writes_verify(self, object_store: ObjectStore, tmp_path: Path) -> None:
        """Bulk writes hash what they store unless told it was verified: a mismatch is
        CorruptObjectError and nothing is stored."""
        _need(object_store, BulkObjectStore, "BulkObjectStore")
        assert isinstance(object_store, BulkObjectStore)
        d = hash_bytes(b"promised")
        with pytest.raises(CorruptObjectError, match=d):
            object_store.put_many({d: b"delivered"})
        src = tmp_path / "f"
        src.write_bytes(b"delivered")
        with pytest.raises(CorruptObjectError, match=d):
            object_store.put_local_file(d, src)
        assert not object_store.exists(d)
