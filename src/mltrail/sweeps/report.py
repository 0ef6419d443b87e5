"""What ``mltrail sweep show`` prints: the sweep, its trials, the best so far.

Read-only: the record, Optuna's trials (retries and trials asked past the cap marked as such),
the best trial (Optuna's ``best_trial``; the Pareto front for several metrics) with the
command that reruns it, and the best-so-far curve in trial order.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from mltrail.entities import json_safe
from mltrail.sweeps.session import OVER_CAP, RETRY_OF, SweepSession

if TYPE_CHECKING:
    import optuna

__all__ = ["MIN_TRIALS_FOR_IMPORTANCE", "STATES", "describe_sweep", "importance"]

#: below this many complete trials, no importance is computed (it would be noise)
MIN_TRIALS_FOR_IMPORTANCE = 4

#: Optuna's trial states as mltrail names them (a pruned trial's run is ``pruned`` too)
STATES = {
    "COMPLETE": "finished",
    "PRUNED": "pruned",
    "FAIL": "failed",
    "RUNNING": "running",
    "WAITING": "waiting",
}


def describe_sweep(sweep_id: str, *, store: str | None = None) -> dict[str, Any]:
    """The sweep as plain data (JSON-safe).

    Returns:
        ``{"sweep": record, "state", "counts", "trials": [...], "best": [...],
        "best_so_far": [...], "importance": {param: share} | None}``; ``best`` holds one
        trial (several for a Pareto front), each with ``rerun``: the ``mltrail reproduce``
        command of its run.

    Raises:
        NotFoundError: no such sweep.
    """
    with SweepSession(sweep_id, store) as session:
        every = session.study.get_trials(deepcopy=False)
        trials = [t for t in every if OVER_CAP not in t.system_attrs]
        rows = [_trial_row(t) for t in trials]
        counts: dict[str, int] = {}
        for row in rows:
            counts[row["state"]] = counts.get(row["state"], 0) + 1
        out: dict[str, Any] = json_safe(
            {
                "sweep": session.record.to_dict(),
                "state": session.state(),
                "cap": session.cap(),
                "counts": counts,
                "trials": rows,
                "best": [_best_row(t) for t in _best(session)],
                "best_so_far": _best_so_far(session, trials),
                "importance": importance(session.study, trials),
            }
        )
    return out


def _trial_row(t: optuna.trial.FrozenTrial) -> dict[str, Any]:
    steps = sorted(t.intermediate_values)
    return {
        "number": t.number,
        "state": STATES.get(t.state.name, t.state.name.lower()),
        "params": dict(t.params),
        "values": list(t.values) if t.values is not None else None,
        "run_id": t.user_attrs.get("run_id"),
        "steps": len(steps),
        "last_step": steps[-1] if steps else None,
        "retry_of": t.system_attrs.get(RETRY_OF),
        "reason": t.user_attrs.get("reason", ""),
        "duration_s": t.duration.total_seconds() if t.duration is not None else None,
    }


def _best(session: SweepSession) -> list[optuna.trial.FrozenTrial]:
    study = session.study
    if session.spec.multi_objective:
        return list(study.best_trials)
    try:
        return [study.best_trial]
    except ValueError:  # no complete trial yet
        return []


def _best_row(t: optuna.trial.FrozenTrial) -> dict[str, Any]:
    row = _trial_row(t)
    run_id = row["run_id"]
    row["rerun"] = f"mltrail reproduce {run_id}" if run_id else None
    return row


def _best_so_far(session: SweepSession, trials: list[optuna.trial.FrozenTrial]) -> list[Any]:
    """``[number, value, best value so far]`` of each complete trial (single metric)."""
    if session.spec.multi_objective:
        return []
    better = max if session.spec.metrics[0].goal == "maximize" else min
    best = math.nan
    out = []
    for t in sorted(trials, key=lambda t: t.number):
        if t.state.name != "COMPLETE" or t.value is None:
            continue
        best = t.value if math.isnan(best) else better(best, t.value)
        out.append([t.number, t.value, best])
    return out


def importance(
    study: optuna.Study, trials: list[optuna.trial.FrozenTrial]
) -> dict[str, float] | None:
    """Each parameter's share of the (first) metric's variation, by Optuna's PED-ANOVA
    evaluator (fast and deterministic: no forest to fit), largest first; None with fewer than
    :data:`MIN_TRIALS_FOR_IMPORTANCE` complete trials or no parameter."""
    import warnings

    import optuna as _optuna
    from optuna.importance import PedAnovaImportanceEvaluator, get_param_importances

    done = [t for t in trials if t.state == _optuna.trial.TrialState.COMPLETE]
    if len(done) < MIN_TRIALS_FOR_IMPORTANCE or not any(t.params for t in done):
        return None

    def first(t: optuna.trial.FrozenTrial) -> float:
        return float(t.values[0])

    target = first if len(study.directions) > 1 else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", _optuna.exceptions.ExperimentalWarning)
        try:
            got = get_param_importances(
                study, evaluator=PedAnovaImportanceEvaluator(), target=target
            )
        except (ValueError, RuntimeError, ZeroDivisionError):  # e.g. every value the same
            return None
    return {str(k): round(float(v), 4) for k, v in got.items() if math.isfinite(float(v))}
