"""``mltrail agent SWEEP``: run a sweep's trials, each as an ordinary tracked run.

For each trial the agent asks Optuna for parameters, starts the program exactly as
``mltrail run -- CMD`` does (:mod:`mltrail.repro.launcher`: capture, console, system
metrics, exit status), with the parameters as arguments, environment and config, and the
run tagged ``mltrail.sweep``/``mltrail.trial``. While the program runs, a watcher thread
reads the metric's series from the store (what the program's writer thread applied, every
``poll_s``) and reports each new step to Optuna's pruner; a trial the pruner stops gets
SIGTERM (SIGKILL after ``term_grace_s``) and its run ends ``pruned``. A heartbeat thread
keeps the trial alive in Optuna's storage; the program dies with its agent
(``PR_SET_PDEATHSIG``), so a SIGKILLed agent leaves a stale trial that another agent fails
and retries (:mod:`mltrail.sweeps.session`).
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

from mltrail.errors import NotFoundError
from mltrail.sweeps.session import SweepSession
from mltrail.sweeps.trials import TrialResult, build_command, trial_env

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    import optuna

    from mltrail.sdk.run import Run

__all__ = ["AgentOptions", "run_agent"]


@dataclass(frozen=True, slots=True)
class AgentOptions:
    """How an agent runs trials.

    Attributes:
        count: Trials to run at most (None: until the sweep is complete or stopped).
        poll_s: How often the metric is read from the store for the pruner (the program's
            writer thread applies its points every 0.2 s: reading faster gains nothing).
        term_grace_s: Seconds a pruned program has between SIGTERM and SIGKILL.
        wait: Wait for other agents' trials when the sweep has none left to start.
        env: Extra variables for every trial (``MLTRAIL_PREFLIGHT_STEPS`` for a smoke).
        cwd: The program's working directory (None: the folder the sweep was created in).
        stdout: Where the program's output is echoed (None: ours).
        stderr: Where its errors are echoed (None: ours).
        on_trial: Called with each ended trial.
    """

    count: int | None = None
    poll_s: float = 0.2
    term_grace_s: float = 5.0
    wait: bool = True
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    stdout: BinaryIO | None = None
    stderr: BinaryIO | None = None
    on_trial: Callable[[TrialResult], None] | None = None


def run_agent(
    sweep_id: str, *, store: str | None = None, options: AgentOptions | None = None
) -> list[TrialResult]:
    """Run trials of ``sweep_id`` until ``count`` or the end of the sweep.

    Args:
        sweep_id: The sweep (``mltrail sweep create`` printed it).
        store: Its store (None: ``MLTRAIL_STORE`` or the default store).
        options: See :class:`AgentOptions`.

    Returns:
        The trials this agent ran, in order.

    Raises:
        NotFoundError: no such sweep.
        InvalidArgumentError: a store that holds no sweeps (a server), a bad spec.
    """
    opts = options or AgentOptions()
    done: list[TrialResult] = []
    with SweepSession(sweep_id, store) as session:
        while opts.count is None or len(done) < opts.count:
            trial = session.next_trial(wait=opts.wait)
            if trial is None:
                break
            result = _run_trial(session, trial, opts)
            done.append(result)
            if opts.on_trial is not None:
                opts.on_trial(result)
            if result.reason.startswith(_INTERRUPTED):  # Ctrl-C or SIGTERM: stop the agent
                break
    return done


_INTERRUPTED = "interrupted"


def _run_trial(session: SweepSession, trial: optuna.Trial, opts: AgentOptions) -> TrialResult:
    """Run one trial; a trial the agent cannot run (its program missing, a bad working
    directory) is told FAIL before the error propagates, never left running."""
    try:
        return _execute(session, trial, opts)
    except BaseException as exc:
        with contextlib.suppress(Exception):
            reason = f"the agent failed: {type(exc).__name__}: {exc}"
            session.tell(trial, "failed", attrs={"reason": reason[:1000]})
        raise


def _execute(session: SweepSession, trial: optuna.Trial, opts: AgentOptions) -> TrialResult:
    from mltrail.repro.launcher import run_attached, start_wrapped, status_for

    t0 = time.monotonic()
    spec, record = session.spec, session.record
    params = dict(trial.params)
    command = build_command(spec, params)
    cwd = opts.cwd or record.cwd
    extra = {**trial_env(record.sweep_id, trial.number, params), **opts.env}
    with session.heartbeat(trial):
        run = start_wrapped(
            command,
            project=record.project,
            name=f"{record.sweep_id}-{trial.number}",
            tags={"mltrail.sweep": record.sweep_id, "mltrail.trial": str(trial.number)},
            config=params,
            store=session.store,
            allow_dirty=True,
            cwd=cwd,
            environ={**os.environ, **extra},
        )
        trial.set_user_attr("run_id", run.run_id)
        watcher = _Watcher(session, trial, run, opts)
        code = run_attached(
            run,
            command,
            extra_env=extra,
            cwd=cwd,
            stdout=opts.stdout,
            stderr=opts.stderr,
            on_spawn=watcher.start,
            die_with_parent=True,
        )
        program_s = time.monotonic() - watcher.started
        watcher.stop()
        state, values, reason = _outcome(session, watcher, code)
        session.tell(trial, state, values, attrs={"reason": reason} if reason else None)
    run.finish("pruned" if state == "pruned" else status_for(code))
    return TrialResult(
        number=trial.number,
        run_id=run.run_id,
        state=state,
        values=values,
        params=params,
        steps=watcher.reported,
        reason=reason,
        duration_s=time.monotonic() - t0,
        command=command,
        program_s=program_s,
    )


def _outcome(
    session: SweepSession, watcher: _Watcher, code: int
) -> tuple[str, list[float] | None, str]:
    """``(state, values, reason)`` of a trial whose program ended with ``code``."""
    if watcher.pruned:
        return "pruned", None, ""
    if code in (-signal.SIGINT, -signal.SIGTERM):
        return "failed", None, f"{_INTERRUPTED} (signal {-code})"
    if code != 0:
        return "failed", None, f"the program exited with {code}"
    values = []
    for metric in session.spec.metrics:
        value = watcher.last_value(metric.name)
        if value is None:
            return "failed", None, f"the program logged no {metric.name!r}"
        if math.isnan(value):
            return "failed", [value], f"{metric.name} is NaN"
        values.append(value)
    return "finished", values, ""


class _Watcher:
    """Reads the trial's metric from the store while its program runs; prunes it."""

    def __init__(
        self, session: SweepSession, trial: optuna.Trial, run: Run, opts: AgentOptions
    ) -> None:
        from mltrail.store.registry import open_store

        self.session, self.trial, self.run, self.opts = session, trial, run, opts
        self.store = open_store(run.location)
        self.prunable = session.spec.early_terminate is not None
        self.metric = session.spec.metrics[0].name
        self.reported = 0
        self.last_step = -1
        self.pruned = False
        self.started = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._child: subprocess.Popen[bytes] | None = None

    def start(self, child: subprocess.Popen[bytes]) -> None:
        self.started = time.monotonic()
        self._child = child
        if self.prunable:
            self._thread = threading.Thread(
                target=self._watch, name="mltrail-sweep-watch", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def last_value(self, key: str) -> float | None:
        """The value of ``key`` at its highest step, as stored once the program ended."""
        with contextlib.suppress(NotFoundError):
            series = self.store.metric_history(self.run.run_id, key)
            if len(series):
                return float(series.values[-1])
        return None

    def _watch(self) -> None:
        while not self._stop.wait(self.opts.poll_s):
            with contextlib.suppress(Exception):  # a slow or busy store: try again next poll
                if self._report_new():
                    self._prune()
                    return

    def _report_new(self) -> bool:
        """Report the steps logged since the last poll; True when the pruner says stop.

        The pruner is asked once, at the newest step: Optuna's pruners judge a trial at its
        last reported step (successive halving walks every rung up to it).
        """
        try:
            series = self.store.metric_history(self.run.run_id, self.metric)
        except NotFoundError:
            return False
        before = self.reported
        for step, value in zip(series.steps.tolist(), series.values.tolist(), strict=True):
            if step <= self.last_step or math.isnan(value):
                continue
            self.trial.report(value, step)
            self.last_step = step
            self.reported += 1
        return self.reported > before and bool(self.trial.should_prune())

    def _prune(self) -> None:
        child = self._child
        if child is None or child.poll() is not None:
            return  # it ended first: the trial is judged by its exit and last value
        self.pruned = True
        child.terminate()
        try:
            child.wait(timeout=self.opts.term_grace_s)
        except subprocess.TimeoutExpired:
            child.kill()


def describe(results: list[TrialResult]) -> dict[str, Any]:
    """Counts of the trials an agent ran, by state."""
    out: dict[str, Any] = {"trials": len(results)}
    for r in results:
        out[r.state] = out.get(r.state, 0) + 1
    return out
