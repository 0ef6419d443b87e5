"""Fixtures of the real-scripts tests: a committed repository holding unmodified scripts."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mltrail.testing.repos import init_repo

SCRIPTS = Path(__file__).resolve().parent / "scripts"


@pytest.fixture(autouse=True)
def _git_isolation(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "no-global-gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.delenv("MLTRAIL_CODE_REPOS", raising=False)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository with every script of scripts/ committed (and .mltrail/ ignored)."""
    root = tmp_path / "repo"
    shutil.copytree(SCRIPTS, root)
    for cache in root.rglob("__pycache__"):
        shutil.rmtree(cache)
    return init_repo(root, {".gitignore": ".mltrail/\n"})
