"""finish(wait=False) returns once the run's end is in its spool; the drain goes on in the
background (the default, MLTRAIL_FINISH_WAIT=1, waits for the store).

What must hold: nothing acknowledged is lost (a SIGKILL right after finish() keeps the run
finished and whole), every read of the store in the same process sees the finished run
(read-your-writes through open_store, Api, the CLI), the process's exit drains, captured
state that completes after finish() still lands, and the default, MLTRAIL_FINISH_WAIT and
`call` durability keep the promise that the run is in the store on return.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import mltrail
from mltrail.entities import RunStatus
from mltrail.events import finisher
from mltrail.store.registry import open_store, resolve_location

SRC = str(Path(mltrail.__file__).resolve().parents[1])


def _log_many(run: mltrail.Run, steps: int) -> None:
    for i in range(steps):
        run.log({"a": float(i), "b": 1.0, "c": 2.0}, step=i)


def test_reads_in_the_process_wait_for_the_background_drain(tmp_path: Path) -> None:
    root = str(tmp_path / "store")
    run = mltrail.init(project="p", store=root, capture=False)
    _log_many(run, 60_000)
    run.finish(wait=False)
    assert run.status is RunStatus.FINISHED
    # whatever the drain's progress, a read now sees all of it
    rec = open_store(root).get_run(run.run_id)
    assert rec.status is RunStatus.FINISHED and rec.metrics["a"].count == 60_000
    assert finisher.pending(resolve_location(root).uri) == 0
    assert not run.spool_path.exists()
    assert mltrail.Api(root).history(run.run_id, "a").values[-1] == 59_999.0


def test_many_short_runs_all_land(tmp_path: Path) -> None:
    root = str(tmp_path / "store")
    ids = []
    for i in range(30):
        run = mltrail.init(project="p", store=root, capture=False, system_metrics_s=0)
        run.log_params({"i": i})
        run.log({"loss": float(i)}, step=0)
        run.finish(wait=False)
        ids.append(run.run_id)
    runs = {r.run_id: r for r in mltrail.Api(root).runs(project="p")}
    assert set(runs) == set(ids)
    assert all(r.status is RunStatus.FINISHED for r in runs.values())
    assert sorted(int(r.params["i"]) for r in runs.values()) == list(range(30))
    assert not list((tmp_path / "store" / "spool").glob("*.spool"))


def test_captured_state_that_completes_after_finish_still_lands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capture_isolation: None
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "train.py").write_text("print('hi')\n")
    git = ["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "c"], check=True)
    monkeypatch.chdir(repo)
    root = str(tmp_path / "store")
    run = mltrail.init(project="p", store=root, system_metrics_s=0)
    run.finish(wait=False)  # at once: the capture has most likely not completed
    state = mltrail.Api(root).state(run.run_id)
    assert {"code", "environment", "hardware", "config", "seeds"} <= set(state)


def test_wait_and_call_durability_finish_in_the_foreground(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = str(tmp_path / "store")
    run = mltrail.init(project="p", store=root, capture=False)
    run.log({"x": 1.0})
    run.finish()  # the default waits
    assert not run.spool_path.exists()  # drained and removed before finish returned
    monkeypatch.setenv("MLTRAIL_DURABILITY", "call")
    run = mltrail.init(project="p", store=root, capture=False)
    assert run.finish_waits
    run.finish(wait=False)  # `call` promises the store on return: waits anyway
    assert not run.spool_path.exists()
    monkeypatch.setenv("MLTRAIL_DURABILITY", "batch")
    monkeypatch.setenv("MLTRAIL_FINISH_WAIT", "0")
    run = mltrail.init(project="p", store=root, capture=False)
    _log_many(run, 20_000)
    run.finish()  # in the background now
    assert mltrail.Api(root).run(run.run_id).metrics["a"].count == 20_000
    assert not run.spool_path.exists()


def _child(tmp_path: Path, body: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(body))
    env = {**os.environ, "PYTHONPATH": SRC, "MLTRAIL_CAPTURE": "0"}
    return subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120
    )


def test_the_process_exit_drains_what_finish_left(tmp_path: Path) -> None:
    root = tmp_path / "store"
    done = _child(
        tmp_path,
        f"""
        import mltrail
        for i in range(5):
            run = mltrail.init(project="p", store={str(root)!r}, system_metrics_s=0)
            for s in range(20_000):
                run.log({{"a": float(s)}}, step=s)
            run.finish(wait=False)
            print(run.run_id, flush=True)
        """,
    )
    assert done.returncode == 0, done.stderr
    ids = done.stdout.split()
    assert not list((root / "spool").glob("*.spool"))  # before any recovery: the exit drained
    store = open_store(str(root), shared=False)
    try:
        for run_id in ids:
            rec = store.get_run(run_id)
            assert rec.status is RunStatus.FINISHED and rec.metrics["a"].count == 20_000
    finally:
        store.close()


def test_sigkill_right_after_finish_loses_nothing(tmp_path: Path) -> None:
    root = tmp_path / "store"
    done = _child(
        tmp_path,
        f"""
        import os, signal
        import mltrail
        run = mltrail.init(project="p", store={str(root)!r}, system_metrics_s=0)
        for s in range(50_000):
            run.log({{"a": float(s)}}, step=s)
        run.finish(wait=False)
        print(run.run_id, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """,
    )
    assert done.returncode == -9, done.stderr
    run_id = done.stdout.strip()
    rec = mltrail.Api(str(root)).run(run_id)  # recovers the spool the killed process left
    assert rec.status is RunStatus.FINISHED  # finish() returned: the run did finish
    assert rec.metrics["a"].count == 50_000


def test_by_default_another_process_reads_the_run_finish_returned(tmp_path: Path) -> None:
    """The pattern of a script that finishes and then runs the CLI (W&B and MLflow finish
    that way too): the default finish() returns with the run in the store."""
    root = str(tmp_path / "store")
    for _ in range(3):
        run = mltrail.init(project="p", store=root, system_metrics_s=0)
        _log_many(run, 5_000)
        run.finish()
        shown = subprocess.run(
            [
                sys.executable,
                "-m",
                "mltrail",
                "runs",
                "show",
                run.run_id,
                "--json",
                "--store",
                root,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "PYTHONPATH": SRC},
        )
        assert shown.returncode == 0, shown.stderr
        assert '"status": "finished"' in shown.stdout
