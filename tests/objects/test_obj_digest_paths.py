"""digest.py and paths.py: formats, algorithms, and the safe-path property."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mltrail.errors import InvalidArgumentError, UnsafePathError
from mltrail.objects import digest as dg
from mltrail.objects.paths import resolve_link, safe_join, validate_relpath


def test_hash_bytes_formats_and_algorithms() -> None:
    import blake3

    assert dg.hash_bytes(b"abc") == "blake3:" + blake3.blake3(b"abc").hexdigest()
    assert dg.hash_bytes(b"abc", "sha256") == "sha256:" + hashlib.sha256(b"abc").hexdigest()
    assert dg.hash_bytes(b"abc", "md5") == "md5:" + hashlib.md5(b"abc").hexdigest()
    assert dg.hash_bytes(b"abc", tree=True).endswith(".tree")
    with pytest.raises(InvalidArgumentError, match="algorithm: 'crc32'"):
        dg.hash_bytes(b"abc", "crc32")


@pytest.mark.parametrize("size", [0, 1, 4096, dg.LARGE_FILE - 1, dg.LARGE_FILE + 12345])
@pytest.mark.parametrize("algo", ["blake3", "sha256"])
def test_hash_file_matches_hash_bytes(tmp_path: Path, size: int, algo: str) -> None:
    data = os.urandom(size)
    p = tmp_path / "f"
    p.write_bytes(data)
    assert dg.hash_file(p, algo) == dg.hash_bytes(data, algo)


def test_parse_digest() -> None:
    h = "a" * 64
    assert dg.parse_digest(f"blake3:{h}") == ("blake3", h)
    assert dg.parse_digest(f"blake3:{h}.tree") == ("blake3", h)
    assert dg.is_tree(f"blake3:{h}.tree") and not dg.is_tree(f"blake3:{h}")
    assert dg.parse_digest("md5:" + "0" * 32) == ("md5", "0" * 32)
    bad_ones = ["", "blake3", f"blake3:{h[:-1]}", f"BLAKE3:{h}", f"blake3:{h.upper()}"]
    bad_ones += [f"sha1:{h[:40]}", f"blake3:{h}.dir", f"blake3:../{h}", "md5:" + "0" * 64]
    for bad in bad_ones:
        with pytest.raises(InvalidArgumentError, match="digest"):
            dg.parse_digest(bad)


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("", "empty"),
        ("/etc/passwd", "absolute"),
        ("../x", "'..'"),
        ("a/../../x", "'..'"),
        ("a/./b", "'.'"),
        ("a//b", "empty"),
        ("a/", "empty"),
        ("a\\b", "backslash"),
        ("a\x00b", "NUL"),
        ("x" * 256, "longer"),
    ],
)
def test_validate_relpath_refuses(path: str, reason: str) -> None:
    with pytest.raises(UnsafePathError, match=reason):
        validate_relpath(path)


def test_validate_relpath_accepts() -> None:
    for ok in ["a", "a/b/c.txt", "..a", "a..", "é/ü", "name with spaces", ".hidden/x"]:
        assert validate_relpath(ok) == ok


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab./\\\x00 é")) | st.characters(), max_size=40))
def test_safe_join_is_under_root_or_raises(rel: str) -> None:
    root = "/srv/root"
    try:
        p = safe_join(root, rel)
    except UnsafePathError:
        return
    resolved = os.path.normpath(str(p))
    assert resolved.startswith(root + "/"), (rel, resolved)
    assert ".." not in Path(rel).parts


def test_resolve_link_inside_and_outside() -> None:
    assert resolve_link("a/l", "../b", {}) == ["b"]
    assert resolve_link("l", ".", {}) == []
    with pytest.raises(UnsafePathError, match="outside"):
        resolve_link("a/l", "../../x", {})
    with pytest.raises(UnsafePathError, match="absolute"):
        resolve_link("l", "/etc", {})
    # lexically inside, but through another link that climbs: d -> "..", so "d/x" is outside
    links = {"d": ".", "e": "d/d/d/.."}
    with pytest.raises(UnsafePathError, match="outside"):
        resolve_link("e", links["e"], links)
    loop = {"a": "b", "b": "a"}
    with pytest.raises(UnsafePathError, match="levels"):
        resolve_link("a", "b", loop)
