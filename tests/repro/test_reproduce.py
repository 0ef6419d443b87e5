"""`mltrail reproduce` end to end: real git repositories, real training scripts, real processes.

Each test records an original run with one of the shipped examples, reproduces it with the
CLI in a child process and checks the verdict, the exit status, what is stored on the new run
and what is printed.
"""

from __future__ import annotations

import importlib.util
import subprocess
import textwrap
from pathlib import Path

import pytest
from reprohelp import (
    child_env,
    copy_featscale,
    examples_repo,
    mltrail_cli,
    python,
    strict,
    with_path,
)
from typer.testing import CliRunner

import mltrail
from mltrail.cli.main import app
from mltrail.testing.repos import git

runner = CliRunner()

HAS_TORCH = importlib.util.find_spec("torch") is not None
needs_torch = pytest.mark.skipif(
    not HAS_TORCH,
    reason="torch is not installed (the test extra cannot pin it: .ci/run installs the CPU "
    "wheel, `pip install torch==2.13.0`)",
)


def _worktrees(repo: Path) -> list[str]:
    out = git(repo, "worktree", "list", "--porcelain")
    return [line for line in out.splitlines() if line.startswith("worktree ")]


def test_sklearn_digits_reproduces_identical(tmp_path: Path) -> None:
    repo = examples_repo(tmp_path / "repo", "repro_sklearn_digits.py")
    original = python(repo, "repro_sklearn_digits.py", "--epochs", "6")
    done = mltrail_cli(repo, "reproduce", original[:8], "--json")
    assert done.returncode == 0, done.stderr
    out = strict(done.stdout)
    outcome = out["outcome"]
    assert outcome["verdict"] == "identical"
    assert [k["key"] for k in outcome["keys"]] == ["train/loss", "val/acc"]
    assert all(k["identical"] and k["points"] == [6, 6] for k in outcome["keys"])
    (art,) = outcome["artifacts"]
    assert art["name"] == "repro-examples/digits-coef" and art["equal"]
    assert out["causes"] == [] and out["plan"]["missing"] == []
    # stored on the new run, which captured everything like any `mltrail run`
    api = mltrail.Api(repo / ".mltrail")
    new = api.run(out["run_id"])
    assert new.tags["reproduction-of"] == original
    assert new.tags["mltrail.verdict"] == "identical"
    state = api.state(new.run_id)
    assert state["verdict"]["verdict"] == "identical" and state["verdict"]["of"] == original
    assert {"code", "environment", "hardware", "seeds", "config", "invocation"} <= set(state)
    (code,) = state["code"]["repos"]
    assert code["sha"] == git(repo, "rev-parse", "HEAD").strip() and not code["dirty"]
    assert state["invocation"]["argv"][1:] == ["repro_sklearn_digits.py", "--epochs", "6"]
    assert new.params == api.run(original).params
    # the scratch worktree is gone and unregistered
    assert len(_worktrees(repo)) == 1
    shown = mltrail_cli(repo, "runs", "show", new.run_id)
    assert shown.returncode == 0, shown.stderr
    assert "reproduction verdict" in shown.stdout and "identical" in shown.stdout
    assert f"reproduction-of  {original}" in " ".join(shown.stdout.split("\n"))


