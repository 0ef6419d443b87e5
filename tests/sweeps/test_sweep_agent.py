"""The agent on an embedded store: each trial a tracked run, values and statuses right."""

from __future__ import annotations

import io
import math

import optuna
import pytest
from sweep_helpers import spec

from mltrail.store.registry import open_store
from mltrail.sweeps.agent import AgentOptions, run_agent
from mltrail.sweeps.report import describe_sweep
from mltrail.sweeps.spec import parse_spec
from mltrail.sweeps.storage import close_storage, create_sweep, open_storage, set_state


def _quiet(**kw):
    return AgentOptions(stdout=io.BytesIO(), stderr=io.BytesIO(), **kw)


def test_agent_runs_each_trial_as_a_tracked_run(tmp_path, workdir):
    """Every trial is a finished run with the params as config, the sweep's tags, and the
    value Optuna got is the last loss the program logged."""
    store = str(tmp_path / "store")
    rec = create_sweep(parse_spec(spec(method="random", run_cap=3)), store=store, cwd=workdir)
    results = run_agent(rec.sweep_id, store=store, options=_quiet())
    assert [r.state for r in results] == ["finished"] * 3
    s = open_store(store, shared=False)
    storage = open_storage(store)
    study = optuna.load_study(study_name=rec.sweep_id, storage=storage)
    for r, t in zip(results, study.trials, strict=True):
        run = s.get_run(r.run_id)
        assert str(run.status) == "finished"
        assert run.tags["mltrail.sweep"] == rec.sweep_id
        assert run.tags["mltrail.trial"] == str(t.number)
        assert run.params["x"] == t.params["x"] and run.params["depth"] == t.params["depth"]
        expected = (t.params["x"] - 2.0) ** 2 + 1.0 / 9 + 0.01 * t.params["depth"]
        assert math.isclose(t.value, expected, rel_tol=1e-12)
        assert r.command[-2:] == [f"--x={t.params['x']!r}", f"--depth={t.params['depth']}"]
    best_value = study.best_value
    close_storage(storage)
    s.close()
    shown = describe_sweep(rec.sweep_id, store=store)
    assert shown["counts"] == {"finished": 3}
    assert shown["best"][0]["values"] == [best_value]
    assert shown["sweep"]["seed"] == 7 and shown["sweep"]["spec"]["run_cap"] == 3


@pytest.mark.slow
def test_failed_program_and_nan_fail_the_trial(tmp_path, workdir):
    """A program that exits non-zero, or logs NaN last, is a failed trial."""
    store = str(tmp_path / "store")
    params = {"x": {"values": ["nan"]}, "depth": {"values": [1]}}
    rec = create_sweep(parse_spec(spec(method="grid", parameters=params)), store=store, cwd=workdir)
    (r,) = run_agent(rec.sweep_id, store=store, options=_quiet())
    assert r.state == "failed" and r.reason == "loss is NaN"
    params = {"x": {"values": ["oops"]}, "depth": {"values": [1]}}
    rec = create_sweep(parse_spec(spec(method="grid", parameters=params)), store=store, cwd=workdir)
    (r,) = run_agent(rec.sweep_id, store=store, options=_quiet())
    assert r.state == "failed" and "exited with 2" in r.reason
    assert str(open_store(store, shared=False).get_run(r.run_id).status) == "failed"


@pytest.mark.slow
def test_stopped_sweep_starts_no_trial_until_resumed(tmp_path, workdir):
    """`sweep stop` makes agents start nothing; `resume` lets them go on."""
    store = str(tmp_path / "store")
    rec = create_sweep(parse_spec(spec(method="random", run_cap=2)), store=store, cwd=workdir)
    assert set_state(rec.sweep_id, "stopped", store=store).state == "stopped"
    assert run_agent(rec.sweep_id, store=store, options=_quiet()) == []
    set_state(rec.sweep_id, "running", store=store)
    assert len(run_agent(rec.sweep_id, store=store, options=_quiet(count=1))) == 1


def test_a_program_that_cannot_start_fails_its_trial(tmp_path, workdir):
    """A command that cannot start raises LaunchError, and its trial is told FAIL (never
    left running for a heartbeat to find)."""
    from mltrail.errors import LaunchError

    store = str(tmp_path / "store")
    body = spec(method="random", program=None, command=[str(tmp_path / "no-such-program")])
    rec = create_sweep(parse_spec(body), store=store, cwd=workdir)
    with pytest.raises(LaunchError):
        run_agent(rec.sweep_id, store=store, options=_quiet())
    (trial,) = describe_sweep(rec.sweep_id, store=store)["trials"]
    assert trial["state"] == "failed" and "LaunchError" in trial["reason"]
