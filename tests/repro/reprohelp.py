"""Helpers the reproduce tests share: a git repository holding the examples, real processes."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from mltrail.testing.repos import init_repo

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
TIMEOUT_S = 180


def child_env(**extra: str) -> dict[str, str]:
    """The environment of every child: light (no sampler), no user git config."""
    env = {**os.environ, "MLTRAIL_SYSTEM_METRICS_S": "0", "GIT_CONFIG_NOSYSTEM": "1"}
    env.pop("MLTRAIL_SEED", None)
    env.update(extra)
    return env


def examples_repo(root: Path, *names: str, extra: dict[str, str] | None = None) -> Path:
    """A committed git repository holding the named example scripts (and ``extra`` files)."""
    files = {name: (EXAMPLES / name).read_text() for name in names}
    files[".gitignore"] = ".mltrail/\n"
    files.update(extra or {})
    init_repo(root, files)
    return root


def with_path(env: dict[str, str], folder: Path) -> dict[str, str]:
    """``env`` with ``folder`` first on ``PYTHONPATH``."""
    rest = env.get("PYTHONPATH")
    return {**env, "PYTHONPATH": os.pathsep.join([str(folder), *([rest] if rest else [])])}


def copy_featscale(dest: Path) -> Path:
    """The two fake ``featscale`` distributions (1.0 and 1.1), outside any repository."""
    shutil.copytree(EXAMPLES / "featscale", dest)
    return dest


def python(
    cwd: Path, *args: str, env: dict[str, str] | None = None, interpreter: str | None = None
) -> str:
    """Run ``python ARGS`` in ``cwd``; return the id of the run it logged."""
    done = subprocess.run(
        [interpreter or sys.executable, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env or child_env(),
        timeout=TIMEOUT_S,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    match = re.search(r"logged run (\w+)", done.stdout)
    if match is not None:
        return match.group(1)
    import mltrail

    return mltrail.Api(cwd / ".mltrail").runs(limit=1)[0].run_id


def mltrail_cli(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m mltrail ARGS`` in ``cwd``."""
    return subprocess.run(
        [sys.executable, "-m", "mltrail", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env or child_env(),
        timeout=TIMEOUT_S,
    )


def strict(text: str) -> Any:
    """json.loads refusing NaN/Infinity literals."""

    def reject(name: str) -> Any:
        raise AssertionError(f"non-standard JSON literal {name}")

    return json.loads(text, parse_constant=reject)
