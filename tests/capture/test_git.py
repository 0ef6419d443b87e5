"""Code capture on real git repositories made with the git CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

from mltrail.capture import git as capture_git
from mltrail.capture.base import Capturer, blob_digest
from mltrail.capture.git import (
    CodeCapturer,
    capture_code,
    capture_repo,
    dirty_files,
    find_repo,
    strip_credentials,
)

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git CLI not installed")


@pytest.fixture(autouse=True)
def _isolated_git(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests see neither the user's git config nor a repository above tmp_path."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "no-global-gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    monkeypatch.delenv("MLTRAIL_CODE_REPOS", raising=False)


def git(root: Path, *args: str) -> str:
    """Run git in ``root`` and return its stdout."""
    done = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=True
    )
    return done.stdout


def make_repo(root: Path, files: dict[str, bytes | str] | None = None, commit: bool = True) -> Path:
    """A repository at ``root`` holding ``files``, committed unless ``commit`` is false."""
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Test User")
    git(root, "config", "user.email", "test@example.com")
    for name, content in (files or {"train.py": "print('hi')\n"}).items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content)
        else:
            path.write_bytes(content)
    git(root, "add", "-A")
    if commit:
        git(root, "commit", "-q", "-m", "initial")
    return root


def head(root: Path) -> str:
    """The full SHA of HEAD."""
    return git(root, "rev-parse", "HEAD").strip()


def test_clean_repo_records_sha_branch_and_no_diff(tmp_path: Path) -> None:
    """A clean repository records HEAD, its branch, and nothing dirty."""
    root = make_repo(tmp_path / "repo")
    data, blobs = capture_repo(root)
    assert data == {
        "root": str(root),
        "sha": head(root),
        "branch": "main",
        "remotes": {},
        "dirty": False,
        "changed_files": [],
        "untracked": [],
        "untracked_sources": [],
        "outputs": [],
        "diff": None,
        "diff_stats": {"files": 0, "insertions": 0, "deletions": 0},
    }
    assert blobs == {}


def test_dirty_repo_diff_rebuilds_the_working_tree(tmp_path: Path) -> None:
    """Modified, staged and untracked files are listed; applying the diff to HEAD restores them."""
    files = {"a.py": "one\ntwo\n", "b.py": "x\n", "c d ü.py": "c\n", "HEAD": "h\n"}
    root = make_repo(tmp_path / "repo", files)
    (root / "a.py").write_text("one\nTWO\nthree\n")
    (root / "HEAD").write_text("h2\n")
    (root / "b.py").write_text("x\ny\n")
    git(root, "add", "b.py")
    (root / "c d ü.py").unlink()
    (root / "notes.txt").write_text("scratch")
    data, blobs = capture_repo(root)
    assert data["dirty"] is True
    assert sorted(data["changed_files"]) == ["HEAD", "a.py", "b.py", "c d ü.py"]
    assert data["untracked"] == ["notes.txt"]
    assert data["diff_stats"] == {"files": 4, "insertions": 4, "deletions": 3}
    diff = blobs[data["diff"]]
    assert blob_digest(diff) == data["diff"]
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(root), str(clone))
    git(clone, "checkout", "-q", data["sha"])
    subprocess.run(["git", "-C", str(clone), "apply"], input=diff, check=True)
    assert (clone / "a.py").read_text() == "one\nTWO\nthree\n"
    assert (clone / "b.py").read_text() == "x\ny\n"
    assert not (clone / "c d ü.py").exists()
    assert (clone / "HEAD").read_text() == "h2\n"


def test_binary_change_is_captured_as_a_binary_patch(tmp_path: Path) -> None:
    """A changed binary file is in the diff as a binary patch that restores its exact bytes."""
    old, new = bytes(range(256)) * 4, bytes(reversed(range(256))) * 5 + b"\0tail"
    root = make_repo(tmp_path / "repo", {"weights.bin": old})
    (root / "weights.bin").write_bytes(new)
    data, blobs = capture_repo(root)
    diff = blobs[data["diff"]]
    assert b"GIT binary patch" in diff
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(root), str(clone))
    subprocess.run(["git", "-C", str(clone), "apply"], input=diff, check=True)
    assert (clone / "weights.bin").read_bytes() == new


def test_detached_head_has_no_branch(tmp_path: Path) -> None:
    """With HEAD detached, the SHA is recorded and the branch is None."""
    root = make_repo(tmp_path / "repo")
    sha = head(root)
    (root / "train.py").write_text("print('v2')\n")
    git(root, "commit", "-q", "-am", "second")
    git(root, "checkout", "-q", "--detach", sha)
    data, _ = capture_repo(root)
    assert data["sha"] == sha
    assert data["branch"] is None
    assert data["dirty"] is False


def test_repo_without_commits_diffs_against_the_empty_tree(tmp_path: Path) -> None:
    """A repository with no commit has no SHA, keeps its unborn branch, and diffs staged files."""
    root = make_repo(tmp_path / "repo", {"train.py": "print(1)\n"}, commit=False)
    data, blobs = capture_repo(root)
    assert data["sha"] is None
    assert data["branch"] == "main"
    assert data["changed_files"] == ["train.py"]
    assert b"+print(1)" in blobs[data["diff"]]
    assert data["diff_stats"] == {"files": 1, "insertions": 1, "deletions": 0}


def test_remote_credentials_are_stripped(tmp_path: Path) -> None:
    """An https remote loses user:token; an ssh remote is kept as configured."""
    root = make_repo(tmp_path / "repo")
    git(root, "remote", "add", "origin", "https://user:s3cr3t-token@example.com/team/x.git")
    git(root, "remote", "add", "mirror", "git@example.com:team/x.git")
    data, _ = capture_repo(root)
    assert data["remotes"] == {
        "mirror": "git@example.com:team/x.git",
        "origin": "https://example.com/team/x.git",
    }
    assert "s3cr3t" not in json.dumps(data)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://user:pass@host/x.git", "https://host/x.git"),
        ("https://ghp_abc123@github.com/o/r.git", "https://github.com/o/r.git"),
        ("http://user:p%40ss@host:8080/x", "http://host:8080/x"),
        ("https://host/x.git", "https://host/x.git"),
        ("ssh://git@host:22/x.git", "ssh://git@host:22/x.git"),
        ("ssh://git:pw@host/x.git", "ssh://git@host/x.git"),
        ("git@github.com:o/r.git", "git@github.com:o/r.git"),
        ("/srv/repos/x.git", "/srv/repos/x.git"),
    ],
)
def test_strip_credentials(url: str, expected: str) -> None:
    """Credentials leave http(s) URLs; ssh user names, scp-like URLs and paths are kept."""
    assert strip_credentials(url) == expected


def test_renamed_file_lists_both_paths(tmp_path: Path) -> None:
    """A staged rename lists the new and the original path."""
    root = make_repo(tmp_path / "repo", {"old.py": "a = 1\n" * 20})
    git(root, "mv", "old.py", "new.py")
    data, _ = capture_repo(root)
    assert sorted(data["changed_files"]) == ["new.py", "old.py"]


def test_untracked_list_is_capped(tmp_path: Path) -> None:
    """More than 1,000 untracked files are cut to 1,000 and flagged as truncated."""
    root = make_repo(tmp_path / "repo")
    for i in range(1005):
        (root / f"u{i:04d}.py").write_text("x")
    data, blobs = capture_repo(root)
    assert len(data["untracked"]) == 1000
    assert data["untracked_truncated"] is True
    assert data["dirty"] is True
    assert len(data["untracked_sources"]) == 200 and len(data["untracked_skipped"]) == 805
    assert len(blobs) == 1  # every kept file holds the same byte
    assert data["diff"] is None


def test_dirty_files_lists_tracked_and_untracked_but_not_ignored(tmp_path: Path) -> None:
    """The guard's list holds changed and untracked files, never ignored ones."""
    root = make_repo(tmp_path / "repo", {".gitignore": "*.log\n", "train.py": "x\n"})
    assert dirty_files(root) == []
    (root / "train.py").write_text("y\n")
    (root / "run.log").write_text("ignored")
    (root / "new.py").write_text("z\n")
    (root / "pkg").mkdir()
    (root / "pkg" / "mod.py").write_text("m\n")
    assert dirty_files(root) == ["train.py", "new.py", "pkg/"]


