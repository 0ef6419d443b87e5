"""Judge a run that has just run against a reference run, and store the verdict on it.

Shared by :func:`~mltrail.repro.reproduce` (the new run against the original) and
:func:`~mltrail.repro.verify_determinism` (runs 2..N against run 1).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mltrail.api import Api
    from mltrail.repro.verdict import Comparison
    from mltrail.sdk.run import Run

__all__ = ["judge"]


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
    diff = diff_runs(api, original, run.run_id)
    causes = explain(outcome, diff, api.state(original), api.state(run.run_id))
    doc = verdict_document(outcome, causes, original=original, extra=dict(extra))
    run.set_tags({**tags, VERDICT_TAG: outcome.verdict})
    run.recorder.state(VERDICT_KIND, doc)
    run.finish(status)
    return Comparison(outcome, tuple(causes), diff)
