"""A trial's command line and environment: W&B's macros, Hydra overrides, exact floats."""

from __future__ import annotations

import json
import sys

import pytest

from mltrail.errors import InvalidArgumentError
from mltrail.sweeps.spec import parse_spec
from mltrail.sweeps.trials import build_command, sweep_params_from_env, trial_env

PARAMS = {"lr": 0.1 + 0.2, "depth": 4, "act": "relu", "bn": True, "wd": None}


def _spec(**kw):
    base = {"method": "random", "metric": "loss", "parameters": {"lr": {"values": [1]}}}
    return parse_spec({**base, **kw})


def test_program_gets_hyphenated_args_with_exact_floats():
    """`program` runs with this interpreter and --name=value (floats by repr: no rounding)."""
    cmd = build_command(_spec(program="train.py"), PARAMS)
    assert cmd == [
        sys.executable,
        "train.py",
        "--lr=0.30000000000000004",
        "--depth=4",
        "--act=relu",
        "--bn=true",
        "--wd=null",
    ]
    assert float(cmd[2].split("=")[1]) == PARAMS["lr"]


def test_hydra_overrides_and_macros():
    """${args_no_hyphens} gives Hydra's key=value; ${interpreter}/${program} expand."""
    spec = _spec(
        program="train.py",
        command=["${interpreter}", "${program}", "+trainer=cpu", "${args_no_hyphens}"],
    )
    cmd = build_command(spec, {"lr": 0.5, "model.depth": 2})
    assert cmd == [sys.executable, "train.py", "+trainer=cpu", "lr=0.5", "model.depth=2"]


def test_json_macro_and_args_appended_without_a_macro():
    """${args_json} is one JSON argument; a command with no args macro gets --k=v appended."""
    cmd = build_command(_spec(command=["run", "${args_json}"]), {"a": 1})
    assert cmd == ["run", '{"a": 1}']
    assert build_command(_spec(command=["run", "--fast"]), {"a": 1}) == ["run", "--fast", "--a=1"]


def test_environment_round_trips_the_params():
    """MLTRAIL_SWEEP_PARAMS carries the params as JSON; outside a sweep it is empty."""
    env = trial_env("sw-0123456789", 3, PARAMS)
    assert env["MLTRAIL_SWEEP_ID"] == "sw-0123456789" and env["MLTRAIL_SWEEP_TRIAL"] == "3"
    assert sweep_params_from_env(env) == PARAMS
    assert sweep_params_from_env({}) == {}
    with pytest.raises(InvalidArgumentError):
        sweep_params_from_env({"MLTRAIL_SWEEP_PARAMS": json.dumps([1])})


def test_command_using_program_needs_program():
    """${program} without `program` is refused at the edge."""
    with pytest.raises(InvalidArgumentError, match=r"command uses \$\{program\}"):
        _spec(command=["python", "${program}"])