@needs_torch
def test_torch_seeded_identical_and_unseeded_diverges_at_first_step(tmp_path: Path) -> None:
    repo = examples_repo(tmp_path / "repo", "repro_torch.py")
    # one intra-op thread: how CPU reductions are split then never varies; the variable is
    # recorded with the run and restored by reproduce (its own environment lacks it)
    one_thread = child_env(OMP_NUM_THREADS="1")
    seeded = python(repo, "repro_torch.py", "--seed", "7", "--steps", "12", env=one_thread)
    unseeded = python(repo, "repro_torch.py", "--steps", "12", env=one_thread)

    done = mltrail_cli(repo, "reproduce", seeded, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    out = strict(done.stdout)
    assert out["outcome"]["verdict"] == "identical", out["outcome"]
    assert out["plan"]["env"]["set"]["OMP_NUM_THREADS"] == "1"

    done = mltrail_cli(repo, "reproduce", unseeded)
    assert done.returncode == 1, done.stdout + done.stderr
    text = " ".join(done.stdout.split())
    assert "verdict: diverged: train/loss at step 0:" in text
    assert "the seed was not set" in text
    assert "not restored" in text.lower()  # the plan said so before running
    api = mltrail.Api(repo / ".mltrail")
    (new,) = [r for r in api.runs() if r.tags.get("reproduction-of") == unseeded]
    doc = api.state(new.run_id)["verdict"]
    assert doc["verdict"] == "diverged" and new.tags["mltrail.verdict"] == "diverged"
    assert doc["first_divergence"]["key"] == "train/loss"
    assert doc["first_divergence"]["step"] == 0
    assert doc["causes"][0].startswith("the seed was not set")


def test_upgraded_package_is_reported_next_to_the_verdict(tmp_path: Path) -> None:
    repo = examples_repo(tmp_path / "repo", "repro_env_package.py")
    versions = copy_featscale(tmp_path / "featscale")
    original = python(repo, "repro_env_package.py", env=with_path(child_env(), versions / "v1.0"))
    state = mltrail.Api(repo / ".mltrail").state(original)
    assert state["environment"]["packages"]["featscale"] == "1.0"

    env11 = with_path(child_env(), versions / "v1.1")
    done = mltrail_cli(repo, "reproduce", original, "--env", "current", env=env11)
    assert done.returncode == 1, done.stdout + done.stderr
    text = " ".join(done.stdout.split())
    assert "verdict: diverged: train/mse at step 0" in text
    assert "featscale 1.0 → 1.1 (upgraded)" in text  # in the plan, the verdict and the diff
    assert "cause: package versions differ: packages.featscale 1.0 → 1.1 (upgraded)" in text

    same = mltrail_cli(
        repo, "reproduce", original, "--json", env=with_path(child_env(), versions / "v1.0")
    )
    assert same.returncode == 0, same.stderr
    out = strict(same.stdout)
    assert out["outcome"]["verdict"] == "identical"
    assert out["environment"]["package_changes"] == []


DATA_SCRIPT = """\
import sys
from pathlib import Path
import numpy as np
import mltrail

scale = 1.0
with mltrail.init(project="data-example", config={"scale": scale}) as run:
    x = np.loadtxt(Path("data") / "values.txt")
    for step in range(5):
        mltrail.log({"mean": float(x.mean() * scale * (step + 1))}, step=step)
    print(f"logged run {run.run_id}")
"""


def test_dirty_code_and_data_are_restored_and_verified(tmp_path: Path) -> None:
    from mltrail.data.ops import add
    from mltrail.data.repo import DataRepo

    repo = examples_repo(tmp_path / "repo", extra={"train.py": DATA_SCRIPT})
    (repo / "data").mkdir()
    (repo / "data" / "values.txt").write_text("\n".join(str(i * 0.5) for i in range(50)))
    add(DataRepo(repo), [repo / "data" / "values.txt"], progress=False)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "data")
    # uncommitted change: the recorded diff must come back with the code
    script = (repo / "train.py").read_text().replace("scale = 1.0", "scale = 3.0")
    (repo / "train.py").write_text(script)
    original = python(repo, "train.py")
    orig_state = mltrail.Api(repo / ".mltrail").state(original)
    (repo_state,) = orig_state["code"]["repos"]
    assert repo_state["dirty"] and repo_state["diff"]
    assert [p["path"] for p in orig_state["data"]["pointers"]] == ["data/values.txt"]

    work = tmp_path / "work"
    done = mltrail_cli(repo, "reproduce", original, "--workdir", str(work), "--json")
    assert done.returncode == 0, done.stderr
    out = strict(done.stdout)
    assert out["outcome"]["verdict"] == "identical", out["outcome"]
    assert out["workdir"] == str(work.resolve())
    plan = {(i["kind"], i["subject"]): i for i in out["plan"]["items"]}
    assert plan[("data", "data/values.txt")]["status"] == "restore"
    assert "verified" in plan[("data", "data/values.txt")]["detail"]
    assert plan[("code", "uncommitted changes")]["status"] == "restore"
    # kept with --workdir: the checkout holds the diff and the restored data
    assert "scale = 3.0" in (work / "code" / "train.py").read_text()
    restored = (work / "code" / "data" / "values.txt").read_text()
    assert restored == (repo / "data" / "values.txt").read_text()
    new_state = mltrail.Api(repo / ".mltrail").state(out["run_id"])
    (new_repo,) = new_state["code"]["repos"]
    assert new_repo["diff"] == repo_state["diff"]  # the same uncommitted diff, byte for byte
    assert out["diff"]["kinds"]["code"]["repos"][0]["uncommitted_differs"] is False
    git(repo, "worktree", "remove", "--force", str(work / "code"))


