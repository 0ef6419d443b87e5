"""push / pull to a local-directory remote and to a real S3-compatible server."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest
from datahelp import commit_all, s3_endpoint, write_files

from mltrail.data.config import add_remote
from mltrail.data.ops import add
from mltrail.data.remotes import pull, push
from mltrail.data.repo import DataRepo
from mltrail.data.status import status
from mltrail.errors import CorruptObjectError, NotFoundError
from mltrail.testing.repos import git


def _rmtree(path: Path) -> None:
    for folder, _dirs, _files in os.walk(path):
        os.chmod(folder, 0o755)
    shutil.rmtree(path)


def _clone(repo: Path, dest: Path) -> Path:
    """A fresh clone: pointer files and config, no data, no cache."""
    git(dest.parent, "clone", "-q", str(repo), dest.name)
    git(dest, "config", "user.name", "T")
    git(dest, "config", "user.email", "t@example.com")
    return dest


def _round_trip(repo: Path, tmp_path: Path, url: str) -> None:
    write_files(repo, {"d/a.txt": "a" * 100, "d/sub/b.bin": b"\x00" * 5000, "m.bin": "m"})
    add(DataRepo(repo), ["d", "m.bin"])
    add_remote(repo / ".mltrail", "origin", url, default=True)
    commit_all(repo)
    first = push(DataRepo(repo))
    assert (first.objects, first.skipped) == (4, 0)  # 3 files + 1 tree
    assert first.bytes >= 5101
    again = push(DataRepo(repo))
    assert (again.objects, again.skipped) == (0, 4)
    clone = _clone(repo, tmp_path / "clone")
    assert {e.state for e in status(DataRepo(clone)).entries} == {"not_in_cache"}
    got = pull(DataRepo(clone))
    assert got.objects == 4 and sorted(got.updated) == ["d", "m.bin"]
    assert (clone / "d/sub/b.bin").read_bytes() == b"\x00" * 5000
    assert {e.state for e in status(DataRepo(clone)).entries} == {"unchanged"}
    assert pull(DataRepo(clone)).objects == 0


def test_local_remote_round_trip(repo: Path, tmp_path: Path) -> None:
    """add, push to a directory remote, clone, pull: the data comes back, verified."""
    _round_trip(repo, tmp_path, str(tmp_path / "remote"))


def test_relative_local_remote_is_relative_to_root(repo: Path, tmp_path: Path) -> None:
    """A relative remote path is taken from the git root, wherever the command runs."""
    write_files(repo, {"x.bin": "x"})
    add(DataRepo(repo), ["x.bin"])
    add_remote(repo / ".mltrail", "here", "../shared-remote", default=True)
    push(DataRepo(repo))
    assert (tmp_path / "shared-remote").is_dir()


@pytest.mark.skipif(s3_endpoint() is None, reason="no S3 server: set MLTRAIL_S3_ENDPOINT")
def test_s3_remote_round_trip(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same round trip against a real S3-compatible server (SeaweedFS in CI)."""
    from mltrail.objects.fsspec_store import filesystem

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", os.environ.get("AWS_ACCESS_KEY_ID", "testing"))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"))
    bucket = f"mltrail-data-{uuid.uuid4().hex[:10]}"
    fs, _ = filesystem(f"s3://{bucket}")
    fs.mkdir(bucket)
    try:
        _round_trip(repo, tmp_path, f"s3://{bucket}/datasets")
    finally:
        fs.rm(bucket, recursive=True)


def test_pull_refuses_corrupt_remote_object(repo: Path, tmp_path: Path) -> None:
    """A flipped byte in the remote: pull fails naming the object; nothing bad checked out."""
    write_files(repo, {"f.bin": b"F" * 2048})
    (res,) = add(DataRepo(repo), ["f.bin"])
    remote = tmp_path / "remote"
    add_remote(repo / ".mltrail", "origin", str(remote), default=True)
    commit_all(repo)
    push(DataRepo(repo))
    algo, _, hexd = res.pointer.digest.partition(":")
    obj = remote / algo / hexd[:2] / hexd[2:]
    obj.chmod(0o644)
    raw = bytearray(obj.read_bytes())
    raw[0] ^= 0xFF
    obj.write_bytes(bytes(raw))
    clone = _clone(repo, tmp_path / "clone")
    with pytest.raises(CorruptObjectError, match=hexd[:16]):
        pull(DataRepo(clone))
    assert not (clone / "f.bin").exists()


def test_pull_then_checkout_refuses_corrupt_cache(repo: Path, tmp_path: Path) -> None:
    """A flipped byte in the local cache: pull (which checks out) refuses naming it."""
    write_files(repo, {"f.bin": b"G" * 2048})
    (res,) = add(DataRepo(repo), ["f.bin"])
    add_remote(repo / ".mltrail", "origin", str(tmp_path / "remote"), default=True)
    push(DataRepo(repo))
    (repo / "f.bin").unlink()
    algo, _, hexd = res.pointer.digest.partition(":")
    obj = repo / ".mltrail/cache" / algo / hexd[:2] / hexd[2:]
    obj.chmod(0o644)
    raw = bytearray(obj.read_bytes())
    raw[7] ^= 0x01
    obj.write_bytes(bytes(raw))
    with pytest.raises(CorruptObjectError, match=hexd[:16]):
        pull(DataRepo(repo))
    assert not (repo / "f.bin").exists()


def test_push_pull_errors(repo: Path, tmp_path: Path) -> None:
    """No remote configured, unknown remote, objects missing on the remote: clear errors."""
    write_files(repo, {"f.bin": "f"})
    add(DataRepo(repo), ["f.bin"])
    with pytest.raises(NotFoundError, match="no remote configured"):
        push(DataRepo(repo))
    add_remote(repo / ".mltrail", "origin", str(tmp_path / "empty"), default=True)
    with pytest.raises(NotFoundError, match="no remote named 'other'"):
        push(DataRepo(repo), remote="other")
    commit_all(repo)
    clone = _clone(repo, tmp_path / "clone")
    (tmp_path / "empty").mkdir()
    with pytest.raises(NotFoundError, match="not found in remote 'origin'"):
        pull(DataRepo(clone))


def test_server_remote_round_trip(repo: Path, tmp_path: Path, monkeypatch) -> None:
    """An ``mltrail server`` as the data remote: push, clone, pull, verified both ways."""
    from mltrail.testing.server import ThreadedServer

    with ThreadedServer(str(tmp_path / "store"), str(tmp_path / "srv")) as srv:
        monkeypatch.setenv("MLTRAIL_TOKEN", srv.token("write"))
        _round_trip(repo, tmp_path, srv.url)
        stored = [f for _d, _s, fs in os.walk(tmp_path / "srv" / "objects") for f in fs]
        assert len([f for f in stored if not f.startswith(".")]) == 4


def test_server_remote_needs_a_write_token(repo: Path, tmp_path: Path, monkeypatch) -> None:
    from mltrail.errors import PermissionDeniedError
    from mltrail.testing.server import ThreadedServer

    with ThreadedServer(str(tmp_path / "store"), str(tmp_path / "srv")) as srv:
        monkeypatch.setenv("MLTRAIL_TOKEN", srv.token("read"))
        write_files(repo, {"x.bin": "x"})
        add(DataRepo(repo), ["x.bin"])
        add_remote(repo / ".mltrail", "origin", srv.url, default=True)
        with pytest.raises(PermissionDeniedError):
            push(DataRepo(repo))