def test_find_repo_from_subdirectory_file_and_missing_path(tmp_path: Path) -> None:
    """The work-tree root is found from a nested file, a directory, or a path not yet created."""
    root = make_repo(tmp_path / "repo", {"src/pkg/mod.py": "x\n"})
    assert find_repo(root / "src" / "pkg" / "mod.py") == root.resolve()
    assert find_repo(root / "src") == root.resolve()
    assert find_repo(root / "src" / "not" / "there.py") == root.resolve()
    assert find_repo(tmp_path / "elsewhere") is None


def test_capture_code_with_extra_repo_argument_and_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Extra repositories come from the argument and MLTRAIL_CODE_REPOS, each captured once."""
    main = make_repo(tmp_path / "main", {"train.py": "x\n"})
    lib = make_repo(tmp_path / "lib", {"lib.py": "y\n"})
    data_repo = make_repo(tmp_path / "data", {"d.txt": "z\n"})
    monkeypatch.setenv("MLTRAIL_CODE_REPOS", f"{data_repo}{os.pathsep}{lib}")
    captured = capture_code(main / "train.py", [lib / "lib.py", tmp_path / "nowhere"])
    assert captured.kind == "code"
    roots = [repo["root"] for repo in captured.data["repos"]]
    assert roots == [str(main.resolve()), str(lib.resolve()), str(data_repo.resolve())]
    assert captured.data["entry_repo"] == str(main.resolve())
    assert captured.data["versioned"] is True
    assert captured.data["errors"] == [
        {"path": str(tmp_path / "nowhere"), "reason": "not inside a git work tree"}
    ]
    json.dumps(captured.data)


def test_capture_code_collects_blobs_from_every_repo(tmp_path: Path) -> None:
    """Diffs of all dirty repositories are returned as blobs keyed by the digests in data."""
    main = make_repo(tmp_path / "main", {"train.py": "x\n"})
    lib = make_repo(tmp_path / "lib", {"lib.py": "y\n"})
    (main / "train.py").write_text("x2\n")
    (lib / "lib.py").write_text("y2\n")
    captured = capture_code(main, [lib])
    digests = [repo["diff"] for repo in captured.data["repos"]]
    assert len(set(digests)) == 2
    assert set(captured.blobs) == set(digests)


def test_outside_git_records_no_code_version(tmp_path: Path) -> None:
    """Outside any repository the capture says so instead of failing."""
    script = tmp_path / "plain" / "train.py"
    script.parent.mkdir()
    script.write_text("x\n")
    captured = capture_code(script)
    assert captured.data == {
        "repos": [],
        "entry_repo": None,
        "versioned": False,
        "note": "no code version",
    }


def test_entry_defaults_to_main_module_or_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without an entry, a REPL-like __main__ (no file) falls back to the current directory."""
    root = make_repo(tmp_path / "repo")
    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))
    monkeypatch.chdir(root)
    assert capture_code().data["entry_repo"] == str(root.resolve())


