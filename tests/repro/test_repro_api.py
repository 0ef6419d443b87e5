"""`mltrail.repro` as a library: reproduce(), verify_determinism() and launch() called in-process.

The shipped examples are recorded in a real git repository by a child process; the library
then reproduces them from this process with explicit ``env=`` and ``cwd=``, and each test
checks that this process's environment and working directory come back unchanged.
"""

from __future__ import annotations

import ast
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from reprohelp import ROOT, child_env, examples_repo, python

import mltrail
import mltrail.repro
from mltrail.repro import LaunchError, Verdict
from mltrail.repro.launcher import resolve_store
from mltrail.testing.repos import git

REPRO_SRC = ROOT / "src" / "mltrail" / "repro"


@pytest.fixture(autouse=True)
def _light_wrapper(monkeypatch: pytest.MonkeyPatch) -> None:
    """The wrapper run in this process samples no system metrics and reads no leftover store."""
    monkeypatch.setenv("MLTRAIL_SYSTEM_METRICS_S", "0")
    monkeypatch.delenv("MLTRAIL_STORE", raising=False)
    monkeypatch.delenv("MLTRAIL_RUN_ID", raising=False)
    monkeypatch.delenv("MLTRAIL_SEED", raising=False)


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This process works in a folder that is not the repository (cwd= must be honoured)."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def _env() -> dict[str, str]:
    env = child_env()
    env.pop("MLTRAIL_STORE", None)
    return env


EXAMPLES = [
    ("repro_sklearn_digits.py", ["--epochs", "3"], "identical"),
    ("train_numpy.py", ["--no-show", "--epochs", "5", "--samples", "200"], "identical"),
    ("repro_nondeterministic.py", ["--fixed", "--epochs", "2"], "identical"),
    ("repro_nondeterministic.py", ["--epochs", "2"], "diverged"),
]


@pytest.mark.parametrize(("script", "args", "expected"), EXAMPLES)
def test_reproduce_returns_a_verdict_for_the_shipped_examples(
    tmp_path: Path, elsewhere: Path, script: str, args: list[str], expected: str
) -> None:
    """reproduce() re-runs each example and returns its typed Verdict; env and cwd untouched."""
    repo = examples_repo(tmp_path / "repo", script)
    original = python(repo, script, *args)
    environ, here = dict(os.environ), os.getcwd()
    echoed = io.BytesIO()
    verdict = mltrail.repro.reproduce(original, cwd=repo, env=_env(), stdout=echoed, stderr=echoed)
    assert dict(os.environ) == environ and os.getcwd() == here == str(elsewhere)
    assert isinstance(verdict, Verdict)
    assert verdict.verdict == expected, verdict.summary()
    assert verdict.exit_code == (0 if expected == "identical" else 1)
    assert verdict.original == original and verdict.plan is not None
    assert [i.kind for i in verdict.plan_lines][0] == "code"
    api = mltrail.Api(repo / ".mltrail")
    new = api.run(verdict.run_id or "")
    assert new.tags["reproduction-of"] == original
    assert new.tags["mltrail.verdict"] == expected
    (code,) = api.state(new.run_id)["code"]["repos"]
    assert code["sha"] == git(repo, "rev-parse", "HEAD").strip()
    if expected == "diverged":
        div = verdict.first_divergence
        assert div is not None and (div.key, div.step) == ("train/loss", 0)
        stored = api.state(new.run_id)["verdict"]
        assert verdict.causes and list(verdict.causes) == stored["causes"]
    else:
        assert verdict.first_divergence is None and verdict.causes == ()
    assert len(git(repo, "worktree", "list").splitlines()) == 1  # the scratch checkout is gone


def test_reproduce_dry_run_returns_the_plan_and_runs_nothing(tmp_path: Path) -> None:
    """A dry run's Verdict has the plan and no verdict word; no run, no worktree is made."""
    repo = examples_repo(tmp_path / "repo", "repro_sklearn_digits.py")
    original = python(repo, "repro_sklearn_digits.py", "--epochs", "2")
    verdict = mltrail.repro.reproduce(original[:8], store=repo / ".mltrail", dry_run=True)
    assert verdict.dry_run and verdict.verdict is None and verdict.ok and verdict.exit_code == 0
    assert verdict.run_id is None and verdict.comparisons == ()
    kinds = {i.kind for i in verdict.plan_lines}
    assert {"code", "config", "seeds", "environment", "command"} <= kinds
    assert len(mltrail.Api(repo / ".mltrail").runs()) == 1


def test_reproduce_refuses_a_store_that_does_not_exist(tmp_path: Path) -> None:
    """Naming a folder that holds no store is NotFoundError, and creates nothing there."""
    missing = tmp_path / "nothing-here"
    with pytest.raises(mltrail.NotFoundError, match="no mltrail store"):
        mltrail.repro.reproduce("abc", store=missing)
    assert not missing.exists()


