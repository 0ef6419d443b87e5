"""What ``mltrail run`` adds around a command, with no change to the command: console
metrics (:mod:`~mltrail.repro.console_metrics`), the files it wrote
(:mod:`~mltrail.repro.outputs`), and the config a Python child parsed
(:mod:`~mltrail.repro.autoconfig`). Used by :func:`~mltrail.repro.launch`,
:func:`~mltrail.repro.reproduce` and :func:`~mltrail.repro.verify_determinism` alike, so a
re-run is observed exactly as the original was.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import os
    from collections.abc import Callable, Mapping, Sequence

    from mltrail.sdk.run import Run

__all__ = ["Observer"]


class Observer:
    """Watches one wrapped command: create it after the run starts, pass :attr:`env` and
    :attr:`on_output` to :func:`~mltrail.repro.launcher.run_attached`, then call
    :meth:`finish` before the run ends.

    Args:
        run: The live wrapper run.
        command: The command (recorded with the config found).
        cwd: The command's working directory.
        metrics: ``NAME=REGEX`` console metrics.
        env: The command's environment (its ``PYTHONPATH`` is extended).
    """

    def __init__(
        self,
        run: Run,
        command: Sequence[str],
        cwd: str | os.PathLike[str] | None,
        metrics: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        from mltrail.repro import autoconfig
        from mltrail.repro.console_metrics import ConsoleMetrics
        from mltrail.repro.outputs import snapshot

        self._run = run
        self._argv = [str(a) for a in command]
        self._cwd = Path.cwd() if cwd is None else Path(cwd).resolve()
        self._metrics = ConsoleMetrics(run, metrics) if metrics else None
        self._before = snapshot(self._cwd)
        self._auto = autoconfig.AutoConfig(env)

    @property
    def env(self) -> dict[str, str]:
        """Variables to add to the command's environment."""
        return self._auto.env

    @property
    def on_output(self) -> Callable[[list[Any]], None] | None:
        """The console sink of the metrics patterns (None without patterns)."""
        return self._metrics.feed if self._metrics is not None else None

    def finish(self) -> list[str]:
        """Record the written files and the parsed config; the written paths."""
        from mltrail.repro.outputs import record_written, remember_outputs

        written = record_written(self._run, self._cwd, self._before)
        remember_outputs(self._cwd, written)
        self._auto.record(self._run, self._cwd, written, self._argv)
        return written