def test_missing_git_is_recorded_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a git executable, capture records the reason and the guard sees nothing."""
    root = make_repo(tmp_path / "repo")
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    data, blobs = capture_repo(root)
    assert data["error"] == "git executable not found"
    assert data["sha"] is None and blobs == {}
    assert find_repo(root) is None
    assert dirty_files(root) == []
    data = capture_code(root).data
    assert (data["note"], data["reason"]) == ("no code version", "git executable not found")


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to chown a repository"
)
def test_repository_git_refuses_records_why(tmp_path: Path) -> None:
    """A repository owned by another user (safe.directory) is not silently unversioned."""
    root = make_repo(tmp_path / "repo")
    for path in [root, *root.rglob("*")]:
        os.chown(path, 12345, 12345, follow_symlinks=False)
    data = capture_code(root).data
    assert data["note"] == "no code version"
    assert "dubious ownership" in data["reason"]


def test_git_failure_in_a_broken_repo_is_recorded(tmp_path: Path) -> None:
    """A directory that is not a repository yields an error entry, not an exception."""
    plain = tmp_path / "plain"
    plain.mkdir()
    data, _ = capture_repo(plain)
    assert data["error"].startswith("git status failed")


def test_diff_over_the_limit_is_not_stored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A diff larger than the cap keeps its stats but is not stored, and says why."""
    root = make_repo(tmp_path / "repo", {"a.txt": "a\n"})
    (root / "a.txt").write_text("b\n" * 100)
    monkeypatch.setattr(capture_git, "DIFF_MAX_BYTES", 50)
    data, blobs = capture_repo(root)
    assert data["diff"] is None and blobs == {}
    assert "exceeds 50 bytes" in data["diff_error"]
    assert data["diff_stats"]["insertions"] == 100


def test_code_capturer_satisfies_the_protocol(tmp_path: Path) -> None:
    """CodeCapturer is a Capturer whose capture() equals capture_code()."""
    root = make_repo(tmp_path / "repo")
    capturer = CodeCapturer(root)
    assert isinstance(capturer, Capturer)
    assert capturer.available() is True
    assert capturer.capture() == capture_code(root)
