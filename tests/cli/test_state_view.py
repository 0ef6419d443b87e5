"""``mltrail runs show``: captured-state sections and the console tail, text and JSON."""

from __future__ import annotations

import copy
import json
import platform
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from clihelp import cli, strict_json

import mltrail
from mltrail.store.batch import Batch
from mltrail.store.registry import open_store
from mltrail.testing.repos import git, init_repo

try:  # seed_everything imports torch; importing it now keeps that out of a capture thread
    import torch  # noqa: F401
except ImportError:
    pass

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git CLI not installed")

SECTIONS = [
    "code",
    "data",
    "environment",
    "hardware",
    "seeds",
    "invocation",
    "console (last 20 lines)",
]


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capture_isolation: None) -> Path:
    """A repository with one commit, a modified train.py and an untracked file; the cwd."""
    root = tmp_path / "repo"
    init_repo(root, {"train.py": "LR = 0.1\n"})
    (root / "train.py").write_text("LR = 0.1\nWD = 0.0\n")
    (root / "notes.txt").write_text("scratch\n")
    monkeypatch.chdir(root)
    return root


def make_run(store: str, console_lines: int = 0, **init: Any) -> str:
    """A finished, seeded run with ``console_lines`` lines of console output."""
    mltrail.seed_everything(4)
    run = mltrail.init(
        project="p",
        store=store,
        config={"lr": 0.1},
        system_metrics_s=0,
        console=False,
        allow_dirty=True,
        **init,
    )
    run.log({"loss": 0.5})
    run.finish()
    now = time.time_ns() // 1_000_000
    lines = [(now + i, "stderr" if i % 2 else "stdout", f"line {i}") for i in range(console_lines)]
    if lines:
        open_store(store).apply_batch(Batch(run.run_id, console=lines))
    return run.run_id


def overwrite_state(store: str, run_id: str, kind: str, doc: dict[str, Any]) -> None:
    """Replace one captured state document of a run."""
    open_store(store).apply_batch(Batch(run_id, state={kind: doc}))


def row(out: str, label: str) -> str:
    """The first line of ``out`` that starts with ``label`` and a space."""
    return next(line.rstrip() for line in out.splitlines() if line.startswith(label + " "))


def test_sections_follow_the_existing_ones(repo: Path, tmp_path: Path) -> None:
    """After metrics come code, environment, hardware, seeds, invocation, console."""
    store = str(tmp_path / "store")
    run = make_run(store)
    result = cli("runs", "show", run, "--store", store)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    order = [lines.index(s) for s in ["overview", "metrics", *SECTIONS]]
    assert order == sorted(order)


def test_code_section(repo: Path, tmp_path: Path) -> None:
    """Root, SHA, branch, dirty, changed files, untracked count, uncommitted diff, remotes."""
    store = str(tmp_path / "store")
    out = cli("runs", "show", make_run(store), "--store", store).stdout
    assert row(out, "repository").split()[1:] == [str(repo), "(entry", "point)"]
    assert row(out, "sha").split()[1] == git(repo, "rev-parse", "HEAD").strip()
    assert row(out, "branch").split() == ["branch", "main"]
    assert row(out, "dirty").split() == ["dirty", "yes"]
    assert row(out, "changed").split() == ["changed", "1:", "train.py"]
    assert row(out, "untracked").split() == ["untracked", "1", "file"]
    assert row(out, "uncommitted").split()[1:5] == ["1", "files,", "+1", "-0"]
    assert row(out, "remotes").split() == ["remotes", "(none)"]


def test_environment_hardware_seeds_invocation(repo: Path, tmp_path: Path) -> None:
    """Python and packages, OS/CPU/memory/GPUs, the seed, and how the run was invoked."""
    store = str(tmp_path / "store")
    run = make_run(store)
    state = mltrail.Api(store).state(run)
    out = cli("runs", "show", run, "--store", store).stdout
    assert row(out, "python").split()[1:3] == [platform.python_version(), "CPython"]
    packages = state["environment"]["packages"]
    assert row(out, "packages").split()[1:3] == [str(len(packages)), "installed;"]
    assert f"numpy {packages['numpy']}" in row(out, "packages")  # the tests import numpy
    assert row(out, "os").split()[1] == platform.system()
    assert row(out, "memory").endswith("GiB")
    hardware = state["hardware"]
    if not hardware["gpus"]:
        assert row(out, "gpus").split(maxsplit=1)[1] == f"no GPU ({hardware['nvml']['reason']})"
    assert row(out, "seed").split()[1:3] == ["4", "(argument);"]
    assert row(out, "deterministic").split() == ["deterministic", "no"]
    assert "PYTHONHASHSEED=4" in row(out, "switches")
    assert row(out, "source").split() == ["source", "dict"]
    assert row(out, "argv").split()[1:] == " ".join(state["config"]["argv"]).split()


