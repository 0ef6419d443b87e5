"""One process's handle on a sweep: the Optuna study with heartbeats, the run cap, ask/tell.

Shared by the agent (a program per trial) and :func:`mltrail.sweep` (a function per trial).

The run cap counts trials in creation order, retries aside: a trial Optuna's
``RetryHeartbeatStaleTrialCallback`` enqueued for one whose agent died takes that trial's
place. Agents check the cap before asking, and again after (two agents may ask at once): a
trial numbered past the cap is told ``FAIL`` at once with ``mltrail.over_cap`` and never run.
An agent whose sweep is complete but whose peers still run trials waits, failing stale trials
(heartbeats older than the grace period) so their retries are not lost.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
import warnings
from typing import TYPE_CHECKING, Any

from mltrail.sweeps.engine import distributions, import_optuna, make_pruner, make_sampler
from mltrail.sweeps.spec import parse_spec
from mltrail.sweeps.storage import close_storage, load_sweep, open_storage

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    import optuna

    from mltrail.sweeps.spec import SweepSpec
    from mltrail.sweeps.storage import SweepRecord

__all__ = ["OVER_CAP", "RETRY_OF", "SweepSession", "is_counted"]

#: system attribute of a trial asked past the run cap (told FAIL, never run)
OVER_CAP = "mltrail.over_cap"
#: system attribute Optuna's retry callback sets on a retry: the failed trial's number
RETRY_OF = "failed_trial"


def is_counted(trial: optuna.trial.FrozenTrial) -> bool:
    """Whether a trial is one of the sweep's trials (not a retry's failed original, not
    one asked past the cap)."""
    return OVER_CAP not in trial.system_attrs


class SweepSession:
    """The study of ``sweep_id`` in ``store``, opened with the spec's heartbeat settings.

    Args:
        sweep_id: The sweep.
        store: Its store (None: the default store).
    """

    def __init__(self, sweep_id: str, store: str | None = None) -> None:
        self.optuna = import_optuna()
        self.store = store
        base = open_storage(store)
        try:
            self.record: SweepRecord = load_sweep(sweep_id, base)
        finally:
            close_storage(base)
        self.spec: SweepSpec = parse_spec(self.record.spec)
        spec = self.spec
        self.storage = open_storage(
            store,
            heartbeat_s=spec.heartbeat_s,
            grace_s=spec.grace_s,
            max_retry=spec.max_retry,
        )
        self.study: optuna.Study = self.optuna.load_study(
            study_name=sweep_id,
            storage=self.storage,
            sampler=make_sampler(spec, self.record.seed),
            pruner=make_pruner(spec),
        )
        self.distributions = distributions(spec)

    def close(self) -> None:
        """Close the storage's connections."""
        close_storage(self.storage)

    def __enter__(self) -> SweepSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def sweep_id(self) -> str:
        """The sweep's id (the study's name)."""
        return self.record.sweep_id

    def cap(self) -> int | None:
        """How many trials the sweep runs: ``run_cap``, and a grid's size at most."""
        cap = self.spec.run_cap
        if self.spec.method == "grid":
            size = math.prod(len(p.values) for p in self.spec.parameters)
            cap = size if cap is None else min(cap, size)
        return cap

    def state(self) -> str:
        """``running`` or ``stopped`` (``mltrail sweep stop``)."""
        attrs = self.storage.get_study_system_attrs(self.study._study_id)
        return str(attrs.get("mltrail.state", self.record.state))

    def fail_stale(self) -> None:
        """Fail the trials whose agent stopped beating (their retries get enqueued)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", self.optuna.exceptions.ExperimentalWarning)
            self.optuna.storages.fail_stale_trials(self.study)

    def next_trial(self, *, wait: bool = True, poll_s: float = 1.0) -> optuna.Trial | None:
        """The next trial to run, or None when the sweep is complete or stopped.

        With ``wait``, a complete sweep whose trials still run elsewhere is waited on (their
        agents may die, and their retries must be run).
        """
        T = self.optuna.trial.TrialState
        cap = self.cap()
        while self.state() == "running":
            self.fail_stale()
            trials = self.study.get_trials(deepcopy=False)
            waiting = any(t.state == T.WAITING for t in trials)
            fresh = sum(1 for t in trials if RETRY_OF not in t.system_attrs)
            if cap is None or fresh < cap or waiting:
                with warnings.catch_warnings():  # ask/tell with heartbeats is what we do
                    warnings.filterwarnings("ignore", "Heartbeat of storage", UserWarning)
                    trial = self.study.ask(self.distributions)
                if cap is None or not self._over_cap(trial, cap):
                    return trial
                continue
            if not wait or not any(t.state == T.RUNNING for t in trials):
                return None
            time.sleep(poll_s)
        return None

    def _over_cap(self, trial: optuna.Trial, cap: int) -> bool:
        if trial.number < cap:  # numbers are dense: at most number + 1 trials up to it
            return False
        attrs = self.storage.get_trial_system_attrs(trial._trial_id)
        if RETRY_OF in attrs:
            return False
        trials = self.study.get_trials(deepcopy=False)
        before = sum(
            1 for t in trials if t.number <= trial.number and RETRY_OF not in t.system_attrs
        )
        if before <= cap:
            return False
        self.storage.set_trial_system_attr(trial._trial_id, OVER_CAP, True)
        self.study.tell(trial, state=self.optuna.trial.TrialState.FAIL)
        return True

    @contextlib.contextmanager
    def heartbeat(self, trial: optuna.Trial) -> Iterator[None]:
        """Record the trial's heartbeat every ``heartbeat_s`` while the block runs."""
        stop = threading.Event()
        interval = self.spec.heartbeat_s
        trial_id = trial._trial_id

        def beat() -> None:
            while True:
                with contextlib.suppress(Exception):  # a missed beat is retried next time
                    self.storage.record_heartbeat(trial_id)
                if stop.wait(interval):
                    return

        thread = threading.Thread(target=beat, name="mltrail-sweep-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=10)

    def tell(
        self,
        trial: optuna.Trial,
        state: str,
        values: Sequence[float] | None = None,
        *,
        attrs: dict[str, Any] | None = None,
    ) -> None:
        """End the trial in Optuna: ``finished`` (with values), ``pruned`` or ``failed``."""
        T = self.optuna.trial.TrialState
        for key, value in (attrs or {}).items():
            trial.set_user_attr(key, value)
        if state == "finished":
            self.study.tell(trial, list(values or []))
        elif state == "pruned":
            self.study.tell(trial, state=T.PRUNED)
        else:
            self.study.tell(trial, state=T.FAIL)
