"""``mltrail diff``: Rich text and strict JSON for real runs in a real git repository."""

from __future__ import annotations

import copy
import io
import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from clihelp import cli, strict_json
from rich.console import Console

import mltrail
from mltrail.cli.diff_cmd import print_diff
from mltrail.diff import KINDS, diff_runs
from mltrail.store.batch import Batch, MetricSeries
from mltrail.store.registry import open_store
from mltrail.testing.repos import git, init_repo

try:  # seed_everything imports torch; importing it now keeps that out of a capture thread
    import torch  # noqa: F401
except ImportError:
    pass

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git CLI not installed")

TRAIN = "LR = 0.1\nEPOCHS = 3\n"


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capture_isolation: None) -> Path:
    """A committed repository holding train.py, made the current directory."""
    root = tmp_path / "repo"
    init_repo(root, {"train.py": TRAIN})
    monkeypatch.chdir(root)
    return root


def make_run(store: str, config: dict[str, Any], seed: int, losses: list[float]) -> str:
    """A finished run (seeded before init, so the environment capture sees one seed)."""
    mltrail.seed_everything(seed)
    run = mltrail.init(project="p", store=store, config=config, system_metrics_s=0, console=False)
    for step, loss in enumerate(losses):
        run.log({"loss": loss}, step=step)
    run.finish()
    return run.run_id


@pytest.fixture
def changed(repo: Path, tmp_path: Path) -> tuple[str, str, str]:
    """(store, A, B): a commit, a config change, an upgraded numpy and new seeds between."""
    store = str(tmp_path / "store")
    a = make_run(store, {"lr": 0.1, "opt": "sgd"}, 1, [1.0, 0.5, 0.25])
    (repo / "train.py").write_text(TRAIN.replace("LR = 0.1\n", "LR = 0.2\nWD = 0.01\n"))
    git(repo, "commit", "-qam", "tune")
    b = make_run(store, {"lr": 0.2}, 2, [1.0, 0.4, 0.2])
    env = copy.deepcopy(mltrail.Api(store).state(b)["environment"])
    env["packages"]["numpy"] = "99.0.0"
    open_store(store).apply_batch(Batch(b, state={"environment": env}))
    return store, a, b


def test_help_lists_diff() -> None:
    """``mltrail --help`` names the diff command."""
    result = cli("--help")
    assert result.exit_code == 0
    assert "diff" in result.stdout


def test_text_groups_changes_by_kind(changed: tuple[str, str, str], repo: Path) -> None:
    """Changed kinds get a heading and A → B rows; identical kinds collapse to one line."""
    store, a, b = changed
    result = cli("diff", a, b, "--store", store)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["A", a, *lines[0].split()[2:]]
    assert lines[1].split()[:2] == ["B", b]
    for heading in ("code", "config", "environment", "seeds", "outcome"):
        assert heading in lines
    assert "hardware: identical" in lines
    assert "data: identical (no inputs recorded)" in lines
    old, new = git(repo, "rev-parse", "HEAD~1").strip(), git(repo, "rev-parse", "HEAD").strip()
    sha = next(line for line in lines if line.strip().startswith(f"{repo}: sha"))
    assert sha.split()[-3:] == [old[:12], "→", new[:12]]
    assert f"{repo}: 1 files changed {old[:12]}..{new[:12]} +2 -1" in result.stdout
    assert "train.py  +2 -1" in result.stdout
    lr = next(line for line in lines if line.strip().startswith("lr "))
    assert lr.split() == ["lr", "0.1", "→", "0.2"]
    opt = next(line for line in lines if line.strip().startswith("opt "))
    assert opt.split() == ["opt", "sgd", "→", "(absent)", "removed"]
    numpy = next(line for line in lines if "packages.numpy" in line)
    assert numpy.split()[-3:] == ["→", "99.0.0", "upgraded"]
    loss = next(line for line in lines if line.strip().startswith("loss"))
    assert loss.split() == ["loss", "0.25", "0.2", "-0.05", "0.25", "0.2", "1", "1"]


