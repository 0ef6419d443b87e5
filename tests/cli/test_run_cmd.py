"""`mltrail run -- CMD` and `mltrail preflight -- CMD` end to end on real child processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import mltrail
from mltrail.testing.repos import init_repo


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository with a committed training script (train.py)."""
    root = tmp_path / "repo"
    root.mkdir()
    (root / "train.py").write_text(
        textwrap.dedent("""
        import math, os, signal, sys, pathlib
        import mltrail
        mode = sys.argv[1] if len(sys.argv) > 1 else "ok"
        run = mltrail.init(config={"lr": 0.5, "layers": {"n": 2}})
        for step in range(50):
            print(f"epoch {step}", flush=True)
            print(f"warn {step}", file=sys.stderr, flush=True)
            loss = float("nan") if mode == "nan" else 1.0 / (step + 1)
            mltrail.log({"loss": loss}, step=step)
            pathlib.Path("ckpt.bin").write_bytes(b"x")
            if mode == "fail" and step == 3:
                sys.exit(3)
            if mode == "kill" and step == 3:
                os.kill(os.getpid(), signal.SIGKILL)
        mltrail.finish()
    """)
    )
    (root / ".gitignore").write_text("ckpt.bin\n")
    return init_repo(root, {})


def _mltrail(repo: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "MLTRAIL_ALLOW_DIRTY": "0", "MLTRAIL_SYSTEM_METRICS_S": "0.2", **env}
    return subprocess.run(
        [sys.executable, "-m", "mltrail", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=180,
    )


def _only_run(repo: Path) -> mltrail.RunRecord:
    runs = mltrail.Api(repo / ".mltrail").runs()
    assert len(runs) == 1, [r.run_id for r in runs]
    return runs[0]


def test_run_wraps_a_training_script(repo: Path) -> None:
    """One run: the child's config and metrics, the wrapper's capture, console, system metrics."""
    done = _mltrail(
        repo, "run", "--project", "wrap", "--tag", "team=core", "--", sys.executable, "train.py"
    )
    assert done.returncode == 0, done.stderr
    assert "epoch 49" in done.stdout and "warn 49" in done.stderr  # the user still sees it all
    rec = _only_run(repo)
    assert rec.status is mltrail.RunStatus.FINISHED and rec.project == "wrap"
    assert rec.params == {"lr": 0.5, "layers.n": 2} and rec.tags["team"] == "core"
    assert rec.metrics["loss"].count == 50
    api = mltrail.Api(repo / ".mltrail")
    lines = api.console(rec.run_id)
    assert sum(c.stream == "stdout" for c in lines) == 50
    assert sum(c.stream == "stderr" for c in lines) == 50
    assert set(api.state(rec.run_id)) >= {"code", "environment", "hardware", "config", "seeds"}
    assert any(k.startswith("system/proc/") for k in rec.metrics)


@pytest.mark.parametrize(
    ("mode", "code", "status"), [("fail", 3, "failed"), ("kill", 137, "killed")]
)
def test_run_status_follows_exit(repo: Path, mode: str, code: int, status: str) -> None:
    """A non-zero exit marks the run failed, a signal killed; the wrapper exits the same way."""
    done = _mltrail(repo, "run", "--", sys.executable, "train.py", mode)
    assert done.returncode == code, done.stderr
    from mltrail.store.registry import open_store

    (rec,) = open_store(repo / ".mltrail").search_runs().runs  # no recovery on this read
    assert rec.status.value == status
    assert rec.metrics["loss"].count == 4


def test_run_records_dirty_code_and_refuses_only_when_required(repo: Path) -> None:
    """Uncommitted changes are recorded by default; --require-clean refuses them (one screen,
    no traceback) unless --allow-dirty overrides it."""
    (repo / "train.py").write_text((repo / "train.py").read_text() + "\n# edit\n")
    done = _mltrail(repo, "run", "--require-clean", "--", sys.executable, "train.py")
    assert (
        done.returncode == 1 and "uncommitted changes" in done.stderr and "train.py" in done.stderr
    )
    assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) < 25
    assert not (repo / ".mltrail").exists() or not mltrail.Api(repo / ".mltrail").runs()
    done = _mltrail(repo, "run", "--", sys.executable, "train.py")
    assert done.returncode == 0, done.stderr
    assert "uncommitted code recorded with the run: the diff of 1 modified file(s)" in done.stderr
    assert _only_run(repo).tags["mltrail.dirty"] == "true"
    done = _mltrail(
        repo, "run", "--require-clean", "--allow-dirty", "--", sys.executable, "train.py"
    )
    assert done.returncode == 0, done.stderr


def test_run_config_file_and_missing_command(repo: Path, tmp_path: Path) -> None:
    """--config records a file's values; an unknown command fails with exit 127."""
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"batch": 32}))
    done = _mltrail(repo, "run", "--config", str(cfg), "--", sys.executable, "-c", "print(1)")
    assert done.returncode == 0, done.stderr
    assert _only_run(repo).params == {"batch": 32}
    done = _mltrail(repo, "run", "--", "no-such-command-xyz")
    assert done.returncode == 127 and "no-such-command-xyz" in done.stderr
    assert len(mltrail.Api(repo / ".mltrail").runs()) == 1  # a command that cannot start: no run


def test_preflight_passes_and_stops_after_n_steps(repo: Path) -> None:
    """Pre-flight runs N steps, checks metrics/config/code/outputs, exits 0 when all pass."""
    done = _mltrail(
        repo, "preflight", "--steps", "3", "--expect", "ckpt.bin", "--", sys.executable, "train.py"
    )
    assert done.returncode == 0, done.stderr
    assert "FAIL" not in done.stderr and "pass" in done.stderr
    rec = _only_run(repo)
    assert rec.tags["preflight"] == "true" and rec.metrics["loss"].count == 3
    assert rec.status is mltrail.RunStatus.FINISHED


def test_preflight_fails_on_non_finite_metrics(repo: Path) -> None:
    """NaN metrics fail the pre-flight with a non-zero exit naming the key."""
    done = _mltrail(repo, "preflight", "--", sys.executable, "train.py", "nan")
    assert done.returncode == 1
    assert "FAIL" in done.stderr and "non-finite: loss" in done.stderr


def test_example_script_run_twice_and_diffed(tmp_path: Path) -> None:
    """The shipped example runs under `mltrail run`; `mltrail diff` names the changed lr."""
    example = Path(__file__).resolve().parents[2] / "examples" / "train_numpy.py"
    repo = init_repo(tmp_path / "proj", {"train_numpy.py": example.read_text()})
    args = [sys.executable, "train_numpy.py", "--no-show", "--epochs", "20"]
    for lr in ("0.5", "0.1"):
        done = _mltrail(repo, "run", "--project", "ex", "--", *args, "--lr", lr)
        assert done.returncode == 0, done.stderr
    a, b = (r.run_id for r in mltrail.Api(repo / ".mltrail").runs(order_by="created asc"))
    done = _mltrail(repo, "diff", a, b, "--json")
    assert done.returncode == 0, done.stderr
    diff = json.loads(done.stdout)
    config = {c["key"]: c for c in diff["kinds"]["config"]["changes"]}
    assert (config["lr"]["a"], config["lr"]["b"]) == (0.5, 0.1)
    assert diff["kinds"]["code"]["identical"] and diff["kinds"]["environment"]["identical"]
    assert not diff["kinds"]["outcome"]["identical"]
