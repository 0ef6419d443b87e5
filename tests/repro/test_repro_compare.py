"""The series comparison: bitwise identity, NaN and signed zeros, tolerances, steps, keys."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import mltrail
from mltrail.errors import InvalidArgumentError
from mltrail.repro.compare import check_tolerances, compare_runs, compare_series


def _cmp(a: list[float], b: list[float], *, rtol: float = 0.0, atol: float = 0.0, steps=None):
    sa = np.arange(len(a)) if steps is None else np.asarray(steps[0])
    sb = np.arange(len(b)) if steps is None else np.asarray(steps[1])
    return compare_series("k", sa, np.asarray(a, float), sb, np.asarray(b, float), rtol, atol)


def test_identical_is_bitwise_and_nan_equals_nan() -> None:
    nan = float("nan")
    got = _cmp([1.0, nan, math.inf, -2.5], [1.0, nan, math.inf, -2.5])
    assert got.identical and got.within and got.max_gap == 0.0
    assert got.first_difference is None and got.first_divergence is None


def test_signed_zero_differs_bitwise_but_not_in_value() -> None:
    got = _cmp([0.0, 1.0], [-0.0, 1.0])
    assert not got.identical and got.within
    assert got.first_difference is not None and got.first_difference.step == 0
    assert got.first_difference.gap == 0.0


def test_nan_against_a_number_diverges_with_an_infinite_gap() -> None:
    got = _cmp([1.0, 2.0], [1.0, float("nan")], atol=1e9)
    assert not got.within and got.max_gap == math.inf
    assert got.first_divergence is not None and got.first_divergence.step == 1


def test_one_ulp_is_within_any_positive_tolerance_but_not_identical() -> None:
    x = 0.1
    y = float(np.nextafter(x, 1.0))
    got = _cmp([x], [y], rtol=1e-15)
    assert not got.identical and got.within
    assert not _cmp([x], [y]).within  # zero tolerance: exact values only


@pytest.mark.parametrize(("atol", "within"), [(0.25, True), (0.2499999, False)])
def test_atol_boundary_is_inclusive(atol: float, within: bool) -> None:
    got = _cmp([1.0, 2.0, 3.0], [1.0, 2.25, 3.0], atol=atol)
    assert got.within is within
    assert got.max_gap == 0.25
    if not within:
        assert got.first_divergence is not None
        assert (got.first_divergence.step, got.first_divergence.a) == (1, 2.0)


def test_rtol_is_relative_to_the_original() -> None:
    # |b - a| = 1 <= rtol * |a| = 0.01 * 100 exactly; with a and b swapped: 0.01 * 101 > 1
    assert _cmp([100.0], [101.0], rtol=0.01).within
    assert not _cmp([100.0], [101.0], rtol=0.0099).within


def test_steps_logged_only_by_one_run_diverge_there() -> None:
    got = _cmp([1.0, 2.0, 3.0], [1.0, 2.0], atol=1.0)
    assert not got.within and got.max_gap == math.inf
    d = got.first_divergence
    assert d is not None and (d.step, d.reason, d.b) == (2, "only in A", None)
    got = _cmp([1.0, 2.0], [1.0, 2.0], steps=([0, 5], [0, 3]))
    d = got.first_divergence
    assert d is not None and (d.step, d.reason) == (3, "only in B")
    assert "logged by the new run only" in d.describe()


def test_tolerances_are_validated() -> None:
    check_tolerances(0.0, 0.0)
    for rtol, atol in ((-1e-9, 0.0), (0.0, math.nan), (math.inf, 0.0)):
        with pytest.raises(InvalidArgumentError, match="must be a finite number >= 0"):
            check_tolerances(rtol, atol)


def test_compare_runs_earliest_divergence_across_keys_and_artifacts(tmp_path: Path) -> None:
    store = tmp_path / "store"
    data = tmp_path / "model.bin"
    ids = []
    for i in range(2):
        data.write_bytes(b"weights" + bytes([i]))
        with mltrail.init(
            project="cmp", store=store, capture=False, system_metrics_s=0, console=False
        ) as run:
            run.log({"a": 1.0, "b": 1.0}, step=0)
            run.log({"a": 1.0 + i, "b": 1.0}, step=1)  # run 2 differs in "a" at step 1
            run.log({"a": 5.0, "b": 1.0 + 0.5 * i}, step=2)
            run.log({"system/cpu": float(i)}, step=0)  # system metrics are left out
            run.log_artifact(data, name="model", type="model")
            ids.append(run.run_id)
    api = mltrail.Api(store)
    out = compare_runs(api, ids[0], ids[1], rtol=0.0, atol=0.1)
    assert out.verdict == "diverged" and not out.ok
    assert [k.key for k in out.keys] == ["a", "b"]
    assert out.first_divergence is not None
    assert (out.first_divergence.key, out.first_divergence.step) == ("a", 1)
    (art,) = out.artifacts
    assert art.name == "cmp/model" and not art.equal
    same = compare_runs(api, ids[0], ids[0])
    assert same.verdict == "identical" and same.ok
    assert same.artifacts[0].equal
    assert "bit for bit" in same.summary()
    failed = compare_runs(api, ids[0], ids[0], b_status="failed")
    assert failed.verdict == "failed" and "ended failed" in failed.reasons[0]