WRAPPED_SCRIPT = """\
import sys
import numpy as np
import mltrail

mltrail.init()  # attaches to the run `mltrail run` created
lr = float(sys.argv[1])
w = np.zeros(3)
x = np.linspace(-1, 1, 30).reshape(10, 3)
y = x @ np.array([0.5, -1.0, 2.0])
for step in range(8):
    err = x @ w - y
    mltrail.log({"mse": float(np.mean(err**2))}, step=step)
    w -= lr * x.T @ err / len(x)
"""


def test_a_run_recorded_by_mltrail_run_reproduces_its_wrapped_command(tmp_path: Path) -> None:
    import sys

    repo = examples_repo(tmp_path / "repo", extra={"fit.py": WRAPPED_SCRIPT})
    done = mltrail_cli(repo, "run", "--project", "wrapped", "--", sys.executable, "fit.py", "0.3")
    assert done.returncode == 0, done.stderr
    (original,) = mltrail.Api(repo / ".mltrail").runs()
    inv = mltrail.Api(repo / ".mltrail").state(original.run_id)["invocation"]
    assert inv["wrapped"] is True and inv["argv"] == [sys.executable, "fit.py", "0.3"]

    done = mltrail_cli(repo, "reproduce", original.run_id, "--json")
    assert done.returncode == 0, done.stderr
    out = strict(done.stdout)
    assert out["outcome"]["verdict"] == "identical"
    assert out["plan"]["command"]["argv"] == [sys.executable, "fit.py", "0.3"]
    new = mltrail.Api(repo / ".mltrail").run(out["run_id"])
    assert new.project == "wrapped" and new.tags["mltrail.command"] == "wrapped"


GPU_SCRIPT = """\
import mltrail
import mltrail.capture.hardware as hardware

H100 = {"index": 0, "name": "NVIDIA H100 80GB HBM3", "uuid": "GPU-0", "memory_total_bytes":
        85899345920, "compute_capability": "9.0", "driver_version": "550.54.15",
        "cuda_driver_version": "12.4", "mig_mode": None}
hardware.gpus = lambda: ([H100], {"available": True, "reason": None})  # the recorded machine

with mltrail.init(project="gpu") as run:
    mltrail.log({"loss": 0.5}, step=0)
    print(f"logged run {run.run_id}")
"""


def test_dry_run_explains_what_is_missing(tmp_path: Path) -> None:
    from mltrail.data.ops import add
    from mltrail.data.repo import DataRepo

    repo = examples_repo(tmp_path / "repo", extra={"train.py": GPU_SCRIPT})
    (repo / "data").mkdir()
    (repo / "data" / "train.csv").write_text("a,b\n1,2\n")
    (pointer,) = add(DataRepo(repo), [repo / "data" / "train.csv"], progress=False)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "data")
    import shutil

    shutil.rmtree(repo / ".mltrail" / "cache")  # the data exists nowhere else now
    (repo / "train.py").write_text(GPU_SCRIPT + "# tuned by hand\n")  # dirty
    (repo / "notes.txt").write_text("not committed\n")  # untracked, not code: an output
    (repo / "helper.py").write_text("X = 1\n")  # untracked source: kept with the run
    original = python(repo, "train.py")

    done = mltrail_cli(repo, "reproduce", original, "--dry-run")
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())
    assert "write back 1 untracked source file(s) recorded with the run: helper.py" in text
    assert "1 output(s) were in the tree" in text and "notes.txt" in text
    assert "apply the recorded diff" in text and "train.py" in text
    digest = pointer.pointer.digest
    assert f"data/train.csv NOT restored 1 object(s), e.g. {digest}" in text
    assert "the original ran with 1 GPU(s): NVIDIA H100 80GB HBM3 (driver 550.54.15" in text
    assert "the seed was not set" in text
    assert "2 thing(s) cannot be restored" in text  # the data, the seed

    done = mltrail_cli(repo, "reproduce", original, "--dry-run", "--json")
    assert done.returncode == 0, done.stderr
    plan = strict(done.stdout)["plan"]
    missing = {(m["kind"], m["subject"]) for m in plan["missing"]}
    assert {("data", "data/train.csv"), ("seeds", "seed")} <= missing
    assert ("code", "untracked files") not in missing
    differs = [i for i in plan["items"] if i["status"] == "differs"]
    assert any(i["kind"] == "hardware" and "H100" in i["detail"] for i in differs)
    # a dry run changes nothing: no new run, no worktree
    assert len(mltrail.Api(repo / ".mltrail").runs()) == 1
    assert len(_worktrees(repo)) == 1


