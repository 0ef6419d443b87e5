"""The speed paths: the console script's Typer-free `mltrail data` verbs (same output as the
Typer commands), directory snapshots and complete-tree records (never stale)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from clihelp_data import run_cli
from datahelp import commit_all, write_files

from mltrail.cli._entry import run_fast
from mltrail.data import ops, workspace
from mltrail.data import status as data_status
from mltrail.data.repo import DataRepo
from mltrail.objects.build import build
from mltrail.objects.cache import Cache
from mltrail.objects.index import RACY_NS


def _fast(capsys: pytest.CaptureFixture[str], *args: str, code: int = 0) -> str:
    capsys.readouterr()
    assert run_fast(list(args)) == code
    out = capsys.readouterr()
    return out.out if code == 0 else out.err


def _age(root: Path, seconds: float = 5.0) -> None:
    """Move every mtime under ``root`` into the past (nothing is racily clean then)."""
    past = time.time() - seconds
    for folder, _dirs, files in os.walk(root):
        for name in files:
            os.utime(os.path.join(folder, name), (past, past), follow_symlinks=False)
        os.utime(folder, (past, past))


@pytest.mark.parametrize(
    "argv",
    [
        ["data", "status", "--help"],
        ["data", "add"],
        ["data", "push", "-j", "0"],
        ["data", "push", "-j", "x"],
        ["data", "push", "--remote"],
        ["data", "checkout", "-qf"],
        ["data", "status", "--bogus"],
        ["data", "status", "--", "-odd"],
        ["data", "gc"],
        ["runs", "list"],
        [],
    ],
)
def test_anything_unusual_goes_to_typer(argv: list[str]) -> None:
    """Help, malformed or unknown options and other commands are left to the Typer app."""
    assert run_fast(argv) is None


def test_fast_output_matches_typer(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """add, status, push, checkout, pull print what the Typer commands print."""
    run_cli("data", "remote", "add", "store", str(tmp_path / "remote"), "--default")
    write_files(repo, {"d/a.txt": "a", "d/sub/b.txt": "bb", "f.bin": "fff"})
    fast_add = _fast(capsys, "data", "add", "-q", "d")
    typer_again = run_cli("data", "add", "-q", "d")
    assert typer_again == fast_add.splitlines()[0].replace("added", "unchanged") + "\n"
    assert fast_add.startswith("added: d (2 files, 3 B) -> d.mltrail\n")
    assert "git add .gitignore d.mltrail" in fast_add
    commit_all(repo)
    assert _fast(capsys, "data", "status") == run_cli("data", "status")
    assert json.loads(_fast(capsys, "data", "status", "--json", "--no-dvc")) == json.loads(
        run_cli("data", "status", "--json", "--no-dvc")
    )
    (repo / "d/a.txt").chmod(0o644)
    (repo / "d/a.txt").unlink()
    status = _fast(capsys, "data", "status", "d")
    assert status == run_cli("data", "status", "d")
    assert status.startswith("modified") and "- a.txt" in status
    pushed = _fast(capsys, "data", "push", "--quiet", "--jobs=2")
    assert pushed.startswith("pushed 3 objects (") and pushed.endswith("; 0 already there\n")
    assert run_cli("data", "push", "-q") == "pushed 0 objects (0 B) to store; 3 already there\n"
    assert (
        _fast(capsys, "data", "push", "-q") == "pushed 0 objects (0 B) to store; 3 already there\n"
    )
    assert _fast(capsys, "data", "checkout", "-q", "d") == "checked out: d\n"
    assert _fast(capsys, "data", "checkout") == run_cli("data", "checkout")
    pulled = _fast(capsys, "data", "pull", "-q", "-r", "store", "d")
    assert pulled == run_cli("data", "pull", "-q", "-r", "store", "d")
    assert pulled == "fetched 0 objects (0 B) from store; 3 already cached\n"


def test_fast_errors_are_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Outside a git repository: exit 1 and one `error:` line on stderr, no traceback."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    err = _fast(capsys, "data", "status", code=1)
    assert err.startswith("error: ") and "not inside a git work tree" in err
    assert "Traceback" not in err


def test_console_script_uses_fast_path(repo: Path) -> None:
    """The installed entry point runs the fast path and falls back to Typer for the rest."""
    write_files(repo, {"d/a.txt": "a"})
    code = "import sys; from mltrail.cli._entry import main; sys.argv[0] = 'mltrail'; main()"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", code, *args], capture_output=True, text=True, check=False
        )

    done = cli("data", "add", "d")
    assert done.returncode == 0 and "added: d (1 files, 1 B)" in done.stdout
    helped = cli("data", "status", "--help")
    assert helped.returncode == 0 and "--dvc" in helped.stdout
    bad = cli("data", "push", "-j", "0")
    assert bad.returncode == 2 and "--jobs" in bad.stderr


def test_snapshot_answers_only_for_an_unchanged_listing(repo: Path) -> None:
    """A no-op build uses the snapshot; a change in size, mtime, mode or names does not."""
    write_files(repo, {"d/a.txt": "aaaa", "d/b.txt": "bbbb"})
    _age(repo / "d")
    with Cache(repo / ".cache") as cache:
        first = build(repo / "d", cache, store=False)
        assert first.tree is not None
        quick = build(repo / "d", cache, store=False, need_tree=False)
        assert quick.tree is None and quick.digest == first.digest and quick.count == 2
        (repo / "d/a.txt").write_text("AAAA")  # same size, new mtime
        _age(repo / "d")
        changed = build(repo / "d", cache, store=False, need_tree=False)
        assert changed.tree is not None and changed.digest != first.digest
        os.chmod(repo / "d/b.txt", 0o755)
        exe = build(repo / "d", cache, store=False, need_tree=False)
        assert exe.tree is not None and exe.tree.get("b.txt").is_exec  # type: ignore[union-attr]
        (repo / "d/c.txt").write_text("c")
        _age(repo / "d")
        more = build(repo / "d", cache, store=False, need_tree=False)
        assert more.tree is not None and more.count == 3


def test_racy_listing_records_no_snapshot(repo: Path) -> None:
    """Files modified within RACY_NS of hashing leave no snapshot behind."""
    write_files(repo, {"d/a.txt": "a"})
    soon = time.time_ns() + 10**10  # still "just modified" when build starts, however slow
    os.utime(repo / "d/a.txt", ns=(soon, soon))
    with Cache(repo / ".cache") as cache:
        build(repo / "d", cache, store=False)
        assert cache.index.get_snapshot(os.path.realpath(repo / "d"), "blake3") is None
        _age(repo / "d", seconds=RACY_NS / 1e9 * 100)
        build(repo / "d", cache, store=False)
        assert cache.index.get_snapshot(os.path.realpath(repo / "d"), "blake3") is not None


def test_complete_record_is_dropped_when_an_object_goes(repo: Path) -> None:
    """A tree recorded complete stops being complete once any of its objects is removed,
    whether its shard directory's mtime was trusted or too recent to be."""
    write_files(repo, {f"d/f{i}.txt": str(i) for i in range(40)})
    [added] = ops.add(DataRepo(repo), ["d"], progress=False)
    commit_all(repo)
    digest = added.pointer.digest
    with workspace.open_cache(DataRepo(repo)) as cache:
        assert cache.is_complete(digest)  # add recorded it (racy shards: listed again)
        objects = sorted(cache.read_tree(digest).digests())
        _age(cache.root)
        assert cache.check_complete(digest, objects) == []
        assert cache.is_complete(digest)  # trusted mtimes now: stat only
        cache.remove(objects[0])
        assert not cache.is_complete(digest)
        assert cache.check_complete(digest, objects) == [objects[0]]
    report = data_status.status(DataRepo(repo))
    assert report.entries[0].in_cache is False
    assert "1 object(s) not in the cache" in (report.entries[0].detail or "")


