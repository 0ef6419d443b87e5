"""Against a real S3-compatible server (SeaweedFS on 127.0.0.1): push, pull, verify, gc."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from mltrail.errors import CorruptObjectError
from mltrail.objects.build import build
from mltrail.objects.cache import Cache
from mltrail.objects.checkout import checkout
from mltrail.objects.digest import LARGE_FILE, hash_bytes
from mltrail.objects.fsspec_store import FsspecObjectStore, filesystem
from mltrail.objects.gc import gc
from mltrail.objects.registry import open_object_store
from mltrail.objects.transfer import pull, push

MakeTree = Callable[[dict[str, bytes | str]], Path]


def test_push_pull_tree_through_s3(
    s3_bucket: str, cache: Cache, make_tree: MakeTree, tmp_path: Path
) -> None:
    files: dict[str, bytes | str] = {f"part-{i:03}": os.urandom(3000 + i) for i in range(150)}
    files["large/weights.bin"] = os.urandom(LARGE_FILE + 4321)
    root = make_tree(files)
    r = build(root, cache)
    remote = open_object_store(f"{s3_bucket}/store")
    assert isinstance(remote, FsspecObjectStore)
    res = push(cache, remote, [r.digest], progress=False)
    assert res.transferred == 152 and not res.missing
    assert push(cache, remote, [r.digest], progress=False).skipped == 152
    assert set(remote.iter_digests()) == set(cache.iter_digests())
    remote.verify(hash_bytes(files["part-007"]))  # type: ignore[arg-type]
    with Cache(tmp_path / "other") as other:
        got = pull(remote, other, [r.digest], progress=False)
        assert got.transferred == 152
        checkout(r.digest, other, tmp_path / "restored")
    assert build(tmp_path / "restored", None, store=False).digest == r.digest
    assert gc(remote, {r.digest}) == []
    loose = remote.add_bytes(b"unreferenced")
    assert gc(remote, {r.digest}) == [loose]
    assert not remote.exists(loose)


def test_pull_refuses_a_tampered_remote_object(
    s3_bucket: str, cache: Cache, tmp_path: Path
) -> None:
    d = cache.add_bytes(b"the real bytes")
    remote = open_object_store(s3_bucket)
    assert isinstance(remote, FsspecObjectStore)
    push(cache, remote, [d], progress=False)
    fs, _ = filesystem(s3_bucket)
    fs.pipe_file(remote.path(d), b"the fake bytes")
    with Cache(tmp_path / "fresh") as fresh:
        with pytest.raises(CorruptObjectError, match=d):
            pull(remote, fresh, [d], progress=False)
        assert not fresh.exists(d)


def test_fsck_and_gc_grace_on_s3(s3_bucket: str, cache: Cache) -> None:
    """fsck reads a bucket's objects and finds a tampered one; gc's grace window uses S3's
    LastModified (a fresh object is spared) and a bucket never holds temp files."""
    from mltrail.objects.fsck import fsck
    from mltrail.objects.gc import collect

    good = cache.add_bytes(b"kept bytes")
    loose = cache.add_bytes(b"loose bytes")
    remote = open_object_store(f"{s3_bucket}/fsck")
    assert isinstance(remote, FsspecObjectStore)
    push(cache, remote, [good, loose], progress=False)
    assert fsck(remote, {good: "g"}).ok
    fs, _ = filesystem(s3_bucket)
    fs.pipe_file(remote.path(loose), b"loose bytez")
    report = fsck(remote, {good: "g"})
    assert [p.digest for p in report.corrupt] == [loose] and report.checked == 2
    spared = collect(remote, {good}, grace_s=3600)
    assert spared.removed == [] and spared.kept == 2 and spared.temps == 0
    assert collect(remote, {good}).removed == [loose]
