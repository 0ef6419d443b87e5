"""Reproduce a recorded run and prove the result, as a library.

The public face:

- :func:`reproduce` re-runs a recorded run from its record (code at the recorded commit and
  diff, environment, data by digest, config, seeds, numerics variables) and returns a
  :class:`Verdict` (``identical`` / ``within-tolerance`` / ``diverged`` / ``failed``).
- :func:`verify_determinism` runs a command several times and compares the runs.
- :func:`launch` tracks any command as a run (``mltrail run``);
  :func:`mltrail.repro.preflight.preflight` runs it for a few steps and checks it
  (``mltrail preflight``).

Everything takes its environment and working directory explicitly (``env=``, ``cwd=``):
``os.environ`` and the current directory are never changed.

One module per step: :mod:`~mltrail.repro.plan` (what can be restored, read-only; one
``plan_*`` module per concern), :mod:`~mltrail.repro.code` (worktree at the commit + the
recorded diff), :mod:`~mltrail.repro.environment` (this interpreter's differences, or a
rebuilt virtual environment), :mod:`~mltrail.repro.data` (inputs by digest, verified),
:mod:`~mltrail.repro.launcher` (start a wrapped run, run the command attached to it),
:mod:`~mltrail.repro.compare` (metric series and artifact digests, vectorised),
:mod:`~mltrail.repro.judge` and :mod:`~mltrail.repro.verdict` (causes in words, the stored
verdict), :mod:`~mltrail.repro.reproduction` and :mod:`~mltrail.repro.determinism` (the
orchestration). The command line (:mod:`mltrail.cli.repro_cmd`, :mod:`mltrail.cli.run_cmd`)
only parses arguments, calls these and prints.

Nothing heavy is imported here: NumPy, the store and git load inside the calls.

Example:
    >>> import mltrail.repro
    >>> verdict = mltrail.repro.reproduce("3f2a9c1e", store="repo/.mltrail")  # doctest: +SKIP
    >>> print(verdict.summary())  # doctest: +SKIP
    identical: 12 metric points over 2 keys and 1 artifact digests, bit for bit
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mltrail.repro.determinism import verify_determinism
    from mltrail.repro.launcher import Launched, LaunchError, launch
    from mltrail.repro.progress import Progress
    from mltrail.repro.reproduction import NotReproducibleError, reproduce
    from mltrail.repro.verdict import Comparison, Verdict

#: name -> module: each loads on first use (PEP 562), so that ``mltrail.repro.checklist``
#: or ``mltrail.repro.verdict`` alone (the CLI's light reads) do not load the launcher
_PUBLIC = {
    "Comparison": "mltrail.repro.verdict",
    "LaunchError": "mltrail.repro.launcher",
    "Launched": "mltrail.repro.launcher",
    "NotReproducibleError": "mltrail.repro.reproduction",
    "Progress": "mltrail.repro.progress",
    "Verdict": "mltrail.repro.verdict",
    "launch": "mltrail.repro.launcher",
    "reproduce": "mltrail.repro.reproduction",
    "verify_determinism": "mltrail.repro.determinism",
}

__all__ = [
    "Comparison",
    "LaunchError",
    "Launched",
    "NotReproducibleError",
    "Progress",
    "Verdict",
    "launch",
    "reproduce",
    "verify_determinism",
]


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'mltrail.repro' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})
