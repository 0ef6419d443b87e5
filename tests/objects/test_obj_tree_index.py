"""tree.py (canonical manifests, untrusted parsing) and index.py (the hash index)."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from mltrail.errors import InvalidArgumentError, UnsafePathError
from mltrail.objects.digest import hash_bytes
from mltrail.objects.index import RACY_NS, HashIndex
from mltrail.objects.tree import MODE_EXEC, MODE_FILE, MODE_LINK, Tree, TreeEntry

D1 = hash_bytes(b"one")
D2 = hash_bytes(b"two")


def _raw(entries: list[list[object]]) -> bytes:
    return json.dumps({"entries": entries, "format": "mltrail.tree/1"}).encode()


def test_tree_is_canonical_and_sorted() -> None:
    a = Tree([TreeEntry("b/x", D2, 3), TreeEntry("a", D1, 3, MODE_EXEC)])
    b = Tree([TreeEntry("a", D1, 3, MODE_EXEC), TreeEntry("b/x", D2, 3)])
    assert a.to_bytes() == b.to_bytes() and a.digest == b.digest
    assert a.digest == hash_bytes(a.to_bytes(), tree=True)
    assert [e.path for e in a] == ["a", "b/x"]
    assert len(a) == 2 and a.size == 6
    again = Tree.from_bytes(a.to_bytes())
    assert again == a and again.digest == a.digest
    assert a.get("b/x") == TreeEntry("b/x", D2, 3, MODE_FILE)


def test_tree_with_symlink_round_trips() -> None:
    t = Tree([TreeEntry("a/f", D1, 3), TreeEntry("a/l", hash_bytes(b"f"), 1, MODE_LINK, "f")])
    assert Tree.from_bytes(t.to_bytes()).get("a/l") == t.get("a/l")
    assert t.digests() == {D1}


def test_tree_diff() -> None:
    old = Tree([TreeEntry("keep", D1, 3), TreeEntry("gone", D1, 3), TreeEntry("mod", D1, 3)])
    new = Tree([TreeEntry("keep", D1, 3), TreeEntry("new", D2, 3), TreeEntry("mod", D2, 3)])
    diff = old.diff(new)
    assert (diff.added, diff.removed, diff.modified) == (["new"], ["gone"], ["mod"])
    assert not old.diff(old)


@pytest.mark.parametrize(
    ("entries", "error", "match"),
    [
        ([["../x", D1, 3, MODE_FILE]], UnsafePathError, "'\\.\\.'"),
        ([["a/../../x", D1, 3, MODE_FILE]], UnsafePathError, "'\\.\\.'"),
        ([["/etc/passwd", D1, 3, MODE_FILE]], UnsafePathError, "absolute"),
        ([["a\\b", D1, 3, MODE_FILE]], UnsafePathError, "backslash"),
        ([["a\x00b", D1, 3, MODE_FILE]], UnsafePathError, "NUL"),
        ([["a", D1, 3, MODE_FILE], ["a", D2, 3, MODE_FILE]], UnsafePathError, "duplicate"),
        ([["a", D1, 3, MODE_FILE], ["a/b", D2, 3, MODE_FILE]], UnsafePathError, "under the entry"),
        ([["l", D1, 3, MODE_LINK, "../../etc"]], UnsafePathError, "outside"),
        ([["l", D1, 3, MODE_LINK, "/etc"]], UnsafePathError, "absolute"),
        ([["b", D1, 3, MODE_FILE], ["a", D2, 3, MODE_FILE]], InvalidArgumentError, "sorted"),
        ([["a", "md5:zz", 3, MODE_FILE]], InvalidArgumentError, "digest"),
        ([["a", D1 + ".tree", 3, MODE_FILE]], InvalidArgumentError, "nested"),
        ([["a", D1, -1, MODE_FILE]], InvalidArgumentError, "size"),
        ([["a", D1, True, MODE_FILE]], InvalidArgumentError, "size"),
        ([["a", D1, 3, 0o104755]], InvalidArgumentError, "mode"),
        ([["a", D1, 3, MODE_FILE, "x"]], InvalidArgumentError, "target"),
        ([["a", D1, 3]], InvalidArgumentError, "entry 0"),
    ],
)
def test_from_bytes_refuses(entries: list[list[object]], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        Tree.from_bytes(_raw(entries))


def test_from_bytes_refuses_garbage() -> None:
    for bad in [b"", b"{", b"[]", b'{"format":"other","entries":[]}', b"\xff\xfe"]:
        with pytest.raises(InvalidArgumentError, match="tree manifest"):
            Tree.from_bytes(bad)


def test_tree_constructor_validates() -> None:
    with pytest.raises(UnsafePathError):
        Tree([TreeEntry("../x", D1, 3)])


# -- index --------------------------------------------------------------------------------


def _old_file(p: Path, data: bytes) -> os.stat_result:
    p.write_bytes(data)
    old = time.time_ns() - 10 * RACY_NS
    os.utime(p, ns=(old, old))
    return os.stat(p)


def test_index_hits_until_the_file_changes(tmp_path: Path) -> None:
    f = tmp_path / "f"
    st = _old_file(f, b"hello")
    with HashIndex(tmp_path / "idx.sqlite") as idx:
        assert idx.get(str(f), st) is None
        assert idx.put_many([(str(f), st, D1)], hashed_at_ns=time.time_ns()) == 1
        assert idx.get(str(f), st) == D1
        assert idx.lookup_many([(str(f), st)], "blake3") == {str(f): D1}
        assert idx.get(str(f), st, "sha256") is None  # keyed by algorithm
        st2 = _old_file(f, b"hellO")  # same size, new mtime
        assert idx.get(str(f), st2) is None
        f.unlink()
        st3 = _old_file(f, b"hello")  # new inode
        assert st3.st_ino != st.st_ino or st3.st_mtime_ns != st.st_mtime_ns
        idx.remove_many([str(f)])
        assert len(idx) == 0


def test_index_keeps_algorithms_apart_and_persists(tmp_path: Path) -> None:
    f = tmp_path / "f"
    st = _old_file(f, b"x")
    md5 = "md5:" + "0" * 32
    with HashIndex(tmp_path / "idx.sqlite") as idx:
        idx.store_many([(str(f), st, D1), (str(f), st, md5)])
    with HashIndex(tmp_path / "idx.sqlite") as idx:
        assert idx.get(str(f), st) == D1
        assert idx.get(str(f), st, "md5") == md5


def test_index_skips_racy_entries(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"new")
    st = os.stat(f)
    with HashIndex(tmp_path / "idx.sqlite") as idx:
        assert idx.put_many([(str(f), st, D1)], hashed_at_ns=st.st_mtime_ns + 1) == 0
        assert idx.get(str(f), st) is None


def test_index_batches_and_concurrent_writers(tmp_path: Path) -> None:
    files = []
    for i in range(1200):  # more than one query chunk
        p = tmp_path / f"f{i}"
        files.append((str(p), _old_file(p, str(i).encode())))
    errors: list[BaseException] = []

    def writer(part: list[tuple[str, os.stat_result]]) -> None:
        try:
            with HashIndex(tmp_path / "idx.sqlite") as idx:
                idx.put_many([(p, st, hash_bytes(p.encode())) for p, st in part])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(files[i::3],)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with HashIndex(tmp_path / "idx.sqlite") as idx:
        got = idx.get_many(files)
    assert got == {p: hash_bytes(p.encode()) for p, _ in files}
