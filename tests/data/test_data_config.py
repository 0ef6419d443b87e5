"""Remotes kept in .mltrail/config.toml (committed) and config.local.toml (not)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from mltrail.data.config import add_remote, load_config, remove_remote, resolve_remote
from mltrail.errors import InvalidArgumentError, NotFoundError
from mltrail.store.registry import GITIGNORE_TEXT, ignore_folder_in_git
from mltrail.testing.repos import git


def test_add_list_default_remove(tmp_path: Path) -> None:
    """Remotes round-trip through TOML; the default is used when none is named."""
    cfg_dir = tmp_path / ".mltrail"
    add_remote(cfg_dir, "a", "/data/a")
    add_remote(cfg_dir, "b", 's3://bucket/with "quotes"', default=True)
    add_remote(cfg_dir, "mine", "/tmp/mine", local=True)
    cfg = load_config(cfg_dir)
    assert sorted(cfg.remotes) == ["a", "b", "mine"]
    assert cfg.remotes["mine"].local and not cfg.remotes["a"].local
    assert resolve_remote(cfg, None).url == 's3://bucket/with "quotes"'
    assert resolve_remote(cfg, "a").url == "/data/a"
    doc = tomllib.loads((cfg_dir / "config.toml").read_text())
    assert doc["core"]["remote"] == "b"
    assert "mine" not in doc["remotes"]
    remove_remote(cfg_dir, "b")
    cfg = load_config(cfg_dir)
    assert cfg.default_remote is None
    with pytest.raises(NotFoundError, match="several remotes"):
        resolve_remote(cfg, None)
    with pytest.raises(NotFoundError, match="no remote named 'zzz'"):
        resolve_remote(cfg, "zzz")
    with pytest.raises(NotFoundError):
        remove_remote(cfg_dir, "zzz")


def test_no_remote_and_bad_input(tmp_path: Path) -> None:
    """No remote: a hint; bad names, URLs and TOML are refused naming the problem."""
    with pytest.raises(NotFoundError, match="remote add"):
        resolve_remote(load_config(tmp_path), None)
    with pytest.raises(InvalidArgumentError, match="remote name"):
        add_remote(tmp_path, "../x", "/a")
    with pytest.raises(InvalidArgumentError, match="remote url"):
        add_remote(tmp_path, "x", "a\nb")
    (tmp_path / "config.toml").write_text("[remotes\n")
    with pytest.raises(InvalidArgumentError, match="config.toml"):
        load_config(tmp_path)


def test_config_toml_is_committable_store_is_not(tmp_path: Path) -> None:
    """In .mltrail/, only config.toml shows to git; an old marker is upgraded, a user's kept."""
    from mltrail.testing.repos import init_repo

    root = init_repo(tmp_path / "r", {"a.txt": "a\n"})
    meta = root / ".mltrail"
    meta.mkdir()
    (meta / ".gitignore").write_text("# created by mltrail: runs are not source code\n*\n")
    ignore_folder_in_git(meta)
    assert (meta / ".gitignore").read_text() == GITIGNORE_TEXT
    (meta / "mltrail.db").write_text("x")
    (meta / "cache").mkdir()
    (meta / "cache" / "obj").write_text("x")
    (meta / "config.local.toml").write_text("x")
    add_remote(meta, "r", "/somewhere")
    untracked = git(root, "status", "--porcelain", "--untracked-files=all").split("\n")
    assert [line for line in untracked if line] == ["?? .mltrail/config.toml"]
    (meta / ".gitignore").write_text("custom\n")
    ignore_folder_in_git(meta)
    assert (meta / ".gitignore").read_text() == "custom\n"
