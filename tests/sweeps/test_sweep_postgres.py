"""Agents in separate processes share a sweep through PostgreSQL (end to end)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import psutil
import pytest
from sweep_helpers import fresh_pg_database, spec

from mltrail.store.registry import open_store
from mltrail.sweeps.report import describe_sweep
from mltrail.sweeps.spec import parse_spec
from mltrail.sweeps.storage import close_storage, create_sweep, open_storage

PG_URL = os.environ.get("MLTRAIL_TEST_PG_URL", "")
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not PG_URL, reason="PostgreSQL not configured: MLTRAIL_TEST_PG_URL"),
]
MLTRAIL = str(Path(sys.executable).with_name("mltrail"))


def _agents(n, sweep_id, store, workdir, env):
    return [
        subprocess.Popen(
            [MLTRAIL, "agent", sweep_id, "--store", store],
            cwd=workdir,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for _ in range(n)
    ]


def _wait(procs, timeout_s):
    deadline = time.monotonic() + timeout_s
    errors = []
    for p in procs:
        try:
            _, err = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            _, err = p.communicate()
            errors.append(f"agent {p.pid} timed out: {err.decode()[-2000:]}")
            continue
        if p.returncode not in (0, -signal.SIGKILL):
            errors.append(f"agent {p.pid} exited {p.returncode}: {err.decode()[-2000:]}")
    assert errors == []


def _check_sweep(sweep_id, store, cap):
    """Every trial ended once, as one run; the best is Optuna's own."""
    shown = describe_sweep(sweep_id, store=store)
    trials = shown["trials"]
    storage = open_storage(store)
    study = optuna.load_study(study_name=sweep_id, storage=storage)
    completed = [t.value for t in study.trials if t.state.name == "COMPLETE"]
    best_value = study.best_value
    close_storage(storage)
    fresh = [t for t in trials if t["retry_of"] is None]
    assert len(fresh) == cap, trials
    assert all(t["state"] in ("finished", "pruned", "failed") for t in trials)
    s = open_store(store, shared=False)
    runs = s.search_runs(project="default", limit=1000).runs
    s.close()
    by_trial: dict[str, list] = {}
    for run in runs:
        if run.tags.get("mltrail.sweep") == sweep_id:
            by_trial.setdefault(run.tags["mltrail.trial"], []).append(run)
    assert sorted(by_trial, key=int) == [str(t["number"]) for t in trials]
    assert all(len(v) == 1 for v in by_trial.values()), "a trial ran twice"
    for t in trials:
        (run,) = by_trial[str(t["number"])]
        if t["state"] in ("finished", "pruned"):
            assert str(run.status) == t["state"]
    assert shown["best"][0]["values"] == [best_value]
    assert best_value == min(completed)
    return shown, by_trial


def _sweep(pg, workdir, cap, steps):
    body = spec(
        run_cap=cap,
        early_terminate={"type": "hyperband", "min_iter": 1, "max_iter": steps, "eta": 3},
    )
    return create_sweep(parse_spec(body), store=pg, cwd=workdir)


def _run_e2e(workdir, cap):
    pg = fresh_pg_database(PG_URL)
    rec = _sweep(pg, workdir, cap, steps=9)
    env = {**os.environ, "SWEEP_TEST_STEPS": "9", "SWEEP_TEST_SLEEP_S": "0.03"}
    _wait(_agents(3, rec.sweep_id, pg, workdir, env), timeout_s=60 + 10 * cap)
    shown, _ = _check_sweep(rec.sweep_id, pg, cap)
    assert shown["counts"].get("pruned", 0) > 0, shown["counts"]
    assert shown["counts"].get("failed", 0) == 0, shown["trials"]


def test_three_agents_tpe_hyperband(workdir):
    """3 agent processes run a 12-trial TPE + Hyperband sweep on PostgreSQL: every trial
    ends once (finished or pruned), some are pruned, the best is Optuna's best."""
    _run_e2e(workdir, cap=12)


@pytest.mark.slow
def test_three_agents_thirty_trials(workdir):
    """The same with the issue's 30 trials."""
    _run_e2e(workdir, cap=30)


def test_sigkilled_agent_trial_is_retried(workdir, tmp_path):
    """An agent SIGKILLed mid-trial: its program dies with it, the trial is failed by
    heartbeat and retried (same params) by another agent, and the sweep completes."""
    pg = fresh_pg_database(PG_URL)
    rec = _sweep(pg, workdir, cap=3, steps=6)
    flag = tmp_path / "hang.flag"
    env = {
        **os.environ,
        "SWEEP_TEST_STEPS": "6",
        "SWEEP_TEST_HANG_AT": "2",
        "SWEEP_TEST_HANG_FLAG": str(flag),
    }
    agents = _agents(2, rec.sweep_id, pg, workdir, env)
    try:
        deadline = time.monotonic() + 60
        while not flag.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert flag.exists(), "no trial reached the hanging step"
        hung = psutil.Process(int(flag.read_text()))
        victim = hung.parent()
        assert victim is not None and victim.pid in {a.pid for a in agents}
        victim.send_signal(signal.SIGKILL)
        hung.wait(timeout=10)  # the program dies with its agent (PR_SET_PDEATHSIG)
        _wait(agents, timeout_s=90)
    finally:
        for a in agents:  # nothing outlives a failed test
            if a.poll() is None:
                a.kill()
                a.communicate()
    shown, by_trial = _check_sweep(rec.sweep_id, pg, cap=3)
    retries = [t for t in shown["trials"] if t["retry_of"] is not None]
    assert len(retries) == 1
    (retry,) = retries
    (orig,) = [t for t in shown["trials"] if t["number"] == retry["retry_of"]]
    assert orig["state"] == "failed" and retry["state"] in ("finished", "pruned")
    assert retry["params"] == orig["params"]
    assert json.dumps(shown)  # JSON-safe
