"""`mltrail verify-determinism -- CMD`: repeated tracked runs compared point by point."""

from __future__ import annotations

import sys
from pathlib import Path

from reprohelp import child_env, examples_repo, mltrail_cli, strict

import mltrail


def test_injected_non_determinism_is_caught(tmp_path: Path) -> None:
    repo = examples_repo(tmp_path / "repo", "repro_nondeterministic.py")
    done = mltrail_cli(
        repo,
        "verify-determinism",
        "--seed",
        "3",
        "--",
        sys.executable,
        "repro_nondeterministic.py",
        "--epochs",
        "2",
    )
    assert done.returncode == 1, done.stdout + done.stderr
    text = " ".join(done.stdout.split())
    assert "run 2 vs run 1: diverged: train/loss at step 0:" in text
    assert "the program itself is non-deterministic" in text  # nothing recorded differs
    assert "not deterministic: diverged at train/loss step 0" in " ".join(done.stderr.split())
    api = mltrail.Api(repo / ".mltrail")
    runs = api.runs()
    assert len(runs) == 2
    assert {r.tags["mltrail.determinism"] for r in runs} == {runs[0].tags["mltrail.determinism"]}
    second = next(r for r in runs if r.tags["mltrail.repeat"] == "2")
    assert second.tags["mltrail.verdict"] == "diverged"
    for r in runs:  # --seed reached seed_everything() through MLTRAIL_SEED
        seeding = api.state(r.run_id)["seeds"]["seeding"]
        assert seeding["seed"] == 3 and seeding["source"] == "env"


def test_seeded_script_passes_and_json_is_strict(tmp_path: Path) -> None:
    repo = examples_repo(tmp_path / "repo", "repro_nondeterministic.py")
    done = mltrail_cli(
        repo,
        "verify-determinism",
        "--repeat",
        "3",
        "--seed",
        "11",
        "--json",
        "--",
        sys.executable,
        "repro_nondeterministic.py",
        "--fixed",
        "--epochs",
        "2",
    )
    assert done.returncode == 0, done.stderr
    out = strict(done.stdout)  # the children's output went to stderr
    assert out["verdict"] == "identical" and out["seed"] == 11
    assert len(out["runs"]) == 3 and len(out["comparisons"]) == 2
    assert all(c["verdict"] == "identical" for c in out["comparisons"])
    assert all(c["run_a"] == out["runs"][0] for c in out["comparisons"])


STEP_SCRIPT = """\
import os, sys
import sys
from pathlib import Path
import mltrail

counter = Path(os.environ["COUNTER_FILE"])
k = int(counter.read_text()) if counter.exists() else 0
counter.write_text(str(k + 1))
with mltrail.init(project="tolerance"):
    for step in range(4):
        value = 0.5 + (k * 2.0**-20 if step == 2 else 0.0)  # run 2 is off by 2**-20 at step 2
        mltrail.log({"metric": value}, step=step)
"""


def test_tolerance_boundaries_and_exit_codes(tmp_path: Path) -> None:
    work = tmp_path / "work"  # not a git repository: the code capture says so, no guard
    work.mkdir()
    (work / "step.py").write_text(STEP_SCRIPT)
    gap = 2.0**-20
    results = {}
    for name, atol in (("over", gap * (1 + 1e-9)), ("under", gap * (1 - 1e-9))):
        env = child_env(COUNTER_FILE=str(tmp_path / f"counter-{name}"))
        done = mltrail_cli(
            work,
            "verify-determinism",
            "--rtol",
            "0",
            "--atol",
            repr(atol),
            "--json",
            "--store",
            str(tmp_path / "store"),
            "--",
            sys.executable,
            "step.py",
            env=env,
        )
        results[name] = done
    over = results["over"]
    assert over.returncode == 0, over.stderr
    comp = strict(over.stdout)["comparisons"][0]
    assert comp["verdict"] == "within-tolerance"
    assert comp["first_difference"]["step"] == 2 and comp["first_divergence"] is None
    assert comp["keys"][0]["max_gap"] == gap
    under = results["under"]
    assert under.returncode == 1, under.stderr
    comp = strict(under.stdout)["comparisons"][0]
    assert comp["verdict"] == "diverged"
    assert comp["first_divergence"] == {
        "key": "metric",
        "step": 2,
        "a": 0.5,
        "b": 0.5 + gap,
        "gap": gap,
        "reason": "value",
    }


def test_a_failing_command_fails_the_check(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "boom.py").write_text(
        "import mltrail, sys\nmltrail.init(project='boom')\nmltrail.log({'x': 1.0})\nsys.exit(3)\n"
    )
    done = mltrail_cli(
        work, "verify-determinism", "--store", str(tmp_path / "s"), "--", sys.executable, "boom.py"
    )
    assert done.returncode == 1
    assert "ended failed" in " ".join(done.stderr.split())
    bad = mltrail_cli(work, "verify-determinism", "--repeat", "1", "--", sys.executable, "boom.py")
    assert bad.returncode == 2 and "--repeat" in bad.stderr
