"""The working-tree stamp: an unchanged tree skips ``git status``, any change runs it again."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from test_git import _isolated_git, git, make_repo  # noqa: F401

from mltrail._gitignore import ignore_folder_in_git
from mltrail.capture import git as capture_git
from mltrail.capture.git import dirty_files

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git CLI not installed")

# older than this, a time stamp is trusted by the stamp (see capture.git._RACY_NS)
SETTLE_S = capture_git._RACY_NS / 1e9 + 0.02


@pytest.fixture(autouse=True)
def _fresh_caches() -> None:
    capture_git._stamped.clear()
    capture_git._last_ignored.clear()
    capture_git._recent_status.clear()


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    """Every git command the capture runs."""
    seen: list[tuple[str, ...]] = []
    real = capture_git._git

    def counting(root: Path, *args: str, timeout_s: float = 20.0) -> bytes:
        seen.append(args)
        return real(root, *args, timeout_s=timeout_s)

    monkeypatch.setattr(capture_git, "_git", counting)
    return seen


def _statuses(calls: list[tuple[str, ...]]) -> int:
    return sum(1 for c in calls if c and c[0] == "status")


def _repo(tmp_path: Path) -> Path:
    root = make_repo(
        tmp_path / "repo",
        {
            "train.py": "print('hi')\n",
            "pkg/model.py": "W = 1\n",
            ".gitignore": "outputs/\n*.log\n",
        },
    )
    ignore_folder_in_git(root / ".mltrail")  # the default store lives in the repository
    (root / ".mltrail" / "mltrail.db").write_bytes(b"x")
    time.sleep(SETTLE_S)
    return root


def _primed(root: Path, calls: list[tuple[str, ...]]) -> None:
    """Status until the stamp stands for it: from then on, git is not asked again."""
    for _ in range(3):
        assert dirty_files(root) == []
    before = _statuses(calls)
    assert dirty_files(root) == []
    assert _statuses(calls) == before, "an unchanged tree ran git status again"


def test_unchanged_tree_skips_git_status(tmp_path: Path, calls: list[tuple[str, ...]]) -> None:
    root = _repo(tmp_path)
    _primed(root, calls)
    before = _statuses(calls)
    for _ in range(20):
        assert dirty_files(root) == []
    assert _statuses(calls) == before


def test_ignored_files_coming_and_going_keep_the_stamp(
    tmp_path: Path, calls: list[tuple[str, ...]]
) -> None:
    root = _repo(tmp_path)
    (root / "outputs").mkdir()
    (root / "train.log").write_text("a\n")
    time.sleep(SETTLE_S)
    _primed(root, calls)
    before = _statuses(calls)
    for i in range(5):  # a run writes its outputs, logs and store files: none is code
        (root / "outputs" / f"model{i}.pt").write_bytes(b"w")
        with (root / "train.log").open("a") as f:
            f.write("b\n")
        (root / ".mltrail" / f"spool{i}").write_bytes(b"s")
        (root / ".mltrail" / "mltrail.db-wal").write_bytes(b"w")
        (root / ".mltrail" / "mltrail.db-wal").unlink()
        time.sleep(SETTLE_S)
        assert dirty_files(root) == []
    assert _statuses(calls) == before


def _same_size_edit(root: Path) -> None:
    path = root / "pkg" / "model.py"
    st = path.stat()
    path.write_text("W = 2\n")  # same size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # and the old mtime: ctime tells


CHANGES: dict[str, tuple[Callable[[Path], None], list[str]]] = {
    "edit": (lambda r: (r / "train.py").write_text("print('bye')\n"), ["train.py"]),
    "same-size edit, old mtime": (_same_size_edit, ["pkg/model.py"]),
    "new file": (lambda r: (r / "notes.py").write_text("x\n"), ["notes.py"]),
    "new file in a subfolder": (
        lambda r: (r / "pkg" / "extra.py").write_text("x\n"),
        ["pkg/extra.py"],
    ),
    "new folder": (
        lambda r: ((r / "new").mkdir(), (r / "new" / "a.py").write_text("x\n")),
        ["new/"],
    ),
    "deleted file": (lambda r: (r / "pkg" / "model.py").unlink(), ["pkg/model.py"]),
    "un-ignored by .gitignore": (
        lambda r: (
            (r / "outputs").mkdir(),
            (r / "outputs" / "a.txt").write_text("x"),
            (r / ".gitignore").write_text("*.log\n"),
        ),
        [".gitignore", "outputs/"],
    ),
    "store's config.toml": (
        lambda r: (r / ".mltrail" / "config.toml").write_text("[remote]\n"),
        [".mltrail/"],  # the folder, as git lists an untracked folder
    ),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_every_change_runs_git_again(
    tmp_path: Path, calls: list[tuple[str, ...]], change: str
) -> None:
    root = _repo(tmp_path)
    _primed(root, calls)
    act, expected = CHANGES[change]
    act(root)
    time.sleep(SETTLE_S)  # past the racy window: the stamp itself must see the change
    assert sorted(dirty_files(root)) == sorted(expected)


def test_a_change_inside_the_racy_window_is_seen(
    tmp_path: Path, calls: list[tuple[str, ...]]
) -> None:
    root = _repo(tmp_path)
    _primed(root, calls)
    (root / "train.py").write_text("print('x')\n")
    assert dirty_files(root) == ["train.py"]  # no sleep: a fresh time stamp is not trusted
    (root / "train.py").write_text("print('hi')\n")
    assert dirty_files(root) == []


def test_commit_and_checkout_move_the_recorded_sha(
    tmp_path: Path, calls: list[tuple[str, ...]]
) -> None:
    root = _repo(tmp_path)
    _primed(root, calls)
    first = capture_git._status(root)["sha"]
    (root / "train.py").write_text("print('v2')\n")
    git(root, "commit", "-qam", "v2")
    time.sleep(SETTLE_S)
    second = capture_git._status(root)
    assert second["sha"] != first and second["changed"] == []
    git(root, "checkout", "-q", "-b", "other")
    time.sleep(SETTLE_S)
    assert capture_git._status(root)["branch"] == "other"
    git(root, "checkout", "-q", first)
    time.sleep(SETTLE_S)
    detached = capture_git._status(root)
    assert detached["sha"] == first and detached["branch"] is None


def test_staged_change_is_seen(tmp_path: Path, calls: list[tuple[str, ...]]) -> None:
    root = _repo(tmp_path)
    _primed(root, calls)
    (root / "train.py").write_text("print('staged')\n")
    git(root, "add", "train.py")
    time.sleep(SETTLE_S)
    assert dirty_files(root) == ["train.py"]


def test_submodules_are_never_stamped(tmp_path: Path, calls: list[tuple[str, ...]]) -> None:
    root = _repo(tmp_path)
    (root / ".gitmodules").write_text("")
    git(root, "add", ".gitmodules")
    git(root, "commit", "-qm", "modules")
    time.sleep(SETTLE_S)
    for _ in range(4):
        assert dirty_files(root) == []
    assert _statuses(calls) == 4
