"""transfer.py and gc.py: verified parallel copies between stores; garbage collection."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from mltrail.errors import CorruptObjectError, NotFoundError
from mltrail.objects.build import build
from mltrail.objects.cache import Cache
from mltrail.objects.checkout import checkout
from mltrail.objects.digest import LARGE_FILE, hash_bytes
from mltrail.objects.gc import gc, reachable
from mltrail.objects.local import LocalObjectStore
from mltrail.objects.registry import open_object_store
from mltrail.objects.transfer import closure, pull, push

MakeTree = Callable[[dict[str, bytes | str]], Path]


def _dataset(make_tree: MakeTree) -> Path:
    files: dict[str, bytes | str] = {f"d{i % 3}/f{i}": os.urandom(100 + i) for i in range(40)}
    files["big.bin"] = os.urandom(LARGE_FILE + 1000)
    files["dup"] = files["d0/f0"]
    files["ln"] = "->big.bin"
    return make_tree(files)


@pytest.mark.parametrize("remote_kind", ["local", "memory"])
def test_push_pull_round_trip(
    cache: Cache, make_tree: MakeTree, tmp_path: Path, remote_kind: str
) -> None:
    root = _dataset(make_tree)
    r = build(root, cache)
    url = str(tmp_path / "remote") if remote_kind == "local" else f"memory://r-{tmp_path.name}"
    remote = open_object_store(url)
    res = push(cache, remote, [r.digest], progress=False)
    assert res.transferred == 42 and res.skipped == 0 and not res.missing  # 41 files + tree
    assert res.bytes > LARGE_FILE
    assert set(remote.iter_digests()) == set(cache.iter_digests())
    again = push(cache, remote, [r.digest], progress=False)
    assert again.transferred == 0 and again.skipped == 42
    with Cache(tmp_path / "fresh") as fresh:
        got = pull(remote, fresh, [r.digest], progress=False)
        assert got.transferred == 42 and got.objects == 42
        checkout(r.digest, fresh, tmp_path / "restored")
    assert build(tmp_path / "restored", None, store=False).digest == r.digest


def test_closure_expands_trees(cache: Cache, make_tree: MakeTree) -> None:
    root = make_tree({"a": b"1", "b": b"22"})
    r = build(root, cache)
    c = closure(cache, [r.digest])
    assert c[hash_bytes(b"22")] == 2 and r.digest in c and len(c) == 3
    with pytest.raises(NotFoundError):
        closure(cache, [hash_bytes(b"x", tree=True)])


def test_missing_objects_are_reported_and_tree_withheld(
    cache: Cache, make_tree: MakeTree, tmp_path: Path
) -> None:
    root = make_tree({"a": b"1", "b": b"22"})
    r = build(root, cache)
    cache.remove(hash_bytes(b"22"))
    remote = LocalObjectStore(tmp_path / "remote")
    res = push(cache, remote, [r.digest, hash_bytes(b"nowhere")], progress=False)
    assert sorted(res.missing) == sorted([hash_bytes(b"22"), hash_bytes(b"nowhere")])
    assert remote.exists(hash_bytes(b"1"))
    assert not remote.exists(r.digest)  # a tree only goes once all its files are there
    missing_tree = hash_bytes(b"no such", tree=True)
    assert push(cache, remote, [missing_tree], progress=False).missing == [missing_tree]


@pytest.mark.parametrize("big", [False, True])
def test_corrupt_object_is_a_hard_error_naming_it(cache: Cache, tmp_path: Path, big: bool) -> None:
    data = os.urandom(LARGE_FILE + 10 if big else 1000)
    good = cache.add_bytes(b"fine")
    bad = cache.add_bytes(data)
    p = cache.path(bad)
    p.chmod(0o644)
    raw = bytearray(data)
    raw[7] ^= 0xFF
    p.write_bytes(bytes(raw))
    remote = LocalObjectStore(tmp_path / "remote")
    with pytest.raises(CorruptObjectError, match=f"object {bad} "):
        push(cache, remote, [good, bad], progress=False)
    assert remote.exists(good) and not remote.exists(bad)
    assert not list(remote.iter_temps())
    # and on arrival: a remote holding a damaged copy is refused by pull
    remote_path = remote.path(good)
    remote_path.chmod(0o644)
    remote_path.write_bytes(b"FINE")
    with Cache(tmp_path / "fresh") as fresh:
        with pytest.raises(CorruptObjectError, match=good):
            pull(remote, fresh, [good], progress=False)
        assert not fresh.exists(good)


def test_progress_bar_runs(cache: Cache, tmp_path: Path) -> None:
    d = cache.add_bytes(b"x")
    res = push(cache, LocalObjectStore(tmp_path / "r"), [d], progress=True)
    assert res.transferred == 1


def test_gc_removes_only_unreachable(cache: Cache, make_tree: MakeTree) -> None:
    root = make_tree({"a": b"1", "b": b"22"})
    v1 = build(root, cache)
    (root / "b").unlink()
    (root / "b").write_bytes(b"333")
    v2 = build(root, cache)
    loose = cache.add_bytes(b"loose")
    assert reachable(cache, [v2.digest]) == {v2.digest, hash_bytes(b"1"), hash_bytes(b"333")}
    would = gc(cache, {v2.digest}, dry_run=True)
    assert would == sorted([v1.digest, hash_bytes(b"22"), loose])
    assert cache.exists(loose)  # dry run removes nothing
    assert gc(cache, {v2.digest}) == would
    assert set(cache.iter_digests()) == {v2.digest, hash_bytes(b"1"), hash_bytes(b"333")}
    assert gc(cache, {v2.digest}) == []
    assert gc(cache, {v2.digest}, grace_s=3600) == []


def test_gc_refuses_when_a_kept_tree_is_unknown(cache: Cache) -> None:
    d = cache.add_bytes(b"x")
    unknown = hash_bytes(b"elsewhere", tree=True)
    with pytest.raises(NotFoundError, match="not in"):
        gc(cache, {unknown})
    assert cache.exists(d)
    assert gc(cache, {unknown}, missing_ok=True) == [d]


def test_gc_grace_spares_recent_objects(cache: Cache) -> None:
    d = cache.add_bytes(b"just added")
    assert gc(cache, set(), grace_s=3600) == []
    assert cache.exists(d)