def test_console_tail_is_the_last_20_lines(repo: Path, tmp_path: Path) -> None:
    """Only the last 20 console lines are shown, with their stream."""
    store = str(tmp_path / "store")
    out = cli("runs", "show", make_run(store, console_lines=30), "--store", store).stdout
    tail = out.split("\nconsole (last 20 lines)\n", 1)[1].splitlines()
    assert [line.split()[-1] for line in tail] == [str(i) for i in range(10, 30)]
    assert [line.split()[1] for line in tail[:2]] == ["stdout", "stderr"]


def test_json_adds_state_and_console_tail(repo: Path, tmp_path: Path) -> None:
    """``--json`` keeps the record's fields and adds ``state`` and ``console_tail``."""
    store = str(tmp_path / "store")
    run = make_run(store, console_lines=25)
    result = cli("runs", "show", run[:6], "--json", "--store", store)
    assert result.exit_code == 0, result.stderr
    data = strict_json(result.stdout)
    assert data["run_id"] == run and data["params"] == {"lr": 0.1}
    assert data["state"] == json.loads(json.dumps(mltrail.Api(store).state(run)))
    assert set(data["state"]) >= {"code", "environment", "hardware", "config", "seeds"}
    tail = data["console_tail"]
    assert len(tail) == 20
    assert tail[-1]["text"] == "line 24" and tail[0]["text"] == "line 5"
    assert set(tail[0]) == {"timestamp_ms", "stream", "text"}


def test_without_capture_sections_say_not_recorded(repo: Path, tmp_path: Path) -> None:
    """A run with capture off shows "(not recorded)" in every state section."""
    store = str(tmp_path / "store")
    run = make_run(store, capture=False)
    result = cli("runs", "show", run, "--store", store)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    for section in SECTIONS[:-1]:
        assert lines[lines.index(section) + 1] == "(not recorded)"
    assert lines[lines.index(SECTIONS[-1]) + 1] == "(none)"
    data = strict_json(cli("runs", "show", run, "--json", "--store", store).stdout)
    assert data["state"] == {} and data["console_tail"] == []


def test_gpu_failed_capture_hydra_and_no_code(repo: Path, tmp_path: Path) -> None:
    """GPUs are listed; a failed capture, Hydra overrides and "no code version" are shown."""
    store = str(tmp_path / "store")
    run = make_run(store)
    api = mltrail.Api(store)
    hardware = copy.deepcopy(api.state(run)["hardware"])
    hardware["gpus"] = [
        {
            "index": 0,
            "name": "NVIDIA H100 80GB HBM3",
            "memory_total_bytes": 80 * 2**30,
            "driver_version": "550.54",
            "cuda_driver_version": "12.4",
            "compute_capability": "9.0",
            "mig_mode": {"current": 0, "pending": 0},
        }
    ]
    overwrite_state(store, run, "hardware", hardware)
    overwrite_state(store, run, "seeds", {"error": "RuntimeError: boom"})
    hydra = {
        "overrides": ["lr=0.2", "model=big"],
        "config_name": "train",
        "config_sources": [{"path": "pkg://conf", "provider": "main", "schema": "pkg"}],
    }
    config = dict(api.state(run)["config"], source="hydra", hydra=hydra)
    overwrite_state(store, run, "config", config)
    code = {"repos": [], "entry_repo": None, "versioned": False, "note": "no code version"}
    overwrite_state(store, run, "code", code)
    out = cli("runs", "show", run, "--store", store).stdout
    gpu = row(out, "gpu 0")
    for text in ("NVIDIA H100 80GB HBM3", "80.0 GiB", "driver 550.54", "CUDA 12.4", "MIG off"):
        assert text in gpu
    lines = out.splitlines()
    assert lines[lines.index("seeds") + 1] == "capture failed: RuntimeError: boom"
    assert row(out, "overrides").split() == ["overrides", "lr=0.2", "model=big"]
    assert row(out, "hydra config").split()[-1] == "train"
    assert row(out, "version").split(maxsplit=1)[1] == "no code version"
