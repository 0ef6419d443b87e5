"""Run naming and tagging conventions from .mltrail/config.toml, checked at init(): every
broken rule named (error) or one warning each (warn); per-project tables override."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

import mltrail
from mltrail.errors import InvalidArgumentError
from mltrail.store.registry import forget_open_stores

CONFIG = """
[conventions]
required_tags = ["team"]
name_pattern = "^[a-z]+-[0-9]+$"

[conventions.projects.lab]
on_violation = "warn"
required_tags = ["owner"]
"""


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".git").mkdir()
    (tmp_path / ".mltrail").mkdir()
    (tmp_path / ".mltrail" / "config.toml").write_text(CONFIG)
    monkeypatch.setenv("MLTRAIL_STORE", str(tmp_path / "store"))
    yield tmp_path
    forget_open_stores()


def _init(project: str, name: str, tags: dict[str, str] | None = None) -> mltrail.Run:
    return mltrail.init(
        project=project, name=name, tags=tags, capture=False, console=False, system_metrics_s=0
    )


def test_error_lists_every_broken_convention(repo: Path) -> None:
    """A run without the tag and with a bad name is refused, naming both; nothing is stored."""
    with pytest.raises(InvalidArgumentError) as err:
        _init("fraud", "My Run")
    text = str(err.value)
    assert "tag 'team' is required" in text
    assert "name 'My Run' does not match '^[a-z]+-[0-9]+$'" in text
    run = _init("fraud", "exp-12", {"team": "risk"})
    run.finish()
    from mltrail.store.registry import open_store

    stored = open_store(str(repo / "store")).search_runs(project="fraud").runs
    assert [r.name for r in stored] == ["exp-12"]  # the refused run left nothing


def test_project_table_overrides_and_warns(repo: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The lab project only warns, and requires its own tag (the general name rule stays)."""
    with caplog.at_level(logging.WARNING, logger="mltrail"):
        run = _init("lab", "Scratch")
    run.finish()
    messages = [r.getMessage() for r in caplog.records]
    assert any("tag 'owner' is required" in m for m in messages)
    assert any("name 'Scratch' does not match" in m for m in messages)
    assert not any("'team'" in m for m in messages)


def test_malformed_conventions_name_the_key(repo: Path) -> None:
    """A bad pattern or mode is refused naming the table and key."""
    (repo / ".mltrail" / "config.toml").write_text('[conventions]\nname_pattern = "(("\n')
    with pytest.raises(InvalidArgumentError, match=r"\[conventions\].name_pattern"):
        _init("fraud", "x-1")
    (repo / ".mltrail" / "config.toml").write_text('[conventions]\non_violation = "shout"\n')
    with pytest.raises(InvalidArgumentError, match="on_violation must be 'error' or 'warn'"):
        _init("fraud", "x-1")
