"""Fixtures for the object layer: caches, data directories, snapshots, an S3 server."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

Snapshot = dict[str, tuple[str, int, str]]


def take_snapshot(root: Path, exclude: tuple[Path, ...] = ()) -> Snapshot:
    """Every path under ``root`` (not following links): kind, mode, content hash / target."""
    out: Snapshot = {}
    skip = {str(p) for p in exclude}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = [d for d in dirnames if os.path.join(dirpath, d) not in skip]
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            if p in skip:
                continue
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                out[p] = ("link", 0, os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[p] = ("dir", stat.S_IMODE(st.st_mode), "")
            else:
                data = Path(p).read_bytes()
                out[p] = ("file", stat.S_IMODE(st.st_mode), hashlib.sha256(data).hexdigest())
    return out


@pytest.fixture
def snapshot() -> Callable[..., Snapshot]:
    """``snapshot(root, exclude=(...))`` -> a comparable picture of the tree under ``root``."""
    return take_snapshot


@pytest.fixture
def make_tree(tmp_path: Path) -> Callable[[dict[str, bytes | str]], Path]:
    """``make_tree({"a/b.txt": b"...", "link": "->target"})`` -> a fresh data directory."""
    counter = iter(range(1_000_000))

    def make(files: dict[str, bytes | str]) -> Path:
        root = tmp_path / f"data{next(counter)}"
        root.mkdir()
        for rel, content in files.items():
            p = root / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, str) and content.startswith("->"):
                os.symlink(content[2:], p)
            else:
                p.write_bytes(content if isinstance(content, bytes) else content.encode())
        return root

    return make


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[object]:
    """A fresh cache in ``auto`` link mode (hardlinks on ext4)."""
    from mltrail.objects.cache import Cache

    with Cache(tmp_path / "cache") as c:
        yield c