def test_recent_shards_are_listed_again(repo: Path) -> None:
    """A shard directory modified within RACY_NS of the check is not trusted by mtime: a
    removal that keeps its mtime is still seen."""
    write_files(repo, {"d/a.txt": "a", "d/b.txt": "b"})
    [added] = ops.add(DataRepo(repo), ["d"], progress=False)
    digest = added.pointer.digest
    with workspace.open_cache(DataRepo(repo)) as cache:
        objects = sorted(cache.read_tree(digest).digests())
        soon = time.time_ns() + 10**10  # "just modified" when checked
        shard = Path(cache.path_str(objects[0])).parent
        os.utime(shard, ns=(soon, soon))
        assert cache.check_complete(digest, objects) == []
        cache.remove(objects[0])
        os.utime(shard, ns=(soon, soon))  # the removal hidden behind the same mtime
        assert not cache.is_complete(digest)


def test_complete_survives_adding_other_data(repo: Path) -> None:
    """Adding another path (new objects in shared shards) keeps a tree complete."""
    write_files(repo, {f"d/f{i}.txt": str(i) for i in range(40)})
    [added] = ops.add(DataRepo(repo), ["d"], progress=False)
    write_files(repo, {"big.bin": "x" * 1000})
    ops.add(DataRepo(repo), ["big.bin"], progress=False)
    with workspace.open_cache(DataRepo(repo)) as cache:
        assert cache.is_complete(added.pointer.digest)
