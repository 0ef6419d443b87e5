"""Judge a run that has just run against a reference run, and store the verdict on it.

Shared by :func:`~mltrail.repro.reproduce` (the new run against the original) and
:func:`~mltrail.repro.verify_determinism` (runs 2..N against run 1).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mltrail.api import Api
    from mltrail.diff import RunDiff
    from mltrail.repro.verdict import Comparison
    from mltrail.sdk.run import Run

__all__ = ["judge", "without_reproduction_noise"]


def judge(
    api: Api,
    run: Run,
    exit_code: int,
    original: str,
    *,
    rtol: float,
    atol: float,
    extra: Mapping[str, Any],
    tags: Mapping[str, str],
) -> Comparison:
    """Compare ``run`` with ``original``, store the verdict on ``run``, and finish it.

    Args:
        api: Where both runs live.
        run: The live run whose command has exited.
        exit_code: The command's exit code (its run's status follows from it).
        original: The reference run's id.
        rtol: Relative tolerance (of the reference's value).
        atol: Absolute tolerance.
        extra: More facts for the stored verdict document.
        tags: Tags set on ``run`` with the verdict tag.

    Returns:
        The :class:`~mltrail.repro.verdict.Comparison`.
    """
    from mltrail.diff import diff_runs
    from mltrail.repro.compare import compare_runs
    from mltrail.repro.launcher import status_for
    from mltrail.repro.verdict import (
        VERDICT_KIND,
        VERDICT_TAG,
        Comparison,
        explain,
        verdict_document,
    )

    status = status_for(exit_code)
    run.recorder.stop_capture()  # the capture is in the spool: the diff sees all of it
    run.flush(timeout=60)
    outcome = compare_runs(api, original, run.run_id, rtol, atol, b_status=status)
    diff = without_reproduction_noise(diff_runs(api, original, run.run_id), status)
    causes = explain(outcome, diff, api.state(original), api.state(run.run_id))
    doc = verdict_document(outcome, causes, original=original, extra=dict(extra))
    run.set_tags({**tags, VERDICT_TAG: outcome.verdict})
    run.recorder.state(VERDICT_KIND, doc)
    run.finish(status)
    return Comparison(outcome, tuple(causes), diff)


def _interpreter_only(a: Any, b: Any) -> bool:
    """Two argv lists that differ only in the Python interpreter that ran them."""
    import os

    if not (isinstance(a, list) and isinstance(b, list)) or len(a) != len(b) or not a:
        return False
    names = [os.path.basename(str(x[0])) for x in (a, b)]
    return a[1:] == b[1:] and all(n.startswith("python") for n in names)


def without_reproduction_noise(diff: RunDiff, status: str) -> RunDiff:
    """``diff`` without what running it again changes by construction: the detached branch
    of the checkout, the interpreter reached by another path (a venv's symlink), and the
    status of the run still being judged (it is ``status`` now)."""
    code = diff.kinds.get("code")
    if code is not None:
        code.changes = [c for c in code.changes if not (c.key.endswith(": branch") and c.b is None)]
    config = diff.kinds.get("config")
    if config is not None:
        config.changes = [
            c
            for c in config.changes
            if not (c.key.endswith("argv") and _interpreter_only(c.a, c.b))
        ]
    outcome = diff.kinds.get("outcome")
    if outcome is not None:
        outcome.changes = [
            c
            for c in outcome.changes
            if not (c.key == "status" and c.b == "running" and c.a == status)
        ]
    return diff
