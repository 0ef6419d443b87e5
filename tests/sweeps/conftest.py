"""Fixtures for sweep tests: a sweep spec over ``train_prog.py`` in a store."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("optuna")

PROG = Path(__file__).with_name("train_prog.py")


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A folder holding the training program (the sweep's working directory)."""
    folder = tmp_path / "work"
    folder.mkdir()
    shutil.copy(PROG, folder / "train_prog.py")
    return folder
