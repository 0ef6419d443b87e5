"""`mltrail data add` and `status` end to end in a real git repository."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from datahelp import commit_all, write_files

from mltrail.data.ops import add
from mltrail.data.pointer import read_pointer
from mltrail.data.repo import DataRepo
from mltrail.data.status import status
from mltrail.errors import InvalidArgumentError, NotFoundError, UnsafePathError
from mltrail.testing.repos import git


def _states(repo: Path) -> dict[str, str]:
    return {e.data_path: e.state for e in status(DataRepo(repo)).entries}


def test_add_writes_pointer_gitignore_and_cache(repo: Path) -> None:
    """add: a pointer per path, a .gitignore entry, objects in .mltrail/cache; git sees only
    the pointer and the .gitignore."""
    write_files(repo, {"data/train/a.csv": "x\n1\n", "data/train/b/c.bin": b"\x00" * 10})
    write_files(repo, {"data/model.bin": b"weights"})
    (r_tree, r_file) = add(DataRepo(repo), [Path("data/train"), repo / "data/model.bin"])
    assert r_tree.pointer.kind == "tree" and r_tree.pointer.files == 2
    assert r_tree.pointer.size == 4 + 10 and r_tree.pointer.digest.endswith(".tree")
    assert r_file.pointer.kind == "file" and r_file.pointer.size == 7
    assert read_pointer(repo / "data/train.mltrail") == r_tree.pointer
    assert (repo / "data/.gitignore").read_text() == "/train\n/model.bin\n"
    changed = git(repo, "status", "--porcelain", "--untracked-files=all").split("\n")
    assert sorted(x for x in changed if x) == [
        "?? data/.gitignore",
        "?? data/model.bin.mltrail",
        "?? data/train.mltrail",
    ]
    cache = repo / ".mltrail/cache"
    assert sum(1 for p in cache.rglob("*") if p.is_file() and "index" not in p.name) >= 4


def test_readd_unchanged_is_noop_changed_updates(repo: Path) -> None:
    """Re-adding unchanged data rewrites nothing; a change gives a new digest."""
    write_files(repo, {"d/x.txt": "1", "d/y.txt": "2"})
    (first,) = add(DataRepo(repo), ["d"])
    mtime = (repo / "d.mltrail").stat().st_mtime_ns
    (again,) = add(DataRepo(repo), ["d"])
    assert not again.changed and again.pointer == first.pointer
    assert (repo / "d.mltrail").stat().st_mtime_ns == mtime
    assert (repo / ".gitignore").read_text().count("/d\n") == 1
    (repo / "d/x.txt").unlink()
    write_files(repo, {"d/x.txt": "one"})
    (third,) = add(DataRepo(repo), ["d"])
    assert third.changed and third.pointer.digest != first.pointer.digest


def test_status_states(repo: Path) -> None:
    """unchanged, modified (with what changed inside), missing, and not in the cache."""
    write_files(repo, {"d/a": "a", "d/b": "b", "f.bin": "f", "g.bin": "g"})
    add(DataRepo(repo), ["d", "f.bin", "g.bin"])
    commit_all(repo)
    assert _states(repo) == {"d": "unchanged", "f.bin": "unchanged", "g.bin": "unchanged"}
    for name in ("a", "b"):
        (repo / "d" / name).unlink()
    write_files(repo, {"d/a": "A", "d/new": "n"})
    (repo / "f.bin").unlink()
    report = status(DataRepo(repo))
    by = {e.data_path: e for e in report.entries}
    assert by["d"].state == "modified"
    assert by["d"].changes == {"added": ["new"], "removed": ["b"], "modified": ["a"]}
    assert by["f.bin"].state == "missing" and by["f.bin"].in_cache
    assert not report.clean
    # an object gone from the cache (another machine's pointer): not_in_cache
    (repo / "g.bin").unlink()
    g_digest = by["g.bin"].digest
    algo, _, hexd = g_digest.partition(":")
    os.chmod(repo / ".mltrail/cache" / algo / hexd[:2], 0o755)
    obj = repo / ".mltrail/cache" / algo / hexd[:2] / hexd[2:]
    obj.unlink()
    by = {e.data_path: e for e in status(DataRepo(repo)).entries}
    assert by["g.bin"].state == "not_in_cache" and by["g.bin"].in_cache is False
    only = status(DataRepo(repo), ["d"])
    assert [e.data_path for e in only.entries] == ["d"]


def test_add_refusals(repo: Path, tmp_path: Path) -> None:
    """Paths outside the repo, missing, tracked by git, overlapping tracked data: refused."""
    data_repo = DataRepo(repo)
    outside = tmp_path / "outside.txt"
    outside.write_text("x")
    with pytest.raises(UnsafePathError, match="outside the repository"):
        add(data_repo, [outside])
    with pytest.raises(NotFoundError):
        add(data_repo, ["nope"])
    with pytest.raises(InvalidArgumentError, match="already tracked by git"):
        add(data_repo, ["README.md"])
    write_files(repo, {"d/sub/x": "x"})
    add(data_repo, ["d"])
    with pytest.raises(InvalidArgumentError, match="overlaps d"):
        add(data_repo, ["d/sub"])
    with pytest.raises(UnsafePathError):
        add(data_repo, [".git"])
    with pytest.raises(InvalidArgumentError, match="pointer file"):
        add(data_repo, ["d.mltrail"])


def test_invalid_pointer_reported_not_fatal(repo: Path) -> None:
    """status lists a broken pointer file as an error and goes on with the others."""
    write_files(repo, {"ok.bin": "x", "bad.mltrail": "mltrail: 1\nkind: nope\n"})
    add(DataRepo(repo), ["ok.bin"])
    report = status(DataRepo(repo))
    assert [e.data_path for e in report.entries] == ["ok.bin"]
    assert len(report.errors) == 1 and "bad.mltrail" in report.errors[0]


def test_not_a_git_repo(tmp_path: Path) -> None:
    """Outside git: a clear error."""
    with pytest.raises(NotFoundError, match="not inside a git work tree"):
        DataRepo.discover(tmp_path)
