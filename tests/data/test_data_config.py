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


def test_awkward_remotes_round_trip(tmp_path: Path) -> None:
    """Names with dots, URLs with quotes, backslashes, unicode and '=' are written as valid
    TOML and read back exactly."""
    urls = {
        "team.s3": 's3://bucket/with "quotes" and \\backslash\\',
        "données": "/mnt/données/ünïcode ☃",  # refused as a name below; kept as a URL
        "x-1_y": "gs://b/p?a=1&b=[2]#frag",
    }
    cfg_dir = tmp_path / ".mltrail"
    add_remote(cfg_dir, "team.s3", urls["team.s3"], default=True)
    add_remote(cfg_dir, "u", urls["données"])
    add_remote(cfg_dir, "x-1_y", urls["x-1_y"], local=True)
    doc = tomllib.loads((cfg_dir / "config.toml").read_text(encoding="utf-8"))
    assert doc["remotes"]["team.s3"]["url"] == urls["team.s3"]  # one key, not a nested table
    assert doc["core"]["remote"] == "team.s3"
    cfg = load_config(cfg_dir)
    assert {n: r.url for n, r in cfg.remotes.items()} == {
        "team.s3": urls["team.s3"],
        "u": urls["données"],
        "x-1_y": urls["x-1_y"],
    }
    with pytest.raises(InvalidArgumentError, match="remote name"):
        add_remote(cfg_dir, "données", "/a")


def test_other_tables_survive_a_rewrite(tmp_path: Path) -> None:
    """Tables this version does not know (awkward keys, nested tables, arrays, dates) are
    kept exactly when mltrail rewrites the file."""
    cfg_dir = tmp_path / ".mltrail"
    cfg_dir.mkdir()
    text = (
        "top = 1\n"
        "[gc]\ngrace_minutes = 30\n"
        '[plugins."a.b"]\n"key with spaces" = "v"\n"quote\\"d" = [1, 2.5, "three"]\n'
        '"ünï" = true\nwhen = 2024-05-01T12:00:00Z\n'
        "[plugins.\"a.b\".deeper]\nx = { y = 1, z = ['p', 'q'] }\n"
        "[[hooks]]\nname = 'first'\n[[hooks]]\nname = 'second'\n"
    )
    (cfg_dir / "config.toml").write_text(text, encoding="utf-8")
    before = tomllib.loads(text)
    add_remote(cfg_dir, "r", "/data")
    written = tomllib.loads((cfg_dir / "config.toml").read_text(encoding="utf-8"))
    assert written == {**before, "remotes": {"r": {"url": "/data"}}}
    remove_remote(cfg_dir, "r")
    assert tomllib.loads((cfg_dir / "config.toml").read_text(encoding="utf-8")) == before
    assert load_config(cfg_dir).gc_grace_minutes == 30.0


def test_none_values_are_left_out_not_written_as_null() -> None:
    """TOML has no null: a None value is dropped, and what is written parses."""
    from mltrail.data.config import _dump

    text = _dump(
        {
            "core": {"remote": None},
            "remotes": {"a": {"url": "/a", "note": None}},
            "extra": {"k": None, "list": [1, None, 2], "sub": {"v": None, "w": "é"}},
        }
    )
    assert "null" not in text and "None" not in text
    assert tomllib.loads(text) == {
        "remotes": {"a": {"url": "/a"}},
        "extra": {"list": [1, 2], "sub": {"w": "é"}},
    }
