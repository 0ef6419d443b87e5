"""Fixtures for artifact tests: a run factory on an embedded store, files to log."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import mltrail
from mltrail.store.registry import forget_open_stores


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    """An embedded store folder (its artifact objects go to ``<store>/objects``)."""
    return tmp_path / "store"


@pytest.fixture
def new_run(store_dir: Path) -> Iterator[Callable[..., mltrail.Run]]:
    """Start runs on the test's store without capture; every run is finished afterwards."""
    started: list[mltrail.Run] = []

    def start(name: str = "run", project: str = "proj", **kw: Any) -> mltrail.Run:
        kw.setdefault("store", store_dir)
        run = mltrail.init(
            project=project,
            name=name,
            capture=False,
            console=False,
            system_metrics_s=0,
            **kw,
        )
        started.append(run)
        return run

    yield start
    for run in started:
        run.finish()
    forget_open_stores()
