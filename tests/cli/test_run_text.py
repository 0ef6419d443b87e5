"""``mltrail runs console``, ``runs show --patch`` and the runs table's columns.

The console command prints every line to the stream it came from (and follows a live run to
its end); the patch recreates the run's uncommitted code when applied with ``git apply`` at
the run's commit; the table puts the user's metrics before ``system/*`` and shows the columns
``--columns`` names.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from clihelp import cli, strict_json

import mltrail

SRC = str(Path(mltrail.__file__).resolve().parents[1])


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def _child(script: Path, cwd: Path, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(script)],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": SRC, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_console_prints_each_stream_where_it_came_from(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    script = tmp_path / "job.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys, mltrail
            with mltrail.init(project="p", store={store!r}, capture=False) as run:
                for i in range(5):
                    print(f"out {{i}}")
                    print(f"err {{i}}", file=sys.stderr)
            print("RUN", run.run_id)
            """
        )
    )
    out, err = _child(script, tmp_path, MLTRAIL_SYSTEM_METRICS_S="0").communicate(timeout=120)
    run_id = out.split("RUN ")[1].strip()
    done = cli("runs", "console", run_id[:6], "--store", store)
    assert done.exit_code == 0, done.output
    assert done.stdout.splitlines() == [f"out {i}" for i in range(5)]
    assert done.stderr.splitlines() == [f"err {i}" for i in range(5)]
    only = cli("runs", "console", run_id, "--stream", "stderr", "--store", store)
    assert only.stdout == "" and only.stderr.splitlines() == [f"err {i}" for i in range(5)]
    doc = strict_json(cli("runs", "console", run_id, "--json", "--store", store).stdout)
    assert [d["text"] for d in doc if d["stream"] == "stdout"] == [f"out {i}" for i in range(5)]
    bad = cli("runs", "console", run_id, "--stream", "both", "--store", store)
    assert bad.exit_code != 0 and "--stream must be stdout or stderr" in bad.output


def test_console_follow_prints_a_live_run_to_its_end(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    script = tmp_path / "live.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import time, mltrail
            run = mltrail.init(project="p", store={store!r}, capture=False)
            print("RUN", run.run_id, flush=True)
            time.sleep(1.0)
            for i in range(6):
                print(f"tick {{i}}", flush=True)
                time.sleep(0.3)
            run.finish()
            """
        )
    )
    env = {"MLTRAIL_SYSTEM_METRICS_S": "0", "MLTRAIL_FLUSH_INTERVAL_S": "0.05"}
    child = _child(script, tmp_path, **env)
    assert child.stdout is not None
    run_id = child.stdout.readline().split("RUN ")[1].strip()
    follow = subprocess.run(
        [sys.executable, "-m", "mltrail", "runs", "console", run_id, "--follow"]
        + ["--store", store],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": SRC},
    )
    child.communicate(timeout=120)
    assert follow.returncode == 0, follow.stderr
    ticks = [ln for ln in follow.stdout.splitlines() if ln.startswith("tick")]
    assert ticks == [f"tick {i}" for i in range(6)]


def test_patch_recreates_the_uncommitted_code(tmp_path: Path, capture_isolation: None) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "train.py").write_text("lr = 0.1\nprint(lr)\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "c")
    sha = _git(repo, "rev-parse", "HEAD").strip()
    (repo / "train.py").write_text("lr = 0.5\nprint(lr)\n")
    (repo / "helper.py").write_text("def f():\n    return 1")  # no newline at the end
    (repo / "conf.yaml").write_text("")  # an empty new file
    store = str(tmp_path / "store")
    script = repo / "train.py"
    job = subprocess.run(
        [sys.executable, "-c", f"import mltrail; r = mltrail.init(store={store!r}); print(r.id)"],
        cwd=repo,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": SRC, "MLTRAIL_SYSTEM_METRICS_S": "0"},
        timeout=120,
    )
    assert job.returncode == 0, job.stderr
    assert script.exists()
    run_id = job.stdout.strip()
    done = cli("runs", "show", run_id, "--patch", "--store", store)
    assert done.exit_code == 0, done.output
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
    _git(clone, "checkout", "-q", sha)
    patch = tmp_path / "run.patch"
    patch.write_text(done.stdout)
    _git(clone, "apply", str(patch))
    for name in ("train.py", "helper.py", "conf.yaml"):
        assert (clone / name).read_bytes() == (repo / name).read_bytes(), name


def test_runs_table_user_metrics_first_and_chosen_columns(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    for i in range(3):
        with mltrail.init(
            project="p", store=store, capture=False, config={"lr": 0.1 * (i + 1)}, tags={"t": "x"}
        ) as run:
            run.recorder.system({"system/cpu": 1.0, "system/mem": 2.0, "system/gpu": 3.0})
            run.recorder.system({"system/cpu": 1.0, "system/mem": 2.0, "system/gpu": 3.0})
            run.log({"acc": 0.5})
    table = cli("runs", "list", "--store", store)
    header = table.stdout.splitlines()[0].split()
    assert header[6] == "acc"  # before any system/* column, though those have more points
    chosen = cli("runs", "list", "--store", store, "--columns", "acc,params.lr,tags.t")
    assert chosen.exit_code == 0, chosen.output
    lines = chosen.stdout.splitlines()
    assert lines[0].split()[6:] == ["metrics.acc", "params.lr", "tags.t"]
    assert lines[1].split()[-3:] == ["0.5", "0.3", "x"]


@pytest.mark.parametrize("bad", [",", "acc,,lr", "params."])
def test_columns_refuses_an_empty_column(tmp_path: Path, bad: str) -> None:
    store = str(tmp_path / "store")
    mltrail.init(project="p", store=store, capture=False).finish()
    done = cli("runs", "list", "--store", store, "--columns", bad)
    assert done.exit_code != 0 and "--columns: empty column" in done.output


def test_help_groups_the_commands_and_shows_no_bool_metavars() -> None:
    done = cli("--help", env={"COLUMNS": "120"})
    assert done.exit_code == 0
    text = done.stdout
    for panel in ("Track", "Inspect", "Reproduce", "Data, artifacts and models", "Provenance"):
        assert f"─ {panel} " in text, panel
    assert "mltrail run -- python train.py" in text
    track = text.index("─ Track ")
    assert track < text.index("│ run ", track) < text.index("─ Inspect ")
    for args in (["--help"], ["runs", "list", "--help"], ["run", "--help"]):
        assert "<bool>" not in cli(*args, env={"COLUMNS": "120"}).stdout, args
