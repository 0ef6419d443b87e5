"""layout.py and verify.py: where objects live, and how a mismatch reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from mltrail.errors import CorruptObjectError, InvalidArgumentError
from mltrail.objects.digest import hash_bytes
from mltrail.objects.layout import digest_from_parts, object_key
from mltrail.objects.verify import checked_file_digest, verify_bytes, verify_file


def test_layout_is_sharded_with_tree_suffix() -> None:
    """Objects are sharded by their first two hex digits; trees keep their suffix."""
    d = hash_bytes(b"x")
    hexd = d.split(":")[1]
    assert object_key(d) == f"blake3/{hexd[:2]}/{hexd[2:]}"
    assert object_key(d + ".tree") == f"blake3/{hexd[:2]}/{hexd[2:]}.tree"
    with pytest.raises(InvalidArgumentError):
        object_key("blake3:nothex")


def test_digest_from_parts_round_trips_and_skips_strangers() -> None:
    """A stored path gives back its digest; temps and junk give None."""
    d = hash_bytes(b"y", tree=True)
    assert digest_from_parts(*object_key(d).split("/")) == d
    assert digest_from_parts("blake3", "ab", ".tmp-h1-2-x") is None
    assert digest_from_parts("nope", "ab", "cd") is None


def test_mismatch_names_the_object_and_where(tmp_path: Path) -> None:
    """A mismatch is CorruptObjectError naming the digest, the place and the actual hash."""
    d = hash_bytes(b"good")
    actual = hash_bytes(b"evil")
    with pytest.raises(CorruptObjectError, match=f"object {d} at here is corrupt: .*{actual}"):
        verify_bytes(d, b"evil", "here")
    with pytest.raises(CorruptObjectError, match=f"object {d} from there is corrupt"):
        verify_bytes(d, b"evil", "there", received=True)
    f = tmp_path / "f"
    f.write_bytes(b"evil")
    with pytest.raises(CorruptObjectError, match=str(f)):
        verify_file(d, f)
    assert checked_file_digest(f) == actual
    assert checked_file_digest(f, actual) == actual
    with pytest.raises(CorruptObjectError, match=d):
        checked_file_digest(f, d)
    verify_bytes(hash_bytes(b"t", tree=True), b"t", "x")  # a tree digest is checked as a tree
