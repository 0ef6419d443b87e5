"""Fixtures for the data tests: a real git repository (the cwd) with a local remote."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mltrail.testing.repos import init_repo

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git CLI not installed")


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository with one commit, as the current directory."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "no-global-gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    root = init_repo(tmp_path / "repo", {"README.md": "data project\n"})
    monkeypatch.chdir(root)
    return root
