"""`checkout`: the workspace from the cache, verified; corrupt or unsafe input refused."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from datahelp import commit_all, write_files

from mltrail.data.ops import add, checkout
from mltrail.data.pointer import Pointer, write_pointer
from mltrail.data.repo import DataRepo
from mltrail.data.status import status
from mltrail.data.workspace import open_cache
from mltrail.errors import CorruptObjectError, InvalidArgumentError, MltrailError, NotFoundError
from mltrail.testing.repos import git


def _object_path(repo: Path, digest: str) -> Path:
    algo, _, hexd = digest.partition(":")
    return repo / ".mltrail/cache" / algo / hexd[:2] / hexd[2:]


def _snapshot(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.parts and ".mltrail" not in p.parts
    }


def test_checkout_restores_and_follows_git(repo: Path) -> None:
    """Deleted data comes back; checking out an older commit's pointer restores that version
    (files added since are removed); a no-op checkout writes nothing."""
    write_files(repo, {"d/a.txt": "v1", "d/sub/b.txt": "b"})
    add(DataRepo(repo), ["d"])
    first = commit_all(repo, "v1")
    write_files(repo, {"d/c.txt": "new"})
    (repo / "d/a.txt").unlink()
    write_files(repo, {"d/a.txt": "v2"})
    add(DataRepo(repo), ["d"])
    commit_all(repo, "v2")
    v2 = _snapshot(repo / "d")
    git(repo, "checkout", "-q", first, "--", "d.mltrail")
    result = checkout(DataRepo(repo))
    assert result.updated == ["d"]
    assert _snapshot(repo / "d") == {"a.txt": b"v1", "sub/b.txt": b"b"}
    git(repo, "checkout", "-q", "HEAD", "--", "d.mltrail")
    checkout(DataRepo(repo))
    assert _snapshot(repo / "d") == v2
    again = checkout(DataRepo(repo))
    assert again.updated == [] and again.unchanged == ["d"]
    (repo / "d").chmod(0o755)
    for folder, _dirs, _files in os.walk(repo / "d"):
        os.chmod(folder, 0o755)
    import shutil

    shutil.rmtree(repo / "d")
    assert [e.state for e in status(DataRepo(repo)).entries] == ["missing"]
    checkout(DataRepo(repo), ["d"])
    assert _snapshot(repo / "d") == v2


def test_modified_workspace_needs_force(repo: Path) -> None:
    """A change that was never added is not discarded without --force."""
    write_files(repo, {"f.bin": "one"})
    add(DataRepo(repo), ["f.bin"])
    (repo / "f.bin").unlink()
    write_files(repo, {"f.bin": "local edit"})
    with pytest.raises(InvalidArgumentError, match=r"--force.*f\.bin"):
        checkout(DataRepo(repo))
    assert (repo / "f.bin").read_text() == "local edit"
    checkout(DataRepo(repo), force=True)
    assert (repo / "f.bin").read_text() == "one"


def test_flipped_byte_in_cache_is_refused(repo: Path) -> None:
    """A corrupted cache object: checkout fails naming the object and writes no bad data."""
    write_files(repo, {"d/a.bin": b"A" * 1000, "d/b.bin": b"B" * 1000})
    (res,) = add(DataRepo(repo), ["d"])
    with open_cache(DataRepo(repo)) as cache:
        tree = cache.read_tree(res.pointer.digest)
    victim = tree.get("a.bin")
    assert victim is not None
    for folder, _dirs, _files in os.walk(repo / "d"):
        os.chmod(folder, 0o755)
    import shutil

    shutil.rmtree(repo / "d")
    obj = _object_path(repo, victim.digest)
    obj.chmod(0o644)
    raw = bytearray(obj.read_bytes())
    raw[500] ^= 0x01
    obj.write_bytes(bytes(raw))
    with pytest.raises(CorruptObjectError) as err:
        checkout(DataRepo(repo))
    assert victim.digest in str(err.value)
    assert not (repo / "d/a.bin").exists()


def test_truncated_object_is_refused(repo: Path) -> None:
    """A truncated cache object (a file pointer) is refused naming it."""
    write_files(repo, {"f.bin": b"x" * 4096})
    (res,) = add(DataRepo(repo), ["f.bin"])
    (repo / "f.bin").unlink()
    obj = _object_path(repo, res.pointer.digest)
    obj.chmod(0o644)
    obj.write_bytes(b"x" * 100)
    with pytest.raises(CorruptObjectError, match=res.pointer.digest.split(":")[1][:16]):
        checkout(DataRepo(repo))
    assert not (repo / "f.bin").exists()


def test_manifest_with_dotdot_entries_writes_nothing_outside(repo: Path, tmp_path: Path) -> None:
    """A pointer naming a tree whose manifest holds `../` entries is refused; nothing is
    written outside (or inside) the repository."""
    with open_cache(DataRepo(repo)) as cache:
        payload = cache.add_bytes(b"evil")
        manifest = {
            "entries": [
                ["../../escaped.txt", payload, 4, 0o100644],
                ["ok.txt", payload, 4, 0o100644],
            ],
            "format": "mltrail.tree/1",
        }
        raw = json.dumps(manifest, separators=(",", ":"), sort_keys=True).encode()
        digest = cache.add_bytes(raw, tree=True)
    write_pointer(repo / "evil.mltrail", Pointer("evil", "tree", digest, 8, 2))
    before = _snapshot(tmp_path)
    with pytest.raises(MltrailError, match=r"\.\."):
        checkout(DataRepo(repo))
    assert _snapshot(tmp_path) == before
    assert not (repo / "evil").exists()
    assert not (tmp_path / "escaped.txt").exists()


def test_symlink_escaping_in_manifest_is_refused(repo: Path) -> None:
    """A manifest whose symlink entry points out of the root is refused before writing."""
    with open_cache(DataRepo(repo)) as cache:
        target = "../../../etc"
        link_digest = cache.add_bytes(target.encode())
        manifest = {
            "entries": [["link", link_digest, len(target), 0o120000, target]],
            "format": "mltrail.tree/1",
        }
        raw = json.dumps(manifest, separators=(",", ":"), sort_keys=True).encode()
        digest = cache.add_bytes(raw, tree=True)
    write_pointer(repo / "l.mltrail", Pointer("l", "tree", digest, len(target), 1))
    with pytest.raises(MltrailError):
        checkout(DataRepo(repo))
    assert not (repo / "l").exists()


def test_data_path_that_is_a_symlink_out_is_refused(repo: Path, tmp_path: Path) -> None:
    """A pointer whose data path is a symlink out of the repository is never written."""
    write_files(repo, {"f.bin": "x"})
    (res,) = add(DataRepo(repo), ["f.bin"])
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (repo / "out").symlink_to(outside)
    write_pointer(repo / "out.mltrail", Pointer("out", "file", res.pointer.digest, 1, 1))
    with pytest.raises(MltrailError, match="symlink"):
        checkout(DataRepo(repo), ["out"])
    assert list(outside.iterdir()) == []


def test_checkout_missing_object_names_pull(repo: Path) -> None:
    """An object not in the cache: NotFound telling to pull."""
    write_pointer(repo / "x.mltrail", Pointer("x", "file", "blake3:" + "0" * 64, 1, 1))
    with pytest.raises(NotFoundError, match="mltrail data pull"):
        checkout(DataRepo(repo))