def test_verify_determinism_with_explicit_env_and_cwd(tmp_path: Path, elsewhere: Path) -> None:
    """The seed reaches the command through env=, it runs in cwd=, and the process is unchanged."""
    repo = examples_repo(tmp_path / "repo", "repro_nondeterministic.py")
    environ, here = dict(os.environ), os.getcwd()
    cmd = [sys.executable, "repro_nondeterministic.py", "--fixed", "--epochs", "2"]
    verdict = mltrail.repro.verify_determinism(
        cmd, repeat=3, seed=5, env=_env(), cwd=repo, stdout=io.BytesIO(), stderr=io.BytesIO()
    )
    assert dict(os.environ) == environ and os.getcwd() == here == str(elsewhere)
    assert "MLTRAIL_SEED" not in os.environ
    assert verdict.verdict == "identical" and verdict.exit_code == 0 and verdict.seed == 5
    assert len(verdict.run_ids) == 3 and len(verdict.comparisons) == 2
    assert all(c.outcome.run_a == verdict.run_ids[0] for c in verdict.comparisons)
    api = mltrail.Api(repo / ".mltrail")  # the default store: at the git root of cwd
    for run_id in verdict.run_ids:
        state = api.state(run_id)
        assert state["seeds"]["seeding"]["seed"] == 5
        assert state["seeds"]["seeding"]["source"] == "env"
        assert state["invocation"]["cwd"] == str(repo.resolve())
        assert state["code"]["repos"][0]["root"] == str(repo.resolve())
    assert not (elsewhere / ".mltrail").exists()


def test_verify_determinism_names_the_first_divergence(tmp_path: Path) -> None:
    """Unseeded shuffling diverges: verdict diverged, exit 1, key and step, a cause in words."""
    repo = examples_repo(tmp_path / "repo", "repro_nondeterministic.py")
    cmd = [sys.executable, "repro_nondeterministic.py", "--epochs", "1"]
    verdict = mltrail.repro.verify_determinism(
        cmd, seed=2, env=_env(), cwd=repo, stdout=io.BytesIO(), stderr=io.BytesIO()
    )
    assert verdict.verdict == "diverged" and not verdict.ok and verdict.exit_code == 1
    div = verdict.first_divergence
    assert div is not None and (div.key, div.step) == ("train/loss", 0)
    assert verdict.causes and "non-deterministic" in verdict.causes[-1]
    assert verdict.to_dict()["comparisons"][0]["verdict"] == "diverged"


def test_verify_determinism_stops_when_the_first_run_fails(tmp_path: Path) -> None:
    """A first run that fails gives verdict failed with the reason, and no second run."""
    cmd = [sys.executable, "-c", "import sys; sys.exit(3)"]
    verdict = mltrail.repro.verify_determinism(
        cmd, store=tmp_path / "store", env=_env(), cwd=tmp_path, stderr=io.BytesIO()
    )
    assert verdict.verdict == "failed" and verdict.exit_code == 1 and verdict.comparisons == ()
    assert len(verdict.run_ids) == 1 and "ended failed (exit 3)" in verdict.reasons[0]


def test_launch_tracks_a_command_with_explicit_env_and_cwd(tmp_path: Path) -> None:
    """launch() runs the command in cwd= with env=, ends the run by its exit code."""
    work = tmp_path / "work"
    work.mkdir()
    script = "import os, sys; print(os.getcwd(), os.environ['MARK']); sys.exit(int(sys.argv[1]))"
    store = tmp_path / "store"
    out = io.BytesIO()
    env = {**_env(), "MARK": "marked"}
    ok = mltrail.repro.launch(
        [sys.executable, "-c", script, "0"], store=store, env=env, cwd=work, stdout=out
    )
    assert (ok.status, ok.exit_code, ok.process_exit_code) == ("finished", 0, 0)
    assert out.getvalue().decode().split() == [str(work.resolve()), "marked"]
    bad = mltrail.repro.launch([sys.executable, "-c", script, "3"], store=store, env=env, cwd=work)
    assert (bad.status, bad.exit_code) == ("failed", 3)
    api = mltrail.Api(store)
    assert api.run(ok.run_id).status.value == "finished"
    assert api.run(bad.run_id).tags["mltrail.command"] == "wrapped"
    assert "MARK" not in os.environ
    with pytest.raises(LaunchError, match="no-such-command-xyz") as caught:
        mltrail.repro.launch(["no-such-command-xyz"], store=store, cwd=work)
    assert caught.value.exit_code == 127
    # a command that cannot start is refused before any run is recorded for it
    assert [r for r in api.runs() if r.run_id not in (ok.run_id, bad.run_id)] == []