def test_reproduce_refuses_what_it_cannot_run(tmp_path: Path) -> None:
    repo = examples_repo(tmp_path / "repo", extra={"x.txt": "x\n"})
    inline = textwrap.dedent("""
        import mltrail
        with mltrail.init(project="inline") as run:
            mltrail.log({"v": 1.0})
            print(f"logged run {run.run_id}")
    """)
    done = subprocess.run(
        [__import__("sys").executable, "-c", inline],
        cwd=repo,
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.split("logged run ")[1].strip()
    out = mltrail_cli(repo, "reproduce", run_id)
    assert out.returncode == 1
    assert "python -c" in " ".join(out.stderr.split())
    store = ["--store", str(repo / ".mltrail")]
    bad = runner.invoke(app, ["reproduce", run_id, "--env", "conda", *store])
    assert bad.exit_code == 1 and "--env must be one of current, rebuild" in bad.output
    bad = runner.invoke(app, ["reproduce", run_id, "--rtol", "-1", *store])
    assert bad.exit_code == 1 and "--rtol must be a finite number >= 0" in bad.output
    bad = runner.invoke(app, ["reproduce", run_id, "--atol", "nan", *store])
    assert bad.exit_code == 1 and "--atol must be a finite number >= 0" in bad.output
    missing = runner.invoke(app, ["reproduce", "nosuchrun", *store])
    assert missing.exit_code == 1 and "nosuchrun" in missing.output
    assert missing.exception is None or isinstance(missing.exception, SystemExit)


@pytest.mark.slow
def test_env_rebuild_from_a_tiny_recorded_environment(tmp_path: Path) -> None:
    from mltrail.capture.environment import installed_packages
    from mltrail.repro.environment import find_uv, rebuild_environment

    if find_uv() is None:
        pytest.skip("uv is not installed: --env rebuild falls back to pip (not timed here)")
    here = installed_packages()
    wanted = ["numpy", "sqlalchemy", "typing-extensions", "psutil"]
    reqs = "".join(f"{n}=={here[n]}\n" for n in wanted)
    tiny = rebuild_environment(reqs, tmp_path / "recorded-env")
    assert tiny.unavailable == []
    # a distribution no index has: recorded, then reported as unavailable by the rebuild
    site = next((tmp_path / "recorded-env" / "lib").glob("python*/site-packages"))
    info = site / "mltrail-test-unpublished-9.9.9.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: mltrail-test-unpublished\nVersion: 9.9.9\n"
    )
    repo = examples_repo(
        tmp_path / "repo",
        extra={
            "train.py": DATA_SCRIPT.replace(
                'x = np.loadtxt(Path("data") / "values.txt")', "x = np.arange(10.0)"
            )
        },
    )
    original = python(repo, "train.py", interpreter=str(tiny.python))
    recorded = mltrail.Api(repo / ".mltrail").state(original)["environment"]["packages"]
    assert set(recorded) == {*wanted, "mltrail", "mltrail-test-unpublished"}

    done = mltrail_cli(repo, "reproduce", original, "--env", "rebuild", "--json")
    assert done.returncode == 0, done.stderr
    out = strict(done.stdout)
    assert out["outcome"]["verdict"] == "identical"
    rebuilt = out["environment"]["rebuilt"]
    assert rebuilt["tool"] == "uv" and rebuilt["installed"] == len(wanted)
    assert rebuilt["unavailable"] == ["mltrail-test-unpublished==9.9.9"]
    new_env = mltrail.Api(repo / ".mltrail").state(out["run_id"])["environment"]
    assert {k: v for k, v in new_env["packages"].items() if k in wanted} == {
        n: here[n] for n in wanted
    }
