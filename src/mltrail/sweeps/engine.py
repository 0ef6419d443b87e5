"""The spec in Optuna's terms: distributions, the sampler, the pruner, the directions.

Only Optuna's own samplers and pruners are used. One thing is added around the sampler:
:class:`TrialSeededSampler` builds a fresh Optuna sampler for each trial, seeded with
``(sweep seed, trial number)``. A sampler seeded once per process would make every agent of
a sweep draw the same random start-up points; seeded per trial, agents draw different points
and a sweep run again with the same seed (one agent) suggests the same sequence.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from mltrail.errors import MissingExtraError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import optuna
    from optuna.distributions import BaseDistribution
    from optuna.samplers import BaseSampler
    from optuna.trial import FrozenTrial

    from mltrail.sweeps.spec import Parameter, SweepSpec

__all__ = [
    "directions",
    "distributions",
    "import_optuna",
    "make_pruner",
    "make_sampler",
    "trial_seed",
]


def import_optuna() -> Any:
    """Optuna, imported on first use (``import mltrail`` never imports it).

    Raises:
        MissingExtraError: Optuna is not installed (``pip install 'mltrail[sweeps]'``).
    """
    try:
        import optuna
    except ImportError as exc:
        raise MissingExtraError(
            f"sweeps need Optuna: pip install 'mltrail[sweeps]' ({exc})"
        ) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def directions(spec: SweepSpec) -> list[str]:
    """Optuna's study directions, one per metric."""
    return [m.goal for m in spec.metrics]


def distributions(spec: SweepSpec) -> dict[str, BaseDistribution]:
    """One Optuna distribution per parameter of the spec."""
    return {p.name: _distribution(p) for p in spec.parameters}


def _distribution(p: Parameter) -> BaseDistribution:
    from optuna import distributions as d

    assert p.min is not None or p.distribution in ("constant", "categorical")
    if p.distribution in ("constant", "categorical"):
        return d.CategoricalDistribution(list(p.values))
    lo, hi = p.min, p.max
    assert lo is not None and hi is not None
    if p.distribution == "uniform":
        return d.FloatDistribution(float(lo), float(hi))
    if p.distribution == "log_uniform":
        return d.FloatDistribution(float(lo), float(hi), log=True)
    if p.distribution == "q_uniform":
        assert p.q is not None
        return d.FloatDistribution(float(lo), float(hi), step=float(p.q))
    return d.IntDistribution(int(lo), int(hi), log=p.distribution == "log_int_uniform")


def trial_seed(seed: int, number: int) -> int:
    """The seed of the sampler for trial ``number`` of a sweep seeded ``seed``."""
    digest = hashlib.blake2b(f"{seed}:{number}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "little")


def _factory(spec: SweepSpec) -> Callable[[int], BaseSampler]:
    """``seed -> sampler`` for the spec's method."""
    s = import_optuna().samplers
    method = spec.method
    if method == "grid":
        grid = {p.name: list(p.values) for p in spec.parameters}
        return lambda seed: s.GridSampler(grid, seed=seed)
    if method == "random":
        return lambda seed: s.RandomSampler(seed=seed)
    if method == "tpe":
        multi = spec.multi_objective
        return lambda seed: s.TPESampler(seed=seed, multivariate=not multi, constant_liar=True)
    if method == "nsga2":
        return lambda seed: s.NSGAIISampler(seed=seed)
    if method == "cmaes":
        _needs("cmaes", "method cmaes needs the cmaes package: pip install cmaes")
        return lambda seed: s.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    _needs("torch", "method gp needs PyTorch and SciPy: pip install torch scipy")
    _needs("scipy", "method gp needs PyTorch and SciPy: pip install torch scipy")
    return lambda seed: s.GPSampler(seed=seed)


def _needs(module: str, message: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise MissingExtraError(message)


def make_sampler(spec: SweepSpec, seed: int) -> BaseSampler:
    """The sweep's sampler: Optuna's, seeded per trial (see the module docstring).

    Raises:
        MissingExtraError: the method needs a package that is not installed.
    """
    op = import_optuna()
    factory = _factory(spec)

    class TrialSeededSampler(op.samplers.BaseSampler):  # type: ignore[misc,name-defined]
        """Delegates every call to ``factory(trial_seed(seed, trial.number))``."""

        def __init__(self) -> None:
            self._inner: dict[int, BaseSampler] = {}

        def _for(self, trial: FrozenTrial) -> BaseSampler:
            inner = self._inner.get(trial._trial_id)
            if inner is None:
                inner = self._inner[trial._trial_id] = factory(trial_seed(seed, trial.number))
            return inner

        def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
            self._for(trial).before_trial(study, trial)

        def infer_relative_search_space(
            self, study: optuna.Study, trial: FrozenTrial
        ) -> dict[str, BaseDistribution]:
            out: dict[str, BaseDistribution] = self._for(trial).infer_relative_search_space(
                study, trial
            )
            return out

        def sample_relative(
            self,
            study: optuna.Study,
            trial: FrozenTrial,
            search_space: dict[str, BaseDistribution],
        ) -> dict[str, Any]:
            out: dict[str, Any] = self._for(trial).sample_relative(study, trial, search_space)
            return out

        def sample_independent(
            self,
            study: optuna.Study,
            trial: FrozenTrial,
            param_name: str,
            param_distribution: BaseDistribution,
        ) -> Any:
            inner = self._for(trial)
            return inner.sample_independent(study, trial, param_name, param_distribution)

        def after_trial(
            self,
            study: optuna.Study,
            trial: FrozenTrial,
            state: optuna.trial.TrialState,
            values: Sequence[float] | None,
        ) -> None:
            inner = self._inner.pop(trial._trial_id, None) or factory(0)
            try:
                inner.after_trial(study, trial, state, values)
            except RuntimeError:  # GridSampler's study.stop() outside optimize(): the agent
                pass  # stops at the grid's size itself

        def reseed_rng(self) -> None:
            """Seeds are per trial; nothing to reseed."""

    sampler: BaseSampler = TrialSeededSampler()
    return sampler


def make_pruner(spec: SweepSpec) -> optuna.pruners.BasePruner:
    """Optuna's pruner for ``early_terminate`` (``NopPruner`` without one).

    ``min_iter``/``max_iter`` are steps as the program logs them; ``eta`` is the reduction
    factor.
    """
    p = import_optuna().pruners
    et = spec.early_terminate
    pruner: optuna.pruners.BasePruner
    if et is None:
        pruner = p.NopPruner()
    elif et.type == "hyperband":
        max_resource: int | str = et.max_iter if et.max_iter is not None else "auto"
        pruner = p.HyperbandPruner(
            min_resource=et.min_iter, max_resource=max_resource, reduction_factor=et.eta
        )
    elif et.type == "asha":
        pruner = p.SuccessiveHalvingPruner(min_resource=et.min_iter, reduction_factor=et.eta)
    else:
        pruner = p.MedianPruner(n_startup_trials=et.startup_trials, n_warmup_steps=et.min_iter)
    return pruner
