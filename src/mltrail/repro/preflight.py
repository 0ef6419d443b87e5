"""Pre-flight: run a command for a few logged steps and check it is fit to train for real.

The command runs through :func:`~mltrail.repro.launch.launch` with
``MLTRAIL_PREFLIGHT_STEPS`` set (the SDK ends it cleanly after that many steps); then the
run is checked: a clean exit, metrics logged and finite, config captured, code committed,
and every expected file written.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    import os
    from collections.abc import Callable, Mapping, Sequence
    from typing import Any

    from mltrail.repro.launcher import Launched
    from mltrail.sdk.run import Run

__all__ = ["Check", "Preflight", "preflight", "preflight_checks"]


@dataclass(frozen=True, slots=True)
class Check:
    """One pre-flight check: what, whether it passed, and the detail."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class Preflight:
    """A pre-flight's run and checks."""

    launched: Launched
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        """Every check passed."""
        return all(c.ok for c in self.checks)


def preflight(
    command: Sequence[str],
    *,
    steps: int = 2,
    expect: Sequence[str | os.PathLike[str]] = (),
    project: str = "default",
    config: Mapping[str, Any] | None = None,
    store: str | os.PathLike[str] | None = None,
    allow_dirty: bool | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    stdout: BinaryIO | None = None,
    stderr: BinaryIO | None = None,
    on_start: Callable[[Run], None] | None = None,
) -> Preflight:
    """Run ``command`` for ``steps`` logged steps as a run tagged ``preflight``, and check it.

    Args:
        command: The program and its arguments.
        steps: Logged steps to run.
        expect: Files the command must write (relative to ``cwd``).
        project: The run's project.
        config: Config recorded as params.
        store: Where the run goes.
        allow_dirty: Run uncommitted code, recording the diff.
        env: The command's environment (None: this process's).
        cwd: Where it runs (None: here).
        stdout: Where its standard output is echoed (None: ours).
        stderr: Where its standard error is echoed (None: ours).
        on_start: Called with the live run before the command starts.

    Returns:
        The :class:`Preflight`.

    Raises:
        LaunchError: The command could not be started.
    """
    from mltrail.repro.launcher import launch

    started = time.time()
    launched = launch(
        command,
        project=project,
        tags={"preflight": "true"},
        config=config,
        store=store,
        allow_dirty=allow_dirty,
        env=env,
        extra_env={"MLTRAIL_PREFLIGHT_STEPS": str(steps)},
        cwd=cwd,
        stdout=stdout,
        stderr=stderr,
        on_start=on_start,
    )
    paths = [Path(p) for p in expect]
    folder = None if cwd is None else Path(cwd)
    return Preflight(launched, tuple(preflight_checks(launched, paths, started, folder)))


def preflight_checks(
    launched: Launched, expect: Sequence[Path], started: float, cwd: Path | None = None
) -> list[Check]:
    """The checks of a finished pre-flight run.

    Args:
        launched: The run.
        expect: Files it must have written (since ``started``).
        started: When the pre-flight started (seconds since the epoch).
        cwd: The folder relative ``expect`` paths are in (None: the current directory).

    Returns:
        The checks, in the order they are shown.
    """
    import numpy as np

    from mltrail.api import Api

    api = Api(launched.store)
    record = api.run(launched.run_id)
    state = api.state(launched.run_id)
    user_keys = [k for k in record.metrics if not k.startswith("system/")]
    history = api.history
    bad = [k for k in user_keys if not np.all(np.isfinite(history(launched.run_id, k).values))]
    code_state = state.get("code", {})
    dirty = [r.get("root") for r in code_state.get("repos", []) if r.get("dirty")]
    checks = [
        Check(
            "command exited cleanly", launched.exit_code == 0, f"exit status {launched.exit_code}"
        ),
        Check("metrics logged", bool(user_keys), ", ".join(sorted(user_keys)) or "none"),
        Check(
            "metrics finite",
            bool(user_keys) and not bad,
            f"non-finite: {', '.join(bad)}" if bad else "all finite",
        ),
        Check(
            "config captured",
            bool(record.params or record.config),
            f"{len(record.params)} params" if record.params else "no config or params",
        ),
        Check(
            "code committed",
            bool(code_state.get("versioned")) and not dirty,
            "uncommitted changes in " + ", ".join(map(str, dirty))
            if dirty
            else ("clean" if code_state.get("versioned") else "no code version"),
        ),
    ]
    for path in expect:
        where = path if cwd is None or path.is_absolute() else cwd / path
        ok = where.exists() and where.stat().st_mtime >= started - 1
        checks.append(Check(f"wrote {path}", ok, "written" if ok else "missing or not updated"))
    return checks