def test_resolve_store_takes_relative_paths_and_the_default_from_cwd(tmp_path: Path) -> None:
    """A relative store, MLTRAIL_STORE of env=, and the default are all resolved from cwd=."""
    repo = examples_repo(tmp_path / "repo", "train_numpy.py")
    (repo / "sub").mkdir()
    assert resolve_store("s", {}, repo) == str(repo / "s")
    assert resolve_store(None, {"MLTRAIL_STORE": "sqlite:///x.db"}, repo) == "sqlite:///x.db"
    assert resolve_store(None, {}, repo / "sub") == str((repo / ".mltrail").resolve())
    assert resolve_store("/abs/store", {}, repo) == "/abs/store"


def test_import_is_light_and_layered() -> None:
    """`import mltrail.repro` loads no NumPy, SQLAlchemy, Rich or CLI; repro never imports
    the CLI or the server, never changes os.environ and never calls os.chdir."""
    probe = (
        "import sys, mltrail.repro; heavy = ('numpy', 'sqlalchemy', 'rich', 'typer', "
        "'mltrail.cli', 'mltrail.server'); print([m for m in heavy if m in sys.modules])"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"
    for path in sorted(REPRO_SRC.glob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom | ast.Import):
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                names += [a.name for a in node.names] if isinstance(node, ast.Import) else []
                bad = [n for n in names if n.startswith(("mltrail.cli", "mltrail.server"))]
                assert not bad, f"{path.name} imports {bad}"
        assert not _changes_process_state(tree), f"{path.name} changes os.environ or the cwd"


def _changes_process_state(tree: ast.AST) -> list[str]:
    """Calls of os.chdir/putenv/unsetenv, os.environ's mutators, and os.environ[...] = ..."""
    banned = {"os.chdir", "os.putenv", "os.unsetenv"}
    banned |= {f"os.environ.{m}" for m in ("update", "pop", "setdefault", "clear", "popitem")}
    found: list[str] = []
    for node in ast.walk(tree):
        called = isinstance(node, ast.Call) and ast.unparse(node.func) in banned
        stored = (
            isinstance(node, ast.Subscript)
            and isinstance(node.ctx, ast.Store | ast.Del)
            and ast.unparse(node.value) == "os.environ"
        )
        if called or stored:
            found.append(ast.unparse(node))
    return found


def test_verdict_is_decided_by_the_worst_comparison() -> None:
    """Verdict.worst is the first of the worst outcomes; ok and exit_code follow the word."""
    from mltrail.repro.compare import Divergence, Outcome
    from mltrail.repro.verdict import Comparison

    div = Divergence("loss", 4, 1.0, 2.0, 1.0)
    outcomes = [
        Outcome("within-tolerance", "a", "b", 1e-5, 1e-8),
        Outcome("diverged", "a", "c", 1e-5, 1e-8, first_divergence=div),
        Outcome("diverged", "a", "d", 1e-5, 1e-8),
        Outcome("identical", "a", "e", 1e-5, 1e-8),
    ]
    comparisons = tuple(Comparison(o, (f"cause of {o.run_b}",), None) for o in outcomes)
    verdict = Verdict("diverged", comparisons=comparisons, run_ids=("a", "b", "c", "d", "e"))
    assert verdict.worst is comparisons[1] and verdict.first_divergence is div
    assert verdict.causes == ("cause of c",) and verdict.run_id == "e"
    assert not verdict.ok and verdict.exit_code == 1
    assert verdict.summary() == outcomes[1].summary() == f"diverged: {div.describe()}"
    assert verdict.to_dict()["comparisons"][1]["causes"] == ["cause of c"]
    assert Verdict("within-tolerance").exit_code == 0 and Verdict(None).dry_run


def test_preflight_checks_expected_files_in_cwd(tmp_path: Path) -> None:
    """preflight() runs a few steps in cwd= and checks the expected file relative to it."""
    from mltrail.repro.preflight import preflight

    work = tmp_path / "work"
    work.mkdir()
    (work / "fit.py").write_text(
        "import pathlib, mltrail\n"
        "mltrail.init(config={'lr': 0.1})\n"
        "for step in range(10):\n"
        "    pathlib.Path('out.bin').write_bytes(b'x')\n"
        "    mltrail.log({'loss': 1.0 / (step + 1)}, step=step)\n"
        "mltrail.finish()\n"
    )
    result = preflight(
        [sys.executable, "fit.py"],
        steps=3,
        expect=["out.bin", "missing.bin"],
        store=tmp_path / "store",
        env=_env(),
        cwd=work,
        stdout=io.BytesIO(),
    )
    checks = {c.name: c for c in result.checks}
    assert checks["command exited cleanly"].ok and checks["metrics finite"].ok
    assert checks["wrote out.bin"].ok and not checks["wrote missing.bin"].ok
    assert not result.ok and result.launched.status == "finished"
    history = mltrail.Api(tmp_path / "store").run(result.launched.run_id).metrics["loss"]
    assert history.count == 3
