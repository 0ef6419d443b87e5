"""Sweeps on Optuna: a spec, agents on many machines, early stopping, every trial a run.

- :mod:`~mltrail.sweeps.spec`: ``sweep.yaml``, validated (no Optuna needed).
- :mod:`~mltrail.sweeps.engine`: the spec in Optuna's terms (samplers, pruners).
- :mod:`~mltrail.sweeps.storage`: Optuna's ``RDBStorage`` on the runs' database; the record.
- :mod:`~mltrail.sweeps.session`: one process's study: heartbeats, the run cap, ask/tell.
- :mod:`~mltrail.sweeps.agent`: ``mltrail agent``: a program per trial, as a tracked run.
- :mod:`~mltrail.sweeps.inprocess`: ``mltrail.sweep(spec, function)``: a function per trial.
- :mod:`~mltrail.sweeps.report`: ``mltrail sweep show``.

Importing this package imports no Optuna; each function imports it when called.
"""

from __future__ import annotations

from mltrail.sweeps.spec import SweepSpec, load_spec, parse_spec
from mltrail.sweeps.trials import TrialResult, sweep_params_from_env

__all__ = ["SweepSpec", "TrialResult", "load_spec", "parse_spec", "sweep_params_from_env"]
