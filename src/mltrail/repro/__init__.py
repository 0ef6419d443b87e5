"""Reproduce a recorded run and prove the result: ``mltrail reproduce`` and
``mltrail verify-determinism``.

One module per step: :mod:`~mltrail.repro.plan` (what can be restored, read-only),
:mod:`~mltrail.repro.code` (worktree at the commit + the recorded diff),
:mod:`~mltrail.repro.environment` (this interpreter's differences, or a rebuilt virtual
environment), :mod:`~mltrail.repro.data` (inputs by digest, verified),
:mod:`~mltrail.repro.compare` (metric series and artifact digests, vectorised) and
:mod:`~mltrail.repro.verdict` (causes in words, the stored verdict). The command line that
runs the recorded command lives in :mod:`mltrail.cli.repro_cmd`.

Nothing heavy is imported here.
"""

from __future__ import annotations
