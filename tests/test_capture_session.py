"""init() captures what the run depended on: the guard, state kinds, console, system metrics."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import mltrail
from mltrail.errors import DirtyWorkingTreeError
from mltrail.testing.repos import init_repo


def _git(repo: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository with one commit holding train.py."""
    return init_repo(tmp_path / "repo", {"train.py": "print('hi')\n"})


def _run_script(
    repo: Path, body: str, env_extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    script = repo / "job.py"
    script.write_text(textwrap.dedent(body))
    _git(repo, "add", "job.py")
    _git(repo, "commit", "-qm", "job")
    import os

    env = {**os.environ, "MLTRAIL_ALLOW_DIRTY": "0", **(env_extra or {})}
    return subprocess.run(
        [sys.executable, str(script)],
        cwd=repo,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_clean_repo_run_records_every_kind(repo: Path) -> None:
    """A run from committed code records code, environment, hardware, config and seeds."""
    done = _run_script(
        repo,
        """
        import mltrail
        mltrail.seed_everything(7)
        with mltrail.init(project="p", config={"lr": 0.1}, system_metrics_s=0) as run:
            mltrail.log({"loss": 1.0})
        print("RUN", run.run_id)
    """,
    )
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.split("RUN ")[1].strip()
    api = mltrail.Api(repo / ".mltrail")
    state = api.state(run_id)
    kinds = {"code", "data", "environment", "hardware", "config", "seeds", "invocation"}
    assert set(state) == kinds
    (code,) = state["code"]["repos"]
    assert code["sha"] == _git(repo, "rev-parse", "HEAD") and code["dirty"] is False
    assert state["config"]["config"] == {"lr": 0.1}
    assert state["seeds"]["seeding"]["seed"] == 7
    assert "sqlalchemy" in state["environment"]["packages"]
    assert "mltrail.dirty" not in api.run(run_id).tags
    assert _git(repo, "status", "--porcelain") == ""  # the store folder ignores itself


def test_dirty_repo_is_refused_only_under_require_clean(
    repo: Path, monkeypatch, tmp_path, capsys
) -> None:
    """require_clean stops init() on uncommitted code, naming the files and the two ways out;
    allow_dirty overrides it; without it the run starts and one line says what was recorded."""
    (repo / "train.py").write_text("print('changed')\n")
    (repo / "helper.py").write_text("X = 1\n")
    (repo / "plot.pdf").write_bytes(b"%PDF-1.4 output")
    monkeypatch.chdir(repo)
    monkeypatch.setenv("MLTRAIL_ALLOW_DIRTY", "0")
    monkeypatch.setenv("MLTRAIL_REQUIRE_CLEAN", "1")
    with pytest.raises(DirtyWorkingTreeError) as info:
        mltrail.init(project="p", store=tmp_path / "s")
    msg = str(info.value)
    assert "train.py" in msg and "helper.py" in msg and "plot.pdf" not in msg
    assert "commit them" in msg and "--allow-dirty" in msg and "MLTRAIL_ALLOW_DIRTY=1" in msg
    assert set(info.value.files) == {"train.py", "helper.py"}
    assert not list((tmp_path / "s").glob("spool/*.spool"))
    with mltrail.init(project="p", store=tmp_path / "s", allow_dirty=True, console=False):
        pass
    monkeypatch.delenv("MLTRAIL_REQUIRE_CLEAN")
    capsys.readouterr()
    with mltrail.init(project="p", store=tmp_path / "s", system_metrics_s=0, console=False) as run:
        pass
    err = capsys.readouterr().err
    assert "diff of 1 modified file(s) and 1 untracked source file(s)" in err
    assert "1 output(s) not counted as code (plot.pdf)" in err and ".gitignore" in err
    api = mltrail.Api(tmp_path / "s")
    assert api.run(run.run_id).tags["mltrail.dirty"] == "true"
    (code,) = api.state(run.run_id)["code"]["repos"]
    (kept,) = code["untracked_sources"]
    assert kept["path"] == "helper.py" and api.blob(kept["digest"]) == b"X = 1\n"
    assert code["outputs"] == ["plot.pdf"]


def test_require_clean_in_the_project_config(repo: Path, monkeypatch, tmp_path) -> None:
    """`require_clean = true` in .mltrail/config.toml refuses too, naming the file; outputs
    alone never make the code dirty."""
    (repo / ".mltrail").mkdir()
    (repo / ".mltrail" / "config.toml").write_text("require_clean = true\n")
    _git(repo, "add", ".mltrail/config.toml")
    _git(repo, "commit", "-qm", "policy")
    monkeypatch.chdir(repo)
    monkeypatch.setenv("MLTRAIL_ALLOW_DIRTY", "0")
    (repo / "outputs" / "2024-01-01").mkdir(parents=True)
    (repo / "outputs" / "2024-01-01" / "cfg.yaml").write_text("a: 1\n")
    (repo / "model.pt").write_bytes(b"\0" * 10)
    with mltrail.init(project="p", store=tmp_path / "s", console=False) as run:
        pass
    assert "mltrail.dirty" not in mltrail.Api(tmp_path / "s").run(run.run_id).tags
    (repo / "train.py").write_text("print('changed')\n")
    with pytest.raises(DirtyWorkingTreeError) as info:
        mltrail.init(project="p", store=tmp_path / "s")
    assert "config.toml" in str(info.value) and "train.py" in str(info.value)


def test_allow_dirty_records_diff_and_tags_run(repo: Path, monkeypatch, tmp_path) -> None:
    """With allow_dirty the uncommitted diff is stored as a blob and the run is tagged dirty."""
    (repo / "train.py").write_text("print('changed')\n")
    monkeypatch.chdir(repo)
    monkeypatch.setenv("MLTRAIL_ALLOW_DIRTY", "0")
    with mltrail.init(
        project="p", store=tmp_path / "s", allow_dirty=True, system_metrics_s=0, console=False
    ) as run:
        pass
    api = mltrail.Api(tmp_path / "s")
    assert api.run(run.run_id).tags["mltrail.dirty"] == "true"
    (code,) = api.state(run.run_id)["code"]["repos"]
    assert code["dirty"] is True and "train.py" in code["changed_files"]
    diff = api.blob(code["diff"]).decode()
    assert "-print('hi')" in diff and "+print('changed')" in diff


def test_env_override_allows_dirty(repo: Path, monkeypatch, tmp_path) -> None:
    """MLTRAIL_ALLOW_DIRTY=1 lets a dirty tree run."""
    (repo / "train.py").write_text("x = 1\n")
    monkeypatch.chdir(repo)
    monkeypatch.setenv("MLTRAIL_ALLOW_DIRTY", "1")
    with mltrail.init(project="p", store=tmp_path / "s", system_metrics_s=0) as run:
        pass
    assert mltrail.Api(tmp_path / "s").run(run.run_id).tags["mltrail.dirty"] == "true"


def test_outside_git_is_allowed_as_unversioned(tmp_path, monkeypatch) -> None:
    """Outside any repository the run starts and records that it has no code version."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLTRAIL_ALLOW_DIRTY", "0")
    with mltrail.init(project="p", store=tmp_path / "s", system_metrics_s=0) as run:
        pass
    assert mltrail.Api(tmp_path / "s").state(run.run_id)["code"]["versioned"] is False


def test_seed_everything_after_init_updates_seeds(tmp_path) -> None:
    """Seeding after init records the seeds on the active run."""
    with mltrail.init(project="p", store=tmp_path / "s", system_metrics_s=0) as run:
        got = mltrail.seed_everything(123)
    assert got["seed"] == 123
    assert mltrail.Api(tmp_path / "s").state(run.run_id)["seeds"]["seeding"]["seed"] == 123


def test_console_and_system_metrics_are_kept(tmp_path, capsys) -> None:
    """Printed lines land in the run's console log; system/ series are sampled."""
    import time

    with mltrail.init(project="p", store=tmp_path / "s", system_metrics_s=0.05) as run:
        print("hello from training")
        print("a warning", file=sys.stderr)
        time.sleep(0.4)
    assert "hello from training" in capsys.readouterr().out  # the user still sees it
    api = mltrail.Api(tmp_path / "s")
    lines = [(c.stream, c.text) for c in api.console(run.run_id)]
    assert ("stdout", "hello from training") in lines and ("stderr", "a warning") in lines
    keys = set(api.run(run.run_id).metrics)
    assert {"system/cpu_percent", "system/proc/rss_bytes"} <= keys
    assert api.history(run.run_id, "system/proc/rss_bytes").values.min() > 0


def test_capture_can_be_switched_off(tmp_path) -> None:
    """capture=False, console=False and system_metrics_s=0 record none of it."""
    with mltrail.init(
        project="p", store=tmp_path / "s", capture=False, console=False, system_metrics_s=0
    ) as run:
        print("not kept")
    api = mltrail.Api(tmp_path / "s")
    assert api.state(run.run_id) == {}
    assert api.console(run.run_id) == []
    assert not [k for k in api.run(run.run_id).metrics if k.startswith("system/")]
