"""The one way mltrail runs git: ``git -C ROOT ARGS`` with a timeout, errors as messages.

Every caller (capture, data versioning, diff, reproduce) goes through :func:`run_git`, so they
agree on the environment: ``GIT_OPTIONAL_LOCKS=0`` (a read never takes the index lock a
user's own ``git`` needs), ``GIT_TERMINAL_PROMPT=0`` (never wait on a password prompt),
``LC_ALL=C`` (output we parse is not translated), and no stdin unless one is given.
"""

from __future__ import annotations

import os
import subprocess
from typing import TYPE_CHECKING

from mltrail.errors import GitError

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

__all__ = ["run_git"]


def run_git(
    root: Path | str | None,
    *args: str,
    timeout_s: float = 30.0,
    ok_codes: Sequence[int] = (0,),
    stdin: bytes | None = None,
    optional_locks: bool = False,
) -> bytes:
    """Run ``git [-C root] ARGS`` and return its stdout.

    Args:
        root: the repository (``-C``), or None for the current directory.
        timeout_s: seconds before the command is killed.
        ok_codes: exit codes that count as success.
        stdin: bytes to feed on standard input (none by default).
        optional_locks: let git take optional locks (commands that write, like
            ``worktree add`` or ``apply``, want the normal behaviour).

    Raises:
        GitError: git missing, timed out, failed to start, or exited with another code.
    """
    env = dict(os.environ, GIT_TERMINAL_PROMPT="0", LC_ALL="C")
    if not optional_locks:
        env["GIT_OPTIONAL_LOCKS"] = "0"
    cmd = ["git", *args] if root is None else ["git", "-C", str(root), *args]
    try:
        proc = subprocess.run(
            cmd,
            input=stdin,
            capture_output=True,
            env=env,
            timeout=timeout_s,
            check=False,
            stdin=None if stdin is not None else subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise GitError("git executable not found") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"git {args[0]} timed out after {timeout_s:g} s") from None
    except OSError as exc:
        raise GitError(f"git could not run: {exc}") from None
    if proc.returncode not in ok_codes:
        lines = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        fatal = [line for line in lines if line.startswith(("fatal:", "error:"))]
        detail = (fatal or lines or [f"exit status {proc.returncode}"])[0]
        raise GitError(f"git {args[0]} failed: {detail}", proc.returncode)
    return proc.stdout
