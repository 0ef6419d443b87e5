"""Restore a run's code: a git worktree (or a clone) at the recorded commit, with the recorded
uncommitted diff applied.

The worktree is detached at the commit (``git worktree add --detach``), so no branch of the
user's repository moves; when the repository is not at hand (or lacks the commit) and a
remote was recorded, the remote is cloned instead. The diff is applied with
``git apply --index`` so that staged new files are staged again and ``git diff HEAD`` in the
worktree gives back the recorded diff byte for byte (the reproduction records the same
digest).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mltrail.errors import CodeRestoreError

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["CodeRestoreError", "RestoredCode", "has_commit", "remove_checkout", "restore_code"]

_TIMEOUT_S = 300.0


def _git(cwd: Path | None, *args: str, stdin: bytes | None = None) -> bytes:
    from mltrail._git import run_git
    from mltrail.errors import GitError

    try:
        return run_git(cwd, *args, timeout_s=_TIMEOUT_S, stdin=stdin, optional_locks=True)
    except GitError as exc:
        raise CodeRestoreError(exc.message) from None


def has_commit(root: Path, sha: str) -> bool:
    """Whether ``root`` is a git work tree holding commit ``sha``."""
    if not root.is_dir():
        return False
    try:
        _git(root, "cat-file", "-e", f"{sha}^{{commit}}")
    except CodeRestoreError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class RestoredCode:
    """Where the code was checked out and how.

    Attributes:
        path: The checkout's root.
        how: ``worktree of ROOT`` or ``clone of URL``.
        source_root: The repository it came from (for a worktree: to remove it later).
        diff_applied: The recorded uncommitted diff was applied.
    """

    path: Path
    how: str
    source_root: Path | None
    diff_applied: bool


def restore_code(
    dest: Path,
    sha: str,
    *,
    root: Path | None,
    remotes: dict[str, str] | None = None,
    diff: bytes | None = None,
) -> RestoredCode:
    """Check out commit ``sha`` at ``dest`` and apply ``diff``.

    Args:
        dest: The folder to create (must not exist, or be empty).
        sha: The commit.
        root: The recorded repository; used for a worktree when it holds the commit.
        remotes: Recorded remotes (name -> URL); cloned when ``root`` is unusable.
        diff: The recorded ``git diff HEAD --binary`` output, or None.

    Returns:
        The :class:`RestoredCode`.

    Raises:
        CodeRestoreError: no source holds the commit, or the diff does not apply.
    """
    if dest.exists() and any(dest.iterdir()):
        raise CodeRestoreError(f"the work directory {dest} exists and is not empty")
    dest.parent.mkdir(parents=True, exist_ok=True)
    if root is not None and has_commit(root, sha):
        _git(root, "worktree", "add", "--detach", "--force", str(dest), sha)
        how, source = f"worktree of {root}", root
    else:
        how, source = _clone(dest, sha, remotes or {}), None
    applied = False
    if diff:
        try:
            _git(dest, "apply", "--index", "--binary", "--whitespace=nowarn", "-", stdin=diff)
        except CodeRestoreError as exc:
            raise CodeRestoreError(
                f"the recorded uncommitted diff does not apply at {sha[:12]}: {exc.message}"
            ) from None
        applied = True
    return RestoredCode(dest, how, source, applied)


def _clone(dest: Path, sha: str, remotes: dict[str, str]) -> str:
    errors: list[str] = []
    for name, url in sorted(remotes.items(), key=lambda kv: kv[0] != "origin"):
        try:
            _git(None, "clone", "--quiet", "--no-checkout", url, str(dest))
            _git(dest, "checkout", "--quiet", "--detach", sha)
        except CodeRestoreError as exc:
            errors.append(f"{name} ({url}): {exc.message}")
            remove_checkout(dest, None)
            continue
        return f"clone of {name} ({url})"
    tried = "; ".join(errors) if errors else "no remote was recorded"
    raise CodeRestoreError(f"commit {sha[:12]} is not available: {tried}")


def remove_checkout(path: Path, source_root: Path | None) -> None:
    """Remove a checkout made by :func:`restore_code` (and its worktree registration)."""
    import shutil

    if source_root is not None:
        try:
            _git(source_root, "worktree", "remove", "--force", str(path))
        except CodeRestoreError:
            pass  # removed below; prune forgets it
    shutil.rmtree(path, ignore_errors=True)
    if source_root is not None:
        try:
            _git(source_root, "worktree", "prune")
        except CodeRestoreError:
            pass
