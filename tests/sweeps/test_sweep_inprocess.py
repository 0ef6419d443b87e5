"""mltrail.sweep: trials in this process, each a run; same seed, same suggestions."""

from __future__ import annotations

from sweep_helpers import spec

import mltrail
from mltrail.store.registry import open_store
from mltrail.sweeps.report import describe_sweep


def _loss(p):
    return (p["x"] - 2.0) ** 2 + 0.01 * p["depth"]


def test_same_seed_suggests_the_same_first_ten(tmp_path):
    """Two sweeps with the same seed suggest the same first 10 parameter sets (TPE past its
    random start-up too); another seed suggests others."""
    store = str(tmp_path / "store")
    body = spec(program=None, command=["<in-process>"], run_cap=12, seed=3)
    body["parameters"]["x"] = {"distribution": "uniform", "min": -4.0, "max": 6.0}
    runs = [mltrail.sweep(body, _loss, count=10, store=store) for _ in range(2)]
    other = mltrail.sweep({**body, "seed": 4}, _loss, count=3, store=store)
    params = [[t.params for t in r.trials] for r in runs]
    assert len(params[0]) == 10 and params[0] == params[1]
    assert [t.params for t in other.trials] != params[0][:3]
    assert runs[0].sweep_id != runs[1].sweep_id


def test_each_trial_is_a_run_and_pruning_ends_it_pruned(tmp_path):
    """Each trial is a run with its params; a trial the pruner stops ends `pruned`, its
    value None; a trial that raises is failed and the sweep goes on."""
    store = str(tmp_path / "store")

    def train(p):
        if p.number == 3:
            raise RuntimeError("boom")
        for step in range(10):
            loss = (p["x"] - 2.0) ** 2 + 1.0 / (step + 1)
            mltrail.log({"loss": loss}, step=step)
            p.report(loss, step)
        return None  # the last logged loss is the value

    body = spec(
        program=None,
        method="random",
        run_cap=10,
        early_terminate={"type": "median", "min_iter": 2, "startup_trials": 2},
    )
    result = mltrail.sweep(body, train, store=store)
    states = [t.state for t in result.trials]
    assert len(states) == 10 and states[3] == "failed" and "pruned" in states
    assert "RuntimeError: boom" in result.trials[3].reason
    s = open_store(store, shared=False)
    for t in result.trials:
        run = s.get_run(t.run_id)
        assert str(run.status) == t.state
        assert run.params["x"] == t.params["x"]
        if t.state == "finished":
            assert t.values == [s.metric_history(t.run_id, "loss").values[-1]]
    s.close()
    shown = describe_sweep(result.sweep_id, store=store)
    assert shown["counts"]["pruned"] == states.count("pruned")
    finished = [t.values[0] for t in result.trials if t.state == "finished"]
    assert shown["best"][0]["values"] == [min(finished)]
    assert shown["best_so_far"][-1][2] == min(finished)
