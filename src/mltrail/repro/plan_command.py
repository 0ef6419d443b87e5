"""Plan the command: the recorded invocation (or, for older runs, the script's argv), what
cannot be re-run (``python -c``, redacted values), and, at run time, the same command moved
into the restored checkout (:func:`command_in_checkout`)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltrail.repro.plan import listed, state_doc

if TYPE_CHECKING:
    from mltrail.repro.plan import Plan

__all__ = ["command_in_checkout", "plan_command"]

_PYTHON = re.compile(r"^python(\d+(\.\d+)?)?$")
_REDACTED = "***"
_INLINE = "the program was given inline (python -c): its text was not recorded"


def plan_command(plan: Plan, state: dict[str, Any]) -> None:
    """The command line: sets ``plan.argv``, ``plan.cwd`` and ``plan.interpreter``.

    Args:
        plan: The plan being made.
        state: The run's captured state (``invocation``, else ``config``'s argv).
    """
    found = _from_invocation(plan, state)
    if found is None:
        found = _from_config_argv(plan, state)
    if found is None:
        return
    argv, source = found
    if argv[0] == "-c" or (plan.interpreter and len(argv) > 1 and argv[1] == "-c"):
        plan.add("command", "command", "missing", _INLINE)
        return
    plan.argv = argv
    shown = " ".join(argv[1:] if plan.interpreter else argv)
    who = "python " if plan.interpreter else ""
    plan.add("command", "command", "restore", f"{who}{shown}  (from {source})")
    hidden = [a for a in argv if _REDACTED in a]
    if hidden:
        plan.add(
            "command",
            "redacted arguments",
            "missing",
            f"values of secret-looking options were not recorded ({listed(hidden)}): they "
            "are passed as '***'; set them through the environment instead",
        )


def _is_python(arg: str, executable: str | None) -> bool:
    return bool(_PYTHON.match(Path(arg).name)) or (executable is not None and arg == executable)


def _recorded_executable(state: dict[str, Any]) -> str | None:
    env = state_doc(state, "environment") or {}
    executable = (env.get("python") or {}).get("executable")
    return executable if isinstance(executable, str) else None


def _from_invocation(plan: Plan, state: dict[str, Any]) -> tuple[list[str], str] | None:
    """The recorded invocation (``mltrail run``'s wrapped command, or the interpreter's)."""
    inv = state_doc(state, "invocation")
    if not (inv and isinstance(inv.get("argv"), list) and inv["argv"]):
        return None
    argv = [str(a) for a in inv["argv"]]
    plan.cwd = inv.get("cwd") if isinstance(inv.get("cwd"), str) else None
    recorded = _recorded_executable(state) if not inv.get("wrapped") else inv.get("executable")
    plan.interpreter = not inv.get("wrapped") or _is_python(argv[0], recorded)
    source = "the wrapped command (mltrail run)" if inv.get("wrapped") else "the command line"
    return argv, source


def _from_config_argv(plan: Plan, state: dict[str, Any]) -> tuple[list[str], str] | None:
    """A run from before invocation capture: the script's argv from its ``config`` state."""
    cfg = state_doc(state, "config") or {}
    args = cfg.get("argv")
    if not isinstance(args, list) or not args:
        plan.add("command", "command", "missing", "no command line was recorded")
        return None
    if args[0] in ("-c", ""):
        plan.add("command", "command", "missing", _INLINE)
        return None
    argv = [str(_recorded_executable(state) or "python"), *map(str, args)]
    plan.interpreter = True
    plan.add(
        "command",
        "working directory",
        "note",
        "not recorded (a run from before invocation capture): the repository root is used",
    )
    return argv, "the script's argv (the interpreter's own options and folder were not recorded)"


# -- the command at run time ------------------------------------------------------------------


def command_in_checkout(
    plan: Plan, checkout: Path | None, python: str, fallback_cwd: Path
) -> tuple[list[str], Path]:
    """The planned command moved into the restored checkout, and its working directory.

    The interpreter is replaced by ``python`` (unless the recorded path names the same
    file); arguments naming paths in the recorded repository point into ``checkout``; the
    recorded working directory is mapped into it.

    Args:
        plan: A runnable plan.
        checkout: The restored code (None: no code was restored).
        python: The interpreter to run (this one, or a rebuilt environment's).
        fallback_cwd: The working directory when the recorded one is not there.

    Returns:
        ``(argv, cwd)``.
    """
    assert plan.argv is not None
    argv = list(plan.argv)
    if plan.interpreter:
        argv[0] = python if not _same_file(argv[0], python) else argv[0]
    repo = plan.repo_root
    argv = [argv[0], *(_rewrite(a, plan.cwd, repo, checkout) for a in argv[1:])]
    if checkout is not None and repo is not None:
        if plan.cwd is not None and _under(plan.cwd, repo):
            return argv, checkout / os.path.relpath(plan.cwd, repo)
        if plan.cwd is not None and os.path.isdir(plan.cwd):
            return argv, Path(plan.cwd)
        return argv, checkout
    if plan.cwd is not None and os.path.isdir(plan.cwd):
        return argv, Path(plan.cwd)
    return argv, fallback_cwd


def _rewrite(arg: str, orig_cwd: str | None, repo: str | None, checkout: Path | None) -> str:
    """An argument naming a path in the recorded repository, moved to the checkout."""
    if repo is None or checkout is None or "\x00" in arg:
        return arg
    candidate = arg if os.path.isabs(arg) else os.path.join(orig_cwd or "", arg)
    candidate = os.path.normpath(candidate)
    inside_cwd = orig_cwd is not None and _under(orig_cwd, repo)
    if not os.path.isabs(arg) and inside_cwd:
        return arg  # relative to a folder that maps into the checkout: unchanged
    if not os.path.isabs(candidate) or not _under(candidate, repo):
        return arg
    moved = checkout / os.path.relpath(candidate, repo)
    return str(moved) if os.path.isabs(arg) or moved.exists() else arg


def _same_file(a: str, b: str) -> bool:
    """The recorded interpreter path names this one (a venv's python and python3: the same
    file in the same folder, so the same environment)."""
    try:
        same_dir = os.path.dirname(a) == os.path.dirname(b)
        return os.path.isabs(a) and same_dir and os.path.samefile(a, b)
    except OSError:
        return False


def _under(path: str, root: str) -> bool:
    path, root = os.path.normpath(path), os.path.normpath(root)
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)
