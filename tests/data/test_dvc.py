"""DVC interop: .dvc files, dvc.lock outs, DVC's cache and digests; read, never rewritten."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from datahelp import commit_all, write_files

from mltrail.capture.data import _fast_dvc_outs, capture_data
from mltrail.data import dvc
from mltrail.errors import InvalidArgumentError

DVC_BIN = Path(__file__).resolve().parents[2] / "bench" / ".venv-peers" / "bin" / "dvc"


def _md5(b: bytes) -> str:
    return hashlib.md5(b).hexdigest()


def _dvc_repo(root: Path) -> dict[str, str]:
    """Files laid out as DVC 3 writes them for `dvc add data f.txt` (without running DVC)."""
    x, y, f = b"a\r\nb\n", b"\x00\x01bin", b"hello\n"
    manifest = [
        {"md5": _md5(y), "relpath": "sub/y.bin"},
        {"md5": _md5(x), "relpath": "x.txt"},
    ]
    raw = json.dumps(manifest, sort_keys=True).encode()
    dir_md5 = _md5(raw) + ".dir"
    write_files(
        root,
        {
            "data/x.txt": x,
            "data/sub/y.bin": y,
            "f.txt": f,
            ".gitignore": "/data\n/f.txt\n",
            ".dvc/.gitignore": "/config.local\n/tmp\n/cache\n",
            "data.dvc": f"outs:\n- md5: {dir_md5}\n  size: 10\n  nfiles: 2\n  hash: md5\n"
            "  path: data\n",
            "f.txt.dvc": f"outs:\n- md5: {_md5(f)}\n  size: 6\n  hash: md5\n  path: f.txt\n",
            f".dvc/cache/files/md5/{dir_md5[:2]}/{dir_md5[2:]}": raw,
            "stages/dvc.lock": "schema: '2.0'\nstages:\n  train:\n    cmd: python train.py\n"
            "    deps:\n    - path: ../data\n      hash: md5\n      md5: " + dir_md5 + "\n"
            "    outs:\n    - path: model.pkl\n      hash: md5\n      md5: " + _md5(b"m") + "\n"
            "      size: 1\n",
            "stages/model.pkl": b"m",
        },
    )
    return {"dir": dir_md5, "f": _md5(f)}


def test_parse_dvc_file_and_lock(repo: Path) -> None:
    """Outs are read with root-relative paths, md5 digests and counts; deps are not outs."""
    digests = _dvc_repo(repo)
    (out,) = dvc.parse_dvc_file((repo / "data.dvc").read_bytes(), "data.dvc")
    assert (out.path, out.md5, out.is_dir, out.files, out.legacy) == (
        "data",
        digests["dir"],
        True,
        2,
        False,
    )
    assert out.digest == f"md5:{digests['dir']}"
    (lock,) = dvc.parse_dvc_lock((repo / "stages/dvc.lock").read_bytes(), "stages/dvc.lock")
    assert (lock.path, lock.stage, lock.size) == ("stages/model.pkl", "train", 1)
    manifest = dvc.read_dir_manifest(repo, digests["dir"])
    assert manifest is not None and set(manifest) == {"sub/y.bin", "x.txt"}
    assert dvc.dir_digest(manifest) == digests["dir"]


def test_fast_parser_agrees_with_yaml(repo: Path) -> None:
    """The YAML-free reader of .dvc files gives what PyYAML gives, or defers to it."""
    import yaml

    _dvc_repo(repo)
    for name in ("data.dvc", "f.txt.dvc"):
        text = (repo / name).read_text()
        assert _fast_dvc_outs(text) == yaml.safe_load(text)["outs"]
    assert _fast_dvc_outs("outs:\n- md5: 'quoted'\n  path: a\n") is None
    assert _fast_dvc_outs("outs: [flow]\n") is None


def test_unsafe_and_malformed_dvc_files_are_refused(repo: Path) -> None:
    """A `..` path or a bad md5 in a .dvc file, or in a .dir manifest, is refused."""
    with pytest.raises(InvalidArgumentError, match="unsafe path"):
        dvc.parse_dvc_file(b"outs:\n- md5: " + b"ab" * 16 + b"\n  path: ../../etc\n", "x.dvc")
    with pytest.raises(InvalidArgumentError, match="malformed md5"):
        dvc.parse_dvc_file(b"outs:\n- md5: xyz\n  path: a\n", "x.dvc")
    bad = json.dumps([{"md5": "0" * 32, "relpath": "../escape"}]).encode()
    md5 = _md5(bad) + ".dir"
    write_files(repo, {f".dvc/cache/files/md5/{md5[:2]}/{md5[2:]}": bad})
    with pytest.raises(InvalidArgumentError, match="unsafe path"):
        dvc.read_dir_manifest(repo, md5)


def test_legacy_md5_dos2unix(tmp_path: Path) -> None:
    """DVC 2 digests: text files with CRLF hash as LF; binary files hash as they are."""
    text = tmp_path / "t.txt"
    text.write_bytes(b"a\r\nb\r\n" * 1000)
    assert dvc.md5_file(text, legacy=True) == _md5(b"a\nb\n" * 1000)
    assert dvc.md5_file(text, legacy=False) == _md5(b"a\r\nb\r\n" * 1000)
    binary = tmp_path / "b.bin"
    binary.write_bytes(b"\x00\r\n")
    assert dvc.md5_file(binary, legacy=True) == _md5(b"\x00\r\n")


def test_status_understands_dvc_outputs(repo: Path) -> None:
    """`data status` reports DVC outputs: unchanged, then the file modified inside the dir."""
    from mltrail.data.repo import DataRepo
    from mltrail.data.status import status

    _dvc_repo(repo)
    commit_all(repo)
    before = {p.name: p.read_bytes() for p in repo.rglob("*.dvc") if p.is_file()}
    report = status(DataRepo(repo))
    states = {e.data_path: (e.source, e.state) for e in report.entries}
    assert states == {
        "data": ("dvc", "unchanged"),
        "f.txt": ("dvc", "unchanged"),
        "stages/model.pkl": ("dvc.lock", "unchanged"),
    }
    (repo / "data/x.txt").write_bytes(b"changed")
    (repo / "stages/model.pkl").unlink()
    report = status(DataRepo(repo))
    by_path = {e.data_path: e for e in report.entries}
    assert by_path["data"].state == "modified"
    assert by_path["data"].changes == {"added": [], "removed": [], "modified": ["x.txt"]}
    assert by_path["stages/model.pkl"].state == "not_in_cache"
    assert {
        p.name: p.read_bytes() for p in repo.rglob("*.dvc") if p.is_file()
    } == before  # never rewritten


def test_capture_records_dvc_outs(repo: Path) -> None:
    """The run's data capture lists DVC outs with md5 digests, sources and stages."""
    digests = _dvc_repo(repo)
    commit_all(repo)
    doc = capture_data(repo).data
    got = {p["path"]: p for p in doc["pointers"]}
    assert got["data"]["digest"] == f"md5:{digests['dir']}" and got["data"]["kind"] == "tree"
    assert got["data"]["files"] == 2 and got["data"]["source"] == "dvc"
    assert got["f.txt"]["algorithm"] == "md5"
    assert got["stages/model.pkl"]["stage"] == "train"
    assert doc["errors"] == []


@pytest.mark.skipif(not DVC_BIN.exists(), reason="DVC not installed in bench/.venv-peers")
def test_real_dvc_add_is_understood(repo: Path) -> None:
    """Files written by a real `dvc add` parse, and mltrail computes the same digests."""
    from mltrail.data.repo import DataRepo
    from mltrail.data.status import status

    write_files(repo, {"d/a.txt": "a\r\n", "d/b/c.bin": b"\x00" * 100, "one.csv": "x,y\n1,2\n"})
    env = {"PATH": "/usr/bin:/bin", "HOME": str(repo), "DVC_NO_ANALYTICS": "1"}
    for args in (["init", "-q"], ["add", "-q", "d", "one.csv"]):
        done = subprocess.run([str(DVC_BIN), *args], cwd=repo, env=env, capture_output=True)
        assert done.returncode == 0, done.stderr
    commit_all(repo)
    report = status(DataRepo(repo), dvc=True)
    assert {e.data_path: e.state for e in report.entries} == {
        "d": "unchanged",
        "one.csv": "unchanged",
    }
    assert all(e.in_cache for e in report.entries)
    assert shutil.which("git")
