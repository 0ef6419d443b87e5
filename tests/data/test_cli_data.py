"""The `mltrail data` commands through the CLI: text and --json output, errors."""

from __future__ import annotations

from pathlib import Path

from clihelp_data import run_cli, run_error, run_json
from datahelp import commit_all, write_files


def test_add_status_checkout_cli(repo: Path) -> None:
    """add prints the git hint; status --json; checkout restores; errors are one line."""
    write_files(repo, {"d/a.txt": "a", "d/b.txt": "b"})
    text = run_cli("data", "add", "d")
    assert "added: d (2 files, 2 B) -> d.mltrail" in text
    assert "git add .gitignore d.mltrail" in text
    again = run_json("data", "add", "d")
    assert again[0]["changed"] is False and again[0]["kind"] == "tree"
    commit_all(repo)
    report = run_json("data", "status")
    assert report["clean"] is True
    assert [(e["path"], e["state"]) for e in report["entries"]] == [("d", "unchanged")]
    (repo / "d/a.txt").unlink()
    report = run_json("data", "status")
    assert report["entries"][0]["changes"]["removed"] == ["a.txt"]
    text = run_cli("data", "status")
    assert "modified" in text and "- a.txt" in text
    out = run_json("data", "checkout", "d")
    assert out == {"updated": ["d"], "unchanged": []}
    assert (repo / "d/a.txt").read_text() == "a"
    assert "already matches" in run_cli("data", "checkout")
    err = run_error("data", "add", "missing-path")
    assert err.startswith("error: missing-path: no such file or directory")
    assert "Traceback" not in err


def test_remote_commands(repo: Path, tmp_path: Path) -> None:
    """remote add/list/remove with --default; the config is committable."""
    run_cli("data", "remote", "add", "store", str(tmp_path / "remote"), "--default")
    run_cli("data", "remote", "add", "mine", "/tmp/x", "--local")
    rows = run_json("data", "remote", "list")
    assert rows == [
        {"name": "mine", "url": "/tmp/x", "default": False, "local": True},
        {"name": "store", "url": str(tmp_path / "remote"), "default": True, "local": False},
    ]
    assert "store" in run_cli("data", "remote", "list")
    run_cli("data", "remote", "remove", "mine")
    assert "no remote named 'mine'" in run_error("data", "remote", "remove", "mine")
    assert "remote name" in run_error("data", "remote", "add", "bad name", "/x")
    assert (repo / ".mltrail/config.toml").is_file()


def test_outside_git_is_a_clear_error(tmp_path: Path, monkeypatch: object) -> None:
    """Running a data command outside a git work tree: one line naming the problem."""
    import pytest

    mp: pytest.MonkeyPatch = monkeypatch  # type: ignore[assignment]
    mp.chdir(tmp_path)
    assert "not inside a git work tree" in run_error("data", "status")
