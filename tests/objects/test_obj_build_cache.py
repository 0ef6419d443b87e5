"""build.py and cache.py: hashing into the cache, dedup, the index, link modes, read-only."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mltrail.errors import InvalidArgumentError, NotFoundError, UnsafePathError
from mltrail.objects.build import build
from mltrail.objects.cache import Cache
from mltrail.objects.digest import hash_bytes
from mltrail.objects.index import RACY_NS
from mltrail.objects.tree import MODE_EXEC, MODE_LINK

MakeTree = Callable[[dict[str, bytes | str]], Path]


def _age(root: Path) -> None:
    """Push mtimes into the past (out of the racy window) so the index keeps them."""
    old = time.time_ns() - 50 * RACY_NS
    for dirpath, _, names in os.walk(root):
        for n in names:
            os.utime(os.path.join(dirpath, n), ns=(old, old), follow_symlinks=False)


def test_build_directory_into_cache(cache: Cache, make_tree: MakeTree) -> None:
    root = make_tree({"a.txt": b"aaa", "sub/b.bin": b"bb", "sub/deep/c": b"", "run.sh": b"#!"})
    os.chmod(root / "run.sh", 0o755)
    digest, tree, size, count = build(root, cache)
    assert tree is not None and digest == tree.digest and digest.endswith(".tree")
    assert (size, count) == (7, 4)
    assert [e.path for e in tree] == ["a.txt", "run.sh", "sub/b.bin", "sub/deep/c"]
    assert tree.get("run.sh").mode == MODE_EXEC  # type: ignore[union-attr]
    assert cache.read_tree(digest) == tree
    for e in tree:
        assert cache.read_bytes(e.digest) == (root / e.path).read_bytes()


def test_build_single_file(cache: Cache, tmp_path: Path) -> None:
    f = tmp_path / "model.bin"
    f.write_bytes(b"weights")
    r = build(f, cache)
    assert r == (hash_bytes(b"weights"), None, 7, 1)
    assert cache.exists(r.digest)


def test_unchanged_files_are_shared_between_versions(cache: Cache, make_tree: MakeTree) -> None:
    root = make_tree({f"f{i}": str(i).encode() * 100 for i in range(20)})
    v1 = build(root, cache)
    before = set(cache.iter_digests())
    (root / "f3").unlink()
    (root / "f3").write_bytes(b"changed")
    v2 = build(root, cache)
    assert v1.digest != v2.digest
    new = set(cache.iter_digests()) - before
    assert new == {hash_bytes(b"changed"), v2.digest}  # only the changed file and the tree


def test_index_avoids_rehashing(cache: Cache, make_tree: MakeTree) -> None:
    root = make_tree({"f": b"original"})
    _age(root)
    first = build(root, cache, store=False)
    # Same size, mtime put back: the index (rightly) cannot tell, so no re-hash happens.
    st = os.stat(root / "f")
    os.chmod(root / "f", 0o644)
    (root / "f").write_bytes(b"ORIGINAL")
    os.utime(root / "f", ns=(st.st_atime_ns, st.st_mtime_ns))
    assert build(root, cache, store=False).digest == first.digest
    os.utime(root / "f", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # now it changed
    assert build(root, cache, store=False).digest != first.digest


def test_hash_only_without_cache(make_tree: MakeTree) -> None:
    root = make_tree({"x": b"1"})
    r = build(root, None, None, store=False)
    assert r.tree is not None and r.count == 1
    with pytest.raises(InvalidArgumentError, match="cache"):
        build(root, None)
    with pytest.raises(NotFoundError, match="does not exist"):
        build(root / "missing", None, store=False)


def test_objects_missing_from_cache_are_stored_again(cache: Cache, make_tree: MakeTree) -> None:
    root = make_tree({"x": b"payload"})
    _age(root)
    r = build(root, cache, Cache(cache.root, link_mode="copy").index)
    d = hash_bytes(b"payload")
    cache.remove(d)
    build(root, cache)
    assert cache.read_bytes(d) == b"payload"
    assert r.tree is not None


def test_symlinks_inside_are_recorded_and_outside_refused(
    cache: Cache, make_tree: MakeTree, tmp_path: Path
) -> None:
    root = make_tree({"data/x": b"1", "alias": "->data/x"})
    r = build(root, cache)
    assert r.tree is not None
    link = r.tree.get("alias")
    assert link is not None and link.mode == MODE_LINK and link.target == "data/x"
    for target in ["../../etc/passwd", "/etc/passwd", str(tmp_path)]:
        bad = make_tree({"x": b"1", "escape": "->" + target})
        with pytest.raises(UnsafePathError, match="escape"):
            build(bad, cache)


def test_ignore_callback(cache: Cache, make_tree: MakeTree) -> None:
    root = make_tree({"keep": b"1", "skip.tmp": b"2", ".git/config": b"3"})
    r = build(root, cache, ignore=lambda rel, is_dir: rel.endswith(".tmp") or rel == ".git")
    assert r.tree is not None and [e.path for e in r.tree] == ["keep"]


def test_hardlink_mode_makes_workspace_file_the_read_only_object(
    tmp_path: Path, make_tree: MakeTree
) -> None:
    root = make_tree({"f": b"content"})
    with Cache(tmp_path / "hl", link_mode="hardlink") as c:
        build(root, c)
        obj = c.path(hash_bytes(b"content"))
    assert os.stat(root / "f").st_ino == obj.stat().st_ino
    assert (root / "f").stat().st_mode & 0o222 == 0


def test_copy_mode_leaves_workspace_writable(tmp_path: Path, make_tree: MakeTree) -> None:
    root = make_tree({"f": b"content"})
    with Cache(tmp_path / "cp", link_mode="copy") as c:
        build(root, c)
        obj = c.path(hash_bytes(b"content"))
    assert os.stat(root / "f").st_ino != obj.stat().st_ino
    (root / "f").write_bytes(b"edited")  # the cache is unaffected
    assert obj.read_bytes() == b"content"
    assert obj.stat().st_mode & 0o777 == 0o444


def test_link_modes_validated_and_fallback(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="link_mode"):
        Cache(tmp_path / "c", link_mode="symlink")
    c = Cache(tmp_path / "c", link_mode="reflink")
    assert c.modes() == ["reflink", "copy"]
    d = c.add_bytes(b"x" * 100)
    used = c.link(d, tmp_path / "out")
    assert used in ("reflink", "copy")  # ext4 has no reflink: falls back to a copy
    assert (tmp_path / "out").read_bytes() == b"x" * 100
    (tmp_path / "out").write_bytes(b"edit")  # a copy/reflink is independent and writable
    c.verify(d)
    c.close()


def _try_edit(path: Path, uid: int | None) -> str:
    """Open ``path`` for writing in a child process (as ``uid``): "refused" or "written"."""
    pid = os.fork()
    if pid == 0:  # child: never returns into pytest
        code = 3
        try:
            if uid is not None:
                os.setgid(uid)
                os.setuid(uid)
            try:
                fd = os.open(path, os.O_WRONLY)
            except PermissionError:
                code = 1
            else:
                os.write(fd, b"EVIL")
                os.close(fd)
                code = 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return {1: "refused", 2: "written"}.get(os.waitstatus_to_exitcode(status), "error")


def test_an_edit_through_a_hardlink_cannot_corrupt_the_cache() -> None:
    """dvc #9641: writing to a checked-out hardlink must fail (as an unprivileged user)."""
    base = Path(tempfile.mkdtemp(prefix="mltrail-ro-"))
    try:
        root = base / "ws"
        root.mkdir()
        (root / "f").write_bytes(b"precious")
        (root / "g").write_bytes(b"not linked")
        with Cache(base / "cache", link_mode="hardlink") as c:
            build(root, c)
            obj = c.path(hash_bytes(b"precious"))
            os.chmod(root / "g", 0o644)
        assert os.stat(root / "f").st_ino == obj.stat().st_ino
        uid = None
        if os.geteuid() == 0:  # root ignores permission bits: try as "nobody" owning the files
            uid = 65534
            os.chmod(base, 0o755)
            for dirpath, dirnames, filenames in os.walk(base):
                for n in [*dirnames, *filenames]:
                    os.chown(os.path.join(dirpath, n), uid, uid, follow_symlinks=False)
                    if n in dirnames:
                        os.chmod(os.path.join(dirpath, n), 0o755)
        g = root / "g"
        os.unlink(g)
        g.write_bytes(b"writable")
        if uid is not None:
            os.chown(g, uid, uid)
        assert _try_edit(g, uid) == "written"  # the same child can write an ordinary file
        assert _try_edit(root / "f", uid) == "refused"
        assert obj.read_bytes() == b"precious"
        # Replacing the file (unlink + write) is allowed and leaves the cache intact.
        (root / "f").unlink()
        (root / "f").write_bytes(b"new")
        assert obj.read_bytes() == b"precious"
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_names_a_manifest_cannot_carry_safely_are_refused(
    cache: Cache, make_tree: MakeTree
) -> None:
    root = make_tree({"ok": b"1", "a\\b": b"2"})
    with pytest.raises(UnsafePathError, match="backslash"):
        build(root, cache)
    root2 = make_tree({"ok": b"1"})
    (root2 / os.fsdecode(b"bad\xff")).write_bytes(b"3")  # not UTF-8
    with pytest.raises(UnsafePathError, match="UTF-8"):
        build(root2, cache)


def test_a_cache_inside_the_directory_is_not_part_of_it(make_tree: MakeTree) -> None:
    root = make_tree({"x": b"1"})
    with Cache(root / ".cache") as c:
        c.add_bytes(b"already cached")
        r = build(root, c)
    assert r.tree is not None and [e.path for e in r.tree] == ["x"]