def test_json_is_strict_and_complete(changed: tuple[str, str, str]) -> None:
    """``--json`` prints only RunDiff.to_dict() as strict JSON."""
    store, a, b = changed
    result = cli("diff", a[:5], b, "--json", "--store", store)
    assert result.exit_code == 0, result.stderr
    data = strict_json(result.stdout)
    expected = diff_runs(mltrail.Api(store), a, b).to_dict()
    assert data == json.loads(json.dumps(expected))
    assert list(data["kinds"]) == list(KINDS)
    assert data["identical"] is False
    identical = {k: v["identical"] for k, v in data["kinds"].items()}
    assert identical == {
        "code": False,
        "config": False,
        "data": True,
        "environment": False,
        "hardware": True,
        "seeds": False,
        "outcome": False,
    }
    numpy = next(c for c in data["kinds"]["environment"]["changes"] if c["key"] == "packages.numpy")
    assert numpy["b"] == "99.0.0" and numpy["change"] == "upgraded"
    files = data["kinds"]["code"]["repos"][0]["files"]
    assert files == [{"path": "train.py", "added": 2, "deleted": 1}]


def test_identical_runs_collapse(repo: Path, tmp_path: Path) -> None:
    """Identical runs: one "identical" line per kind and exit code 0."""
    store = str(tmp_path / "store")
    a = make_run(store, {"lr": 0.1}, 3, [1.0, float("nan")])
    b = make_run(store, {"lr": 0.1}, 3, [1.0, float("nan")])
    result = cli("diff", a, b, "--store", store)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "no differences in any recorded kind" in lines
    for kind in ("code", "config", "environment", "hardware", "seeds"):
        assert f"{kind}: identical" in lines
    assert "outcome: identical (1 metric)" in lines
    data = strict_json(cli("diff", a, b, "--json", "--store", store).stdout)
    assert data["identical"] is True
    assert data["kinds"]["outcome"]["metrics"][0]["b"]["last"] == "NaN"


def test_all_adds_system_metrics(repo: Path, tmp_path: Path) -> None:
    """``--all`` compares the system/ metrics that are left out by default."""
    store = str(tmp_path / "store")
    a = make_run(store, {"lr": 0.1}, 3, [1.0])
    b = make_run(store, {"lr": 0.1}, 3, [1.0])
    for run_id, value in ((a, 10.0), (b, 30.0)):
        cols = MetricSeries(
            np.array([0], dtype=np.int64),
            np.array([1], dtype=np.int64),
            np.array([value], dtype=np.float64),
        )
        open_store(store).apply_batch(Batch(run_id, metrics={"system/cpu_percent": cols}))
    plain = cli("diff", a, b, "--store", store)
    assert "outcome: identical (1 metric; 1 system/ metric keys left out)" in plain.stdout
    full = cli("diff", a, b, "--all", "--store", store)
    assert full.exit_code == 0, full.stderr
    row = next(line for line in full.stdout.splitlines() if "system/cpu_percent" in line)
    assert row.split()[:4] == ["system/cpu_percent", "10", "30", "+20"]
    data = strict_json(cli("diff", a, b, "--all", "--json", "--store", store).stdout)
    assert [m["key"] for m in data["kinds"]["outcome"]["metrics"]] == [
        "loss",
        "system/cpu_percent",
    ]


def test_changes_are_coloured(changed: tuple[str, str, str]) -> None:
    """On a terminal, A's values are red and B's green."""
    store, a, b = changed
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, color_system="standard", width=200)
    print_diff(console, diff_runs(mltrail.Api(store), a, b))
    text = out.getvalue()
    assert re.search(r"\x1b\[31m0\.1 *\x1b\[0m", text)
    assert re.search(r"\x1b\[32m0\.2 *\x1b\[0m", text)


def test_unknown_run_is_an_error(repo: Path, tmp_path: Path) -> None:
    """An unknown run id: one error line on stderr, exit 1, nothing on stdout."""
    store = str(tmp_path / "store")
    a = make_run(store, {"lr": 0.1}, 3, [1.0])
    result = cli("diff", a, "nosuchrun", "--store", store)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: ") and "nosuchrun" in result.stderr
