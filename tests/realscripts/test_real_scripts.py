"""Unmodified public-style scripts under `mltrail run`, twice each with the first run's files
left behind, then `mltrail reproduce`: the captured config, the outputs and the verdict."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import mltrail

TIMEOUT_S = 240


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "MLTRAIL_SYSTEM_METRICS_S": "0", "MLTRAIL_ALLOW_DIRTY": "0"}
    env.pop("MLTRAIL_SEED", None)
    env.pop("MLTRAIL_REQUIRE_CLEAN", None)
    env.update(extra)
    return env


def _mltrail(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mltrail", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        env=_env(),
        timeout=TIMEOUT_S,
    )


def _run_twice(repo: Path, *args: str, code: int = 0) -> str:
    """`mltrail run ARGS` twice (the first run's files stay); the second run's id."""
    ids = []
    for _ in range(2):
        done = _mltrail(repo, "run", *args)
        assert done.returncode == code, done.stdout + done.stderr
        assert "uncommitted changes" not in done.stderr
        ids.append(mltrail.Api(repo / ".mltrail").runs(limit=1)[0].run_id)
    assert ids[0] != ids[1]
    return ids[1]


def _reproduce(repo: Path, run_id: str) -> tuple[int, dict[str, Any]]:
    done = _mltrail(repo, "reproduce", run_id, "--json")
    assert done.stdout.strip(), done.stderr
    return done.returncode, json.loads(done.stdout)


def _state(repo: Path, run_id: str) -> dict[str, Any]:
    return mltrail.Api(repo / ".mltrail").state(run_id)


def _written(state: dict[str, Any]) -> dict[str, str]:
    return {f["path"]: f["digest"] for f in state["files"]["files"]}


def test_argparse_script_config_console_verdict(repo: Path) -> None:
    """An argparse script that only prints: its namespace is the config (the token
    redacted), its console decides the verdict (time masked), nothing counts as code."""
    run_id = _run_twice(repo, "--", sys.executable, "argparse_script.py", "--epochs", "4")
    state = _state(repo, run_id)
    assert state["config"]["source"] == "argparse"
    assert state["config"]["config"] == {"epochs": 4, "token": "***", "fail": False}
    assert state["config"]["argv"][1:] == ["argparse_script.py", "--epochs", "4"]
    assert mltrail.Api(repo / ".mltrail").run(run_id).params["epochs"] == 4
    assert _written(state) == {}
    code, doc = _reproduce(repo, run_id)
    assert code == 0, doc
    outcome = doc["outcome"]
    assert outcome["verdict"] == "identical" and outcome["basis"] == "console"
    assert "console output (4 lines, normalised)" in outcome["summary"]

    # the checklist: reproduced, config externalised; no seed recorded
    done = _mltrail(repo, "check", run_id, "--require", "verdict,config", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]}
    assert checks["verdict"]["result"] == "pass" and checks["outputs"]["result"] == "warn"
    done = _mltrail(repo, "check", run_id, "--require", "seed")
    assert done.returncode == 1 and "seed is required to pass" in done.stdout
    (repo / ".mltrail" / "config.toml").write_text("[check]\nmin_score = 0.99\n")
    done = _mltrail(repo, "check", run_id, "--markdown")
    assert done.returncode == 1 and "| verdict | ✅ pass |" in done.stdout


def test_failure_reproduced_the_same_way(repo: Path) -> None:
    """A script failing at the same line both times: the verdict says so (exit 0)."""
    run_id = _run_twice(repo, "--", sys.executable, "argparse_script.py", "--fail", code=1)
    code, doc = _reproduce(repo, run_id)
    assert doc["outcome"]["verdict"] == "failure-reproduced", doc["outcome"]
    assert "ValueError at argparse_script.py:" in doc["outcome"]["summary"]
    assert code == 0


def test_nothing_to_compare_has_its_own_exit_code(repo: Path) -> None:
    """No metric, no file, no console line: `nothing-to-compare`, exit 3 (not a failure's)."""
    run_id = _run_twice(repo, "--", sys.executable, "argparse_script.py", "--epochs", "0")
    code, doc = _reproduce(repo, run_id)
    assert doc["outcome"]["verdict"] == "nothing-to-compare" and code == 3, doc["outcome"]


def test_plots_and_model_written_into_the_repo(repo: Path) -> None:
    """Files written into the repository are outputs, never code; the model file is the
    evidence (bitwise identical), the PDF (a time stamp inside) only a note."""
    run_id = _run_twice(repo, "--", sys.executable, "plots_and_model.py")
    state = _state(repo, run_id)
    (code_repo,) = state["code"]["repos"]
    assert (
        code_repo["dirty"] is False
        and "mltrail.dirty" not in mltrail.Api(repo / ".mltrail").run(run_id).tags
    )
    assert set(code_repo["outputs"]) == {"model.bin", "plots/"}
    assert set(_written(state)) == {"model.bin", "plots/predict0.pdf"}
    code, doc = _reproduce(repo, run_id)
    assert code == 0, doc
    files = {f["name"]: f for f in doc["outcome"]["files"]}
    assert files["model.bin"]["equal"] and not files["plots/predict0.pdf"]["equal"]
    assert doc["outcome"]["verdict"] == "within-tolerance"
    assert "documents or logs differ" in " ".join(doc["outcome"]["reasons"])


def test_hydra_app_config_group_and_overrides(repo: Path) -> None:
    """Hydra's composed config (group choice, override, secret redacted) is the run's config;
    outputs/ of the first run does not stop the second; the result file reproduces."""
    run_id = _run_twice(
        repo, "--", sys.executable, "hydra_app.py", "model=large", "lr=0.5", "db_password=x"
    )
    state = _state(repo, run_id)
    config = state["config"]
    assert config["source"] == "hydra"
    assert config["config"] == {
        "model": {"width": 64, "depth": 4},
        "lr": 0.5,
        "db_password": "***",
    }
    assert config["hydra"]["overrides"] == ["model=large", "lr=0.5", "db_password=***"]
    params = mltrail.Api(repo / ".mltrail").run(run_id).params
    assert params["model.width"] == 64 and params["lr"] == 0.5
    (code_repo,) = state["code"]["repos"]
    assert code_repo["dirty"] is False and "outputs/" in code_repo["outputs"]
    code, doc = _reproduce(repo, run_id)
    assert code == 0, doc
    files = {f["name"]: f for f in doc["outcome"]["files"]}
    assert files["result.json"]["equal"]
    assert doc["outcome"]["verdict"] in ("identical", "within-tolerance")


@pytest.mark.slow
def test_seeded_torch_regression_is_identical(repo: Path) -> None:
    """Console metrics from a seeded PyTorch script and its model file: identical."""
    run_id = _run_twice(
        repo,
        "--metric",
        "loss=loss=([0-9.e+-]+)",
        "--",
        sys.executable,
        "torch_regression.py",
        "--seed",
        "3",
    )
    rec = mltrail.Api(repo / ".mltrail").run(run_id)
    assert rec.metrics["loss"].count == 20 and rec.params["seed"] == 3
    code, doc = _reproduce(repo, run_id)
    assert code == 0, doc
    outcome = doc["outcome"]
    assert outcome["verdict"] == "identical", outcome
    assert [f["name"] for f in outcome["files"]] == ["model.pt"]


@pytest.mark.slow
def test_unseeded_torch_regression_diverges(repo: Path) -> None:
    """Without a seed the console metric diverges at the first step, and the model file
    differs."""
    run_id = _run_twice(
        repo, "--metric", "loss=loss=([0-9.e+-]+)", "--", sys.executable, "torch_regression.py"
    )
    code, doc = _reproduce(repo, run_id)
    assert code == 1
    outcome = doc["outcome"]
    assert outcome["verdict"] == "diverged" and outcome["first_divergence"]["key"] == "loss"
    assert outcome["first_divergence"]["step"] == 0
    assert not {f["name"]: f for f in outcome["files"]}["model.pt"]["equal"]
    assert doc["causes"][0].startswith("the seed was not set: the program uses PyTorch")


@pytest.mark.slow
def test_sklearn_random_state_is_identical(repo: Path) -> None:
    """random_state= everywhere: the pickled model and the printed accuracy are identical."""
    run_id = _run_twice(
        repo, "--metric", "accuracy=accuracy: ([0-9.]+)", "--", sys.executable, "sklearn_script.py"
    )
    assert mltrail.Api(repo / ".mltrail").run(run_id).metrics["accuracy"].count == 1
    assert "sklearn" in _state(repo, run_id)["program"]["imported"]
    code, doc = _reproduce(repo, run_id)
    assert code == 0, doc
    assert doc["outcome"]["verdict"] == "identical", doc["outcome"]


@pytest.mark.parametrize(
    ("argv", "config", "command"),
    [
        (
            ["click_script.py", "--verbose", "train", "--lr", "0.3", "--epochs", "2"],
            {"verbose": True, "lr": 0.3, "epochs": 2, "api_key": "***"},
            "click_script.py train",
        ),
        (
            ["typer_script.py", "--lr", "0.5", "--name", "wide"],
            {"lr": 0.5, "layers": 2, "name": "wide"},
            "typer_script.py",
        ),
    ],
)
def test_click_and_typer_options_are_the_config(
    repo: Path, argv: list[str], config: dict[str, Any], command: str
) -> None:
    """Click (and Typer, on Click) parameters of every command invoked become the config,
    secrets redacted, with no init() in the program."""
    done = _mltrail(repo, "run", "--", sys.executable, *argv)
    assert done.returncode == 0, done.stdout + done.stderr
    run = mltrail.Api(repo / ".mltrail").runs(limit=1)[0]
    state = _state(repo, run.run_id)
    assert state["config"]["source"] == "click"
    assert state["config"]["config"] == config
    assert state["config"]["command"] == command
    assert run.params["lr"] == config["lr"]
