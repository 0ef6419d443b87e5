"""``mltrail.sweep(spec, function, count=...)``: a sweep whose trials run in this process.

Each trial is a run (``mltrail.init`` with the parameters as config, tagged with the sweep and
the trial), active while ``function`` runs, so ``mltrail.log`` inside it logs to the trial's
run. ``function`` gets a :class:`TrialParams` (a ``dict`` of the parameters that can also
``report(value, step)`` to the pruner) and returns the metric value (a number, or one per
metric), or None to use the last value it logged of each metric.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltrail.errors import InvalidArgumentError
from mltrail.sweeps.session import SweepSession
from mltrail.sweeps.spec import SweepSpec, load_spec, parse_spec
from mltrail.sweeps.storage import create_sweep
from mltrail.sweeps.trials import TrialResult

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    import optuna

    from mltrail.sdk.run import Run

__all__ = ["SweepResult", "TrialParams", "sweep"]


class TrialParams(dict[str, Any]):
    """The parameters of one trial (a ``dict``), with the trial's number, run and pruner."""

    number: int
    run: Run
    _trial: optuna.Trial

    def report(self, value: float, step: int) -> None:
        """Report an intermediate value; raises ``optuna.TrialPruned`` when the pruner
        stops the trial (let it propagate: the run ends ``pruned``)."""
        import optuna

        self._trial.report(float(value), int(step))
        if self._trial.should_prune():
            raise optuna.TrialPruned(f"pruned at step {step}")


@dataclass(frozen=True, slots=True)
class SweepResult:
    """What :func:`sweep` ran: the sweep's id and this call's trials."""

    sweep_id: str
    trials: list[TrialResult] = field(default_factory=list)


def sweep(
    spec: SweepSpec | Mapping[str, Any] | str | Path | None,
    function: Callable[[TrialParams], Any],
    *,
    count: int | None = None,
    sweep_id: str | None = None,
    store: str | None = None,
) -> SweepResult:
    """Run a sweep's trials in this process, each as a run.

    Args:
        spec: The spec (a mapping, a :class:`SweepSpec` or a YAML file); None with
            ``sweep_id`` to join a sweep that exists. ``program``/``command`` may be left out.
        function: Called once per trial with its :class:`TrialParams`.
        count: Trials to run at most (None: until ``run_cap`` or the end of a grid).
        sweep_id: An existing sweep to add trials to (instead of creating one).
        store: Where runs and the sweep go (None: the default store).

    Returns:
        A :class:`SweepResult`.

    Raises:
        InvalidArgumentError: a bad spec, or neither a spec nor a sweep id, or a sweep with
            neither a count nor a run cap.

    Example:
        >>> import mltrail
        >>> def train(p):
        ...     return (p["x"] - 2) ** 2
        >>> spec = {"method": "tpe", "metric": {"name": "loss"}, "run_cap": 5,
        ...         "parameters": {"x": {"min": -10.0, "max": 10.0}}}
        >>> mltrail.sweep(spec, train).trials[0].state  # doctest: +SKIP
        'finished'
    """
    if sweep_id is None:
        if spec is None:
            raise InvalidArgumentError("sweep: give a spec or the sweep_id of a sweep")
        parsed = _spec(spec)
        sweep_id = create_sweep(parsed, store=store).sweep_id
    done: list[TrialResult] = []
    with SweepSession(sweep_id, store) as session:
        if count is None and session.cap() is None:
            raise InvalidArgumentError("sweep: give count= or a run_cap in the spec")
        while count is None or len(done) < count:
            trial = session.next_trial(wait=False)
            if trial is None:
                break
            done.append(_run_trial(session, trial, function))
    return SweepResult(sweep_id, done)


def _spec(spec: SweepSpec | Mapping[str, Any] | str | Path) -> SweepSpec:
    if isinstance(spec, SweepSpec):
        return spec
    if isinstance(spec, str | Path):
        return load_spec(spec)
    data = dict(spec)
    if "program" not in data and "command" not in data:
        data["command"] = ["<in-process>"]  # the function is the program
    return parse_spec(data)


def _run_trial(
    session: SweepSession, trial: optuna.Trial, function: Callable[[TrialParams], Any]
) -> TrialResult:
    import optuna

    from mltrail.sdk.init import init

    t0 = time.monotonic()
    params = TrialParams(trial.params)
    params.number, params._trial = trial.number, trial
    state, values, reason = "failed", None, ""
    returned: Any = None
    record = session.record
    with session.heartbeat(trial):
        run = init(
            project=record.project,
            name=f"{record.sweep_id}-{trial.number}",
            config=dict(params),
            tags={"mltrail.sweep": record.sweep_id, "mltrail.trial": str(trial.number)},
            store=session.store,
            allow_dirty=True,
        )
        params.run = run
        trial.set_user_attr("run_id", run.run_id)
        try:
            with run:  # an exception ends the run failed, with its traceback recorded
                try:
                    returned = function(params)
                except optuna.TrialPruned:
                    state = "pruned"
                    run.finish("pruned")
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
        else:
            if state != "pruned":
                state, values, reason = _judge(session, run, returned)
        session.tell(trial, state, values, attrs={"reason": reason} if reason else None)
    return TrialResult(
        number=trial.number,
        run_id=run.run_id,
        state=state,
        values=values,
        params=dict(params),
        reason=reason,
        duration_s=time.monotonic() - t0,
    )


def _judge(session: SweepSession, run: Run, returned: Any) -> tuple[str, list[float] | None, str]:
    metrics = session.spec.metrics
    if returned is None:
        logged = [_last_logged(run, m.name) for m in metrics]
        missing = [m.name for m, x in zip(metrics, logged, strict=True) if x is None]
        if missing:
            return "failed", None, f"the function logged no {missing[0]!r} and returned None"
        values = [x for x in logged if x is not None]
    elif isinstance(returned, int | float):
        values = [float(returned)]
    else:
        values = [float(x) for x in returned]
    if len(values) != len(metrics):
        return "failed", None, f"{len(values)} values for {len(metrics)} metrics"
    for m, value in zip(metrics, values, strict=True):
        if math.isnan(value):
            return "failed", None, f"{m.name} is NaN"
    return "finished", values, ""


def _last_logged(run: Run, key: str) -> float | None:
    from mltrail.errors import NotFoundError
    from mltrail.store.registry import open_store

    try:
        series = open_store(run.location).metric_history(run.run_id, key)
    except NotFoundError:
        return None
    return float(series.values[-1]) if len(series) else None
