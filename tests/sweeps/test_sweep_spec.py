"""The sweep spec: every rule names the field and the limit it broke."""

from __future__ import annotations

import pytest

from mltrail.errors import InvalidArgumentError
from mltrail.sweeps.spec import load_spec, parse_spec

BASE = {
    "program": "train.py",
    "method": "tpe",
    "metric": {"name": "val/acc", "goal": "maximize"},
    "parameters": {
        "lr": {"distribution": "log_uniform", "min": 1e-5, "max": 1e-1},
        "depth": {"values": [2, 4, 8]},
        "dropout": {"distribution": "uniform", "min": 0.0, "max": 0.5},
    },
    "early_terminate": {"type": "hyperband", "min_iter": 3, "eta": 3},
    "run_cap": 50,
    "seed": 0,
}


def test_the_issue_example_parses_and_round_trips():
    """The spec of the issue parses, and its canonical form parses to the same spec."""
    spec = parse_spec(BASE)
    assert spec.method == "tpe" and spec.metrics[0].goal == "maximize"
    assert [p.distribution for p in spec.parameters] == ["log_uniform", "categorical", "uniform"]
    assert spec.early_terminate is not None and spec.early_terminate.eta == 3
    assert parse_spec(spec.to_dict()) == spec


def test_yaml_file_with_exponent_without_dot(tmp_path):
    """1e-5 (YAML 1.1 reads it as text) is taken as a number."""
    path = tmp_path / "sweep.yaml"
    path.write_text(
        "program: t.py\nmethod: random\nmetric: loss\n"
        "parameters:\n  lr: {distribution: log_uniform, min: 1e-5, max: 1e-1}\n"
    )
    spec = load_spec(path)
    assert spec.parameters[0].min == 1e-5 and spec.metrics[0].goal == "minimize"


def _with(**changes):
    d = {**BASE, **changes}
    return {k: v for k, v in d.items() if v is not ...}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_with(program=..., command=...), "program or command is required"),
        (_with(method="bayes"), "method: 'bayes' is not one of grid, random, tpe"),
        (_with(method=...), "method is required"),
        (_with(metric=...), "metric is required"),
        (_with(metric={"name": "a", "goal": "up"}), "metric.goal: 'up' is not one of"),
        (_with(metric=[{"name": "a"}, {"name": "a"}]), "a metric is named twice"),
        (_with(colour="red"), "unknown field 'colour'"),
        (_with(run_cap=0), "run_cap: 0 is outside [1, 1000000]"),
        (_with(run_cap=2.5), "run_cap: must be an integer"),
        (_with(seed=-1), "seed: -1 is outside"),
        (_with(parameters={}), "parameters: must be a non-empty mapping"),
        (
            _with(parameters={"lr": {"distribution": "uniform", "min": 1.0, "max": 0.5}}),
            "parameters.lr.min: must be < max (1.0 >= 0.5)",
        ),
        (
            _with(parameters={"lr": {"distribution": "log_uniform", "min": 0.0, "max": 1.0}}),
            "parameters.lr.min: log_uniform needs min > 0",
        ),
        (
            _with(parameters={"n": {"distribution": "int_uniform", "min": 1.5, "max": 4}}),
            "parameters.n.min: int_uniform needs an integer",
        ),
        (_with(parameters={"lr": {"distribution": "gauss"}}), "parameters.lr.distribution"),
        (_with(parameters={"lr": {"values": []}}), "parameters.lr.values: must be a non-empty"),
        (_with(parameters={"lr": {"values": [1, 1]}}), "parameters.lr.values: a value is listed"),
        (_with(parameters={"-lr": {"values": [1]}}), "parameters.-lr: a name starts with"),
        (_with(parameters={"lr": {"min": 0.0}}), "parameters.lr: give `values`"),
        (_with(early_terminate={"type": "bohb"}), "early_terminate.type: 'bohb' is not one"),
        (
            _with(early_terminate={"type": "hyperband", "min_iter": 5, "max_iter": 3}),
            "early_terminate.max_iter: must be > min_iter (3 <= 5)",
        ),
        (_with(early_terminate={"type": "asha", "eta": 1}), "early_terminate.eta: 1 is outside"),
        (
            _with(metric=[{"name": "a"}, {"name": "b"}]),
            "early_terminate: pruning needs a single metric",
        ),
        (
            _with(method="grid", early_terminate=...),
            "parameters.lr: method grid needs `values`",
        ),
        (
            _with(method="cmaes", early_terminate=..., metric=["a", "b"]),
            "method cmaes takes a single metric",
        ),
        ("program: x", "the top level must be a mapping"),
    ],
)
def test_invalid_specs_name_the_field(data, message):
    """Each invalid spec is refused with a message naming the field and the rule."""
    with pytest.raises(InvalidArgumentError) as err:
        parse_spec(data)
    assert message in str(err.value)
    assert str(err.value).startswith("sweep spec: ")
