"""Bit rot in the cache: checkout and pull hash every object; `mltrail data verify` finds it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from clihelp_data import run_cli, run_json
from datahelp import commit_all, write_files
from typer.testing import CliRunner

from mltrail.cli.main import app
from mltrail.data.config import add_remote
from mltrail.data.ops import add, checkout
from mltrail.data.remotes import pull, push
from mltrail.data.repo import DataRepo
from mltrail.errors import CorruptObjectError


def _object(root: Path, digest: str) -> Path:
    algo, _, hexd = digest.partition(":")
    return root / algo / hexd[:2] / hexd[2:]


def _rot(path: Path, offset: int = 3) -> None:
    """Flip one bit of ``path`` in place, keeping its size and mtime (as bit rot does)."""
    st = path.stat()
    path.chmod(0o644)
    with open(path, "r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([byte[0] ^ 0x10]))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    path.chmod(st.st_mode & 0o777)
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns) == (st.st_size, st.st_mtime_ns)


def _age(*paths: Path) -> None:
    """Date files 10 s back, out of the hash index's racy window (as real data is)."""
    for root in paths:
        for p in [root, *root.rglob("*")]:
            st = p.stat()
            os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns - 10_000_000_000))


def _invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def test_checkout_refuses_rotten_object_with_same_size_and_mtime(repo: Path) -> None:
    """A cache object whose bytes changed but not its size or mtime is refused by checkout,
    naming it, and nothing is written into the workspace."""
    write_files(repo, {"d/a.bin": b"A" * 3000, "d/b.bin": b"B" * 3000})
    _age(repo / "d")
    (res,) = add(DataRepo(repo), ["d"])
    commit_all(repo)
    checkout(DataRepo(repo))  # the index has seen every object verified
    digest_a = _entry_digest(repo, res.pointer.digest, "a.bin")
    for folder, _dirs, _files in os.walk(repo / "d"):
        os.chmod(folder, 0o755)
    shutil.rmtree(repo / "d")
    _rot(_object(repo / ".mltrail/cache", digest_a))
    with pytest.raises(CorruptObjectError, match=digest_a.partition(":")[2][:16]):
        checkout(DataRepo(repo))
    assert not (repo / "d").exists()
    assert res.pointer.kind == "tree"


def test_pull_refuses_rotten_cached_object(repo: Path, tmp_path: Path) -> None:
    """pull of data whose object is already cached (so not transferred) still hashes it."""
    write_files(repo, {"f.bin": b"F" * 5000})
    _age(repo / "f.bin")
    (res,) = add(DataRepo(repo), ["f.bin"])
    add_remote(repo / ".mltrail", "origin", str(tmp_path / "remote"), default=True)
    commit_all(repo)
    push(DataRepo(repo))
    checkout(DataRepo(repo))
    (repo / "f.bin").unlink()
    _rot(_object(repo / ".mltrail/cache", res.pointer.digest))
    with pytest.raises(CorruptObjectError, match=res.pointer.digest.partition(":")[2][:16]):
        pull(DataRepo(repo))
    assert not (repo / "f.bin").exists()


def _entry_digest(repo: Path, tree_digest: str, path: str) -> str:
    from mltrail.objects.cache import Cache

    with Cache(repo / ".mltrail/cache") as cache:
        entry = cache.read_tree(tree_digest).get(path)
    assert entry is not None
    return entry.digest


def test_verify_reports_corrupt_and_missing_objects(repo: Path) -> None:
    """`data verify` names every corrupt and missing object (digest and path), exit 1; a
    healthy cache exits 0."""
    write_files(repo, {"d/a.bin": b"a" * 100, "d/b.bin": b"b" * 100, "f.bin": b"f" * 100})
    add(DataRepo(repo), ["d", "f.bin"])
    ok = run_json("data", "verify")
    assert ok["ok"] is True and ok["checked"] == 4 and ok["corrupt"] == ok["missing"] == []
    assert "4 objects verified" in run_cli("data", "verify", "-q")
    cache = repo / ".mltrail/cache"
    (f_res,) = add(DataRepo(repo), ["f.bin"])
    pointer = next(e for e in DataRepo(repo).pointers() if e.data_path == "d")
    from mltrail.objects.cache import Cache

    with Cache(cache) as c:
        tree = c.read_tree(pointer.pointer.digest)
    a, b = tree.get("a.bin"), tree.get("b.bin")
    assert a is not None and b is not None
    _rot(_object(cache, a.digest))
    _object(cache, b.digest).unlink()
    code, out, err = _invoke("data", "verify")
    assert code == 1, (out, err)
    assert f"corrupt: {a.digest}" in out and str(_object(cache, a.digest)) in out
    assert f"missing: {b.digest}" in out and "d" in out
    assert "Traceback" not in out + err
    report = run_json_code("data", "verify")
    assert [p["digest"] for p in report["corrupt"]] == [a.digest]
    assert [p["digest"] for p in report["missing"]] == [b.digest]
    assert report["corrupt"][0]["path"] == str(_object(cache, a.digest))
    assert f_res.pointer.digest not in {p["digest"] for p in report["corrupt"] + report["missing"]}


def run_json_code(*args: str) -> dict[str, object]:
    """``mltrail ARGS --json`` expecting exit 1 (problems found); the parsed report."""
    import json

    code, out, _err = _invoke(*args, "--json")
    assert code == 1
    doc: dict[str, object] = json.loads(out)
    return doc


def test_verify_remote(repo: Path, tmp_path: Path) -> None:
    """`data verify --remote NAME` hashes the remote's objects and lists what it lacks."""
    write_files(repo, {"d/a.bin": b"x" * 200, "d/b.bin": b"y" * 200})
    add(DataRepo(repo), ["d"])
    remote = tmp_path / "remote"
    add_remote(repo / ".mltrail", "origin", str(remote), default=True)
    missing = run_json_code("data", "verify", "--remote", "origin")
    assert len(missing["missing"]) == 1 and missing["checked"] == 0  # type: ignore[arg-type]
    push(DataRepo(repo))
    assert run_json("data", "verify", "--remote", "origin")["checked"] == 3
    objects = sorted(p for p in remote.rglob("*") if p.is_file())
    _rot(objects[0], offset=0)
    report = run_json_code("data", "verify", "-r", "origin")
    assert [p["path"] for p in report["corrupt"]] == [str(objects[0])]  # type: ignore[index]


def test_verify_catches_rot_of_a_checked_out_file(repo: Path) -> None:
    """An object hardlinked into the workspace rots in both places; verify reads every byte."""
    write_files(repo, {"f.bin": b"z" * 100})
    (res,) = add(DataRepo(repo), ["f.bin"])
    _rot(_object(repo / ".mltrail/cache", res.pointer.digest))
    code, out, _ = _invoke("data", "verify")
    assert code == 1 and res.pointer.digest in out
