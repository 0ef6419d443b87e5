"""local.py: the local object store (and an fsspec one beside it): crash-safe writes,
verification, read-only objects, batches."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mltrail.errors import CorruptObjectError, InvalidArgumentError, NotFoundError
from mltrail.objects.digest import hash_bytes
from mltrail.objects.local import LocalObjectStore
from mltrail.objects.registry import open_object_store
from mltrail.objects.tree import Tree, TreeEntry


@pytest.mark.parametrize("kind", ["local", "memory"])
def test_add_read_verify_iterate_remove(tmp_path: Path, kind: str) -> None:
    url = str(tmp_path / "odb") if kind == "local" else f"memory://odb-{tmp_path.name}"
    odb = open_object_store(url)
    d = odb.add_bytes(b"hello")
    assert d == hash_bytes(b"hello")
    assert odb.exists(d) and odb.read_bytes(d) == b"hello" and odb.size(d) == 5
    src = tmp_path / "big"
    src.write_bytes(os.urandom(5 << 20))  # the large-file path
    big = odb.add_file(src)
    assert big == hash_bytes(src.read_bytes())
    with odb.open(big) as f:
        assert f.read() == src.read_bytes()
    tree = Tree([TreeEntry("a", d, 5), TreeEntry("b", big, 5 << 20)])
    td = odb.add_tree(tree)
    assert td == tree.digest and odb.read_tree(td) == tree
    assert set(odb.iter_digests()) == {d, big, td}
    assert odb.exists_many([d, big, hash_bytes(b"nope")]) == {d, big}
    odb.verify(d)
    odb.remove(d)
    odb.remove(d)  # idempotent
    assert not odb.exists(d)
    with pytest.raises(NotFoundError, match=d):
        odb.read_bytes(d)
    with pytest.raises(InvalidArgumentError, match="names a file"):
        odb.read_tree(big)
    wrong = hash_bytes(b"other")
    with pytest.raises(CorruptObjectError, match=wrong):
        odb.add_file(src, wrong)


def test_local_objects_are_read_only_and_not_rewritten(tmp_path: Path) -> None:
    odb = LocalObjectStore(tmp_path / "odb")
    d = odb.add_bytes(b"data")
    p = odb.path(d)
    assert p.stat().st_mode & 0o777 == 0o444
    ino = p.stat().st_ino
    odb.add_bytes(b"data")
    assert p.stat().st_ino == ino  # present: not rewritten
    assert not list(odb.iter_temps())


def test_aborted_batch_leaves_no_object_and_no_temp(tmp_path: Path) -> None:
    odb = LocalObjectStore(tmp_path / "odb")
    d = hash_bytes(b"payload")
    w = odb.writer()
    w.put_bytes(d, b"payload")
    assert w.pending(d) and not odb.exists(d)  # not visible before commit
    assert len(list(odb.iter_temps())) == 1
    w.__exit__(RuntimeError, RuntimeError("crash"), None)  # as a `with` block that raised
    assert not odb.exists(d)
    assert not list(odb.iter_temps())
    assert list(odb.iter_digests()) == []


def test_batch_commit_of_many_objects(tmp_path: Path) -> None:
    odb = LocalObjectStore(tmp_path / "odb")
    blobs = [str(i).encode() * 10 for i in range(100)]  # above the fsync-each threshold
    with odb.writer() as w:
        for b in blobs:
            w.put_bytes(hash_bytes(b), b)
        w.put_bytes(hash_bytes(blobs[0]), blobs[0])  # a duplicate in the batch
        assert w.objects_written == 100
    assert set(odb.iter_digests()) == {hash_bytes(b) for b in blobs}


def test_writer_refuses_data_that_does_not_match(tmp_path: Path) -> None:
    odb = LocalObjectStore(tmp_path / "odb")
    d = hash_bytes(b"good")
    with pytest.raises(CorruptObjectError, match=d), odb.writer() as w:
        w.put_bytes(d, b"evil")
    assert not odb.exists(d)


def test_truncated_object_under_a_real_name_is_replaced(tmp_path: Path) -> None:
    odb = LocalObjectStore(tmp_path / "odb")
    d = odb.add_bytes(b"0123456789")
    p = odb.path(d)
    p.chmod(0o644)
    p.write_bytes(b"01234")  # what a torn write would leave
    with pytest.raises(CorruptObjectError, match=d):
        odb.verify(d)
    odb.add_bytes(b"0123456789")  # wrong size: rewritten
    odb.verify(d)


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_verify_names_the_corrupt_object(tmp_path: Path, damage: str) -> None:
    odb = LocalObjectStore(tmp_path / "odb")
    data = os.urandom(1000)
    d = odb.add_bytes(data)
    p = odb.path(d)
    p.chmod(0o644)
    if damage == "flip":
        raw = bytearray(data)
        raw[500] ^= 0x01
        p.write_bytes(bytes(raw))
    else:
        p.write_bytes(data[:999])
    with pytest.raises(CorruptObjectError, match=f"object {d} at .* is corrupt"):
        odb.verify(d)
    with pytest.raises(CorruptObjectError, match=d):
        odb.read_bytes(d)
    assert odb.read_bytes(d, verify=False) != data


def test_iter_digests_ignores_strangers(tmp_path: Path) -> None:
    odb = LocalObjectStore(tmp_path / "odb")
    d = odb.add_bytes(b"x")
    shard = odb.path(d).parent
    (shard / "not-hex!").write_text("junk")
    (shard / ".tmp-123-abc").write_text("temp")
    (odb.root / "blake3" / "README").write_text("x")
    assert list(odb.iter_digests()) == [d]
