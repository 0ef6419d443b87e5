"""The pointer-file format: round trip, strict validation of untrusted files."""

from __future__ import annotations

from pathlib import Path

import pytest

from mltrail.data.pointer import Pointer, dump_pointer, parse_bytes, parse_pointer, read_pointer
from mltrail.errors import InvalidArgumentError, NotFoundError

TREE = "blake3:" + "ab" * 32 + ".tree"
FILE = "sha256:" + "0f" * 32


def test_round_trip_and_stable_bytes() -> None:
    """A dumped pointer parses back to itself; dumping twice gives the same bytes."""
    p = Pointer("my data: v2 #1", "tree", TREE, 1234, 10)
    text = dump_pointer(p)
    assert parse_pointer(text, "x.mltrail") == p
    assert dump_pointer(parse_pointer(text, "x.mltrail")) == text
    assert p.algorithm == "blake3"
    assert p.to_dict()["algorithm"] == "blake3"


def test_hand_edited_yaml_is_read() -> None:
    """A pointer edited by hand (YAML flow style, quotes) goes through PyYAML."""
    text = f"{{mltrail: 1, path: 'train.csv', kind: file, digest: '{FILE}', size: 5}}\n"
    p = parse_pointer(text, "train.csv.mltrail")
    assert p == Pointer("train.csv", "file", FILE, 5, 1)


def test_default_path_is_the_pointer_name() -> None:
    """Without a path field the data is the pointer's own name minus .mltrail."""
    raw = f"mltrail: 1\nkind: file\ndigest: {FILE}\nsize: 3\n".encode()
    assert parse_bytes(raw, "d/x.bin.mltrail", "x.bin.mltrail").path == "x.bin"


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (f"mltrail: 2\nkind: file\ndigest: {FILE}\nsize: 1\npath: a\n", "version"),
        (f"mltrail: 1\nkind: file\ndigest: {FILE}\nsize: -1\npath: a\n", "size"),
        ("mltrail: 1\nkind: file\ndigest: md4:00\nsize: 1\npath: a\n", "digest"),
        (f"mltrail: 1\nkind: file\ndigest: {FILE[:-2]}\nsize: 1\npath: a\n", "digest"),
        (f"mltrail: 1\nkind: dir\ndigest: {FILE}\nsize: 1\npath: a\n", "kind"),
        (f"mltrail: 1\nkind: file\ndigest: {TREE}\nsize: 1\npath: a\n", "kind"),
        (f'mltrail: 1\nkind: file\ndigest: {FILE}\nsize: 1\npath: "../a"\n', "path"),
        (f'mltrail: 1\nkind: file\ndigest: {FILE}\nsize: 1\npath: "/etc/passwd"\n', "path"),
        (f'mltrail: 1\nkind: file\ndigest: {FILE}\nsize: 1\npath: "a\\\\b"\n', "path"),
        (f'mltrail: 1\nkind: file\ndigest: {FILE}\nsize: 1\npath: "a\\u0000"\n', "path"),
        ("- just\n- a list\n", "mapping"),
        ("mltrail: [unclosed\n", "YAML"),
    ],
)
def test_invalid_pointers_are_refused(text: str, field: str) -> None:
    """Every malformed or unsafe pointer is refused with a message naming the problem."""
    with pytest.raises(InvalidArgumentError) as err:
        parse_pointer(text, "bad.mltrail")
    assert "bad.mltrail" in str(err.value)
    assert field in str(err.value)


def test_read_pointer_limits(tmp_path: Path) -> None:
    """A missing file is NotFound; a huge or non-UTF-8 one is refused."""
    with pytest.raises(NotFoundError):
        read_pointer(tmp_path / "none.mltrail")
    big = tmp_path / "big.mltrail"
    big.write_bytes(b"#" * 70_000)
    with pytest.raises(InvalidArgumentError, match="larger than"):
        read_pointer(big)
    bad = tmp_path / "bad.mltrail"
    bad.write_bytes(b"\xff\xfe")
    with pytest.raises(InvalidArgumentError, match="UTF-8"):
        read_pointer(bad)
