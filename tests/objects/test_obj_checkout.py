"""checkout.py: materialising files and trees; corruption and unsafe manifests refused."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from mltrail.errors import CorruptObjectError, InvalidArgumentError, NotFoundError, UnsafePathError
from mltrail.objects.build import build
from mltrail.objects.cache import Cache
from mltrail.objects.checkout import checkout
from mltrail.objects.digest import hash_bytes
from mltrail.objects.tree import MODE_FILE, MODE_LINK

MakeTree = Callable[[dict[str, bytes | str]], Path]
Snap = Callable[..., dict[str, tuple[str, int, str]]]


def _manifest(cache: Cache, entries: list[list[object]]) -> str:
    """Store an arbitrary (possibly malicious) manifest under its real digest."""
    raw = json.dumps({"entries": entries, "format": "mltrail.tree/1"}).encode()
    return cache.add_bytes(raw, tree=True)


def test_checkout_tree_round_trip(cache: Cache, make_tree: MakeTree, tmp_path: Path) -> None:
    files: dict[str, bytes | str] = {"a": b"1", "d/e/f": b"22", "x.sh": b"#!", "ln": "->d/e/f"}
    root = make_tree(files)
    os.chmod(root / "x.sh", 0o755)
    r = build(root, cache)
    out = tmp_path / "out"
    res = checkout(r.digest, cache, out)
    assert res.written == 4 and res.unchanged == 0
    assert (out / "a").read_bytes() == b"1" and (out / "d/e/f").read_bytes() == b"22"
    assert os.readlink(out / "ln") == "d/e/f"
    assert os.stat(out / "x.sh").st_mode & 0o100
    assert not os.stat(out / "a").st_mode & 0o100
    again = checkout(r.digest, cache, out)
    assert again.written == 0 and again.unchanged == 4
    assert build(out, cache, store=False).digest == r.digest


@pytest.mark.parametrize("mode", ["copy", "hardlink"])
def test_checkout_modes(tmp_path: Path, make_tree: MakeTree, mode: str) -> None:
    root = make_tree({"f": b"data", "g": b"more"})
    with Cache(tmp_path / f"c-{mode}", link_mode="copy") as c:
        r = build(root, c)
        out = tmp_path / f"out-{mode}"
        checkout(r.digest, c, out, mode=mode)
        same = os.stat(out / "f").st_ino == c.path(hash_bytes(b"data")).stat().st_ino
        assert same == (mode == "hardlink")
        if mode == "copy":
            (out / "f").write_bytes(b"edited")
            c.verify(hash_bytes(b"data"))


def test_checkout_replaces_modified_and_removes_extra(
    cache: Cache, make_tree: MakeTree, tmp_path: Path
) -> None:
    root = make_tree({"keep": b"k", "mod": b"old"})
    r = build(root, cache)
    out = tmp_path / "out"
    checkout(r.digest, cache, out, mode="copy")
    (out / "mod").write_bytes(b"locally modified")
    (out / "extra").write_bytes(b"x")
    (out / "newdir").mkdir()
    (out / "newdir" / "y").write_bytes(b"y")
    (out / "emptydir").mkdir()
    res = checkout(r.digest, cache, out, remove_extra=True)
    assert (out / "mod").read_bytes() == b"old"
    assert not (out / "extra").exists() and not (out / "newdir").exists()
    assert (out / "emptydir").is_dir()  # not ours to remove
    # "keep" may be rewritten: a copy made this instant is racy, so the index did not record it
    assert res.removed == 2 and res.written + res.unchanged == 2 and res.written >= 1


def test_checkout_single_file(cache: Cache, tmp_path: Path) -> None:
    f = tmp_path / "m.bin"
    f.write_bytes(b"model")
    r = build(f, cache)
    dest = tmp_path / "sub" / "copy.bin"
    assert checkout(r.digest, cache, dest).written == 1
    assert dest.read_bytes() == b"model"
    assert checkout(r.digest, cache, dest).unchanged == 1
    with pytest.raises(InvalidArgumentError, match="is a directory"):
        checkout(r.digest, cache, tmp_path)


def test_checkout_missing_object(cache: Cache, tmp_path: Path, snapshot: Snap) -> None:
    d = hash_bytes(b"never stored")
    tree = _manifest(cache, [["f", d, 12, MODE_FILE]])
    before = snapshot(tmp_path, exclude=(cache.root,))
    with pytest.raises(NotFoundError, match=d):
        checkout(tree, cache, tmp_path / "out")
    with pytest.raises(NotFoundError, match=d):
        checkout(d, cache, tmp_path / "f")
    with pytest.raises(NotFoundError, match="not in"):
        checkout(hash_bytes(b"no tree", tree=True), cache, tmp_path / "out")
    assert snapshot(tmp_path, exclude=(cache.root,)) == before


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_corrupt_object_refused_before_writing(
    cache: Cache, make_tree: MakeTree, tmp_path: Path, snapshot: Snap, damage: str
) -> None:
    root = make_tree({"a": b"fine", "b": os.urandom(2000)})
    r = build(root, cache)
    bad = hash_bytes((root / "b").read_bytes())
    p = cache.path(bad)
    p.chmod(0o644)  # hardlinked: damage through the cache path (the workspace shares it)
    raw = bytearray(p.read_bytes())
    if damage == "flip":
        raw[1000] ^= 0x40
    else:
        del raw[-1]
    p.write_bytes(bytes(raw))
    before = snapshot(tmp_path, exclude=(cache.root,))
    with pytest.raises(CorruptObjectError, match=f"object {bad} "):
        checkout(r.digest, cache, tmp_path / "out")
    with pytest.raises(CorruptObjectError, match=bad):
        checkout(bad, cache, tmp_path / "single")
    assert snapshot(tmp_path, exclude=(cache.root,)) == before
    assert not (tmp_path / "out").exists()


def test_corrupt_manifest_refused(cache: Cache, tmp_path: Path) -> None:
    tree = _manifest(cache, [])
    p = cache.path(tree)
    p.chmod(0o644)
    p.write_bytes(p.read_bytes().replace(b"entries", b"entrieZ"))
    with pytest.raises(CorruptObjectError, match=tree):
        checkout(tree, cache, tmp_path / "out")


@pytest.mark.parametrize(
    ("entry", "match"),
    [
        (["../escape", "OBJ", 4, MODE_FILE], "'..'"),
        (["a/../../escape", "OBJ", 4, MODE_FILE], "'..'"),
        (["/tmp/escape", "OBJ", 4, MODE_FILE], "absolute"),
        (["a\\..\\escape", "OBJ", 4, MODE_FILE], "backslash"),
        (["link", "OBJ", 4, MODE_LINK, "../../../../etc/passwd"], "outside"),
        (["link", "OBJ", 4, MODE_LINK, "/etc/passwd"], "absolute"),
    ],
)
def test_unsafe_manifest_refused_and_nothing_written(
    cache: Cache, tmp_path: Path, snapshot: Snap, entry: list[object], match: str
) -> None:
    obj = cache.add_bytes(b"evil")
    entries = [["a/ok", obj, 4, MODE_FILE], [e if e != "OBJ" else obj for e in entry]]
    entries.sort(key=lambda e: str(e[0]))
    tree = _manifest(cache, entries)
    before = snapshot(tmp_path, exclude=(cache.root,))
    with pytest.raises(UnsafePathError, match=match):
        checkout(tree, cache, tmp_path / "work" / "out")
    assert snapshot(tmp_path, exclude=(cache.root,)) == before


def test_destination_symlink_out_of_root_is_never_followed(
    cache: Cache, make_tree: MakeTree, tmp_path: Path, snapshot: Snap
) -> None:
    root = make_tree({"sub/x": b"payload", "top": b"t"})
    r = build(root, cache)
    outside = tmp_path / "outside"
    outside.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(outside, out / "sub")  # planted: sub -> outside
    before = snapshot(tmp_path, exclude=(cache.root,))
    with pytest.raises(UnsafePathError, match="symlink"):
        checkout(r.digest, cache, out)
    assert snapshot(tmp_path, exclude=(cache.root,)) == before
    assert list(outside.iterdir()) == []


def test_link_entry_through_a_planted_symlink_is_refused(
    cache: Cache, tmp_path: Path, snapshot: Snap
) -> None:
    tree = _manifest(cache, [["l", hash_bytes(b"out/passwd"), 10, MODE_LINK, "out/passwd"]])
    out = tmp_path / "dest"
    out.mkdir()
    os.symlink("/etc", out / "out")
    before = snapshot(tmp_path, exclude=(cache.root,))
    with pytest.raises(UnsafePathError, match="existing symlink"):
        checkout(tree, cache, out)
    assert snapshot(tmp_path, exclude=(cache.root,)) == before


def test_existing_file_entry_symlink_is_replaced_not_followed(
    cache: Cache, make_tree: MakeTree, tmp_path: Path
) -> None:
    root = make_tree({"f": b"mine"})
    r = build(root, cache)
    victim = tmp_path / "victim"
    victim.write_bytes(b"do not touch")
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(victim, out / "f")
    checkout(r.digest, cache, out)
    assert victim.read_bytes() == b"do not touch"
    assert not (out / "f").is_symlink() and (out / "f").read_bytes() == b"mine"


def test_file_in_the_way_of_a_directory(cache: Cache, make_tree: MakeTree, tmp_path: Path) -> None:
    root = make_tree({"d/x": b"1"})
    r = build(root, cache)
    out = tmp_path / "out"
    out.mkdir()
    (out / "d").write_bytes(b"a file")
    with pytest.raises(InvalidArgumentError, match="is a file where the tree has a directory"):
        checkout(r.digest, cache, out)
    assert (out / "d").read_bytes() == b"a file"


def test_sha256_trees_work_end_to_end(cache: Cache, make_tree: MakeTree, tmp_path: Path) -> None:
    root = make_tree({"a": b"1", "b/c": b"2"})
    r = build(root, cache, algo="sha256")
    assert r.digest.startswith("sha256:") and r.digest.endswith(".tree")
    assert all(e.digest.startswith("sha256:") for e in r.tree or ())
    assert checkout(r.digest, cache, tmp_path / "out").written == 2
    assert checkout(r.digest, cache, tmp_path / "out").unchanged == 2
    assert build(tmp_path / "out", None, store=False, algo="sha256").digest == r.digest
