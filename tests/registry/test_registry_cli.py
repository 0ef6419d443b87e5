"""``mltrail models``: list, show, versions, history, register, alias, card (--json and
tables), and errors as one line without a traceback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

import mltrail
from mltrail.cli.main import app
from mltrail.store.registry import forget_open_stores

runner = CliRunner()


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A folder with a finished run that logged the model artifact ``clf:v1``; its run id."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".git").mkdir()
    monkeypatch.setenv("MLTRAIL_STORE", str(tmp_path / "store"))
    (tmp_path / "model.bin").write_bytes(b"weights")
    with mltrail.init(
        project="proj", name="train", capture=False, console=False, system_metrics_s=0
    ) as run:
        run.log({"val/auc": 0.97})
        run.log_artifact(tmp_path / "model.bin", name="clf", type="model")
    forget_open_stores()
    yield run.run_id
    forget_open_stores()


def _ok(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def _json(*args: str) -> object:
    return json.loads(_ok(*args, "--json"))


def test_register_alias_history_json(repo: str) -> None:
    """register, alias and history round-trip through --json."""
    got = _json("models", "register", "fraud", "--artifact", "clf:v1", "--run", repo[:8])
    assert got["version"] == 1 and got["run_id"] == repo
    _ok("models", "register", "fraud", "--artifact", "model.bin", "--reason", "from a path")
    moved = _json("models", "alias", "fraud", "production", "2", "--reason", "ship")
    assert moved["version"] == 2 and "production" in moved["aliases"]
    assert _json("models", "alias", "fraud", "production", "--remove") == {"removed": True}
    events = _json("models", "history", "fraud")
    assert [e["action"] for e in events] == [
        "version_created",
        "version_created",
        "alias_set",
        "alias_removed",
    ]
    assert events[2]["reason"] == "ship" and events[1]["reason"] == "from a path"
    listed = _json("models", "list")
    assert [(m["name"], m["version_count"]) for m in listed] == [("fraud", 2)]
    shown = _json("models", "show", "fraud")
    assert [v["version"] for v in shown["versions"]] == [1, 2]
    assert [v["artifact"] for v in _json("models", "versions", "fraud")] == ["clf:v1", "fraud:v1"]


def test_tables(repo: str) -> None:
    """The human output names the model, versions, aliases and history actions."""
    _ok("models", "register", "fraud", "--artifact", "clf:v1")
    _ok("models", "alias", "fraud", "staging", "1")
    assert "fraud" in _ok("models", "list") and "staging=v1" in _ok("models", "list")
    assert "clf:v1" in _ok("models", "show", "fraud")
    assert "alias_set" in _ok("models", "history", "fraud")
    assert "staging" in _ok("models", "versions", "fraud")


def test_card_set_from_and_export(repo: str, tmp_path: Path) -> None:
    """--set and --from update the card (one revision each); --export prints md/html/json."""
    _ok("models", "register", "fraud", "--artifact", "clf:v1")
    _ok("models", "card", "fraud", "1", "--set", "intended_use=triage")
    (tmp_path / "card.md").write_text("## Caveats and limitations\n\nEU only\n")
    _ok("models", "card", "fraud", "1", "--from", str(tmp_path / "card.md"))
    doc = json.loads(_ok("models", "card", "fraud", "1", "--export", "json"))
    assert doc["sections"]["intended_use"] == "triage"
    assert doc["sections"]["limitations"] == "EU only"
    assert doc["card_revision"] == 2
    assert doc["sections"]["evaluation_results"][0]["metric"] == "val/auc"
    assert "## Intended use" in _ok("models", "card", "fraud", "1", "--export", "md")
    assert "<h2>Intended use</h2>" in _ok("models", "card", "fraud", "1", "--export", "html")


def test_errors_are_one_line(repo: str) -> None:
    """Bad input, unknown names, refused moves and conflicts: one error line, exit 1."""
    (Path(".mltrail")).mkdir()
    Path(".mltrail/config.toml").write_text(
        "[registry.aliases.production]\nrequire_card = ['intended_use']\n"
    )
    _ok("models", "register", "fraud", "--artifact", "clf:v1")
    for args, message in (
        (["models", "show", "nope"], "no model named 'nope'"),
        (["models", "register", "bad name", "--artifact", "clf:v1"], "model name"),
        (["models", "alias", "fraud", "production", "1"], "require_card"),
        (["models", "alias", "fraud", "staging", "1", "--expect", "3"], "current version: none"),
        (["models", "card", "fraud", "1", "--set", "colour=red"], "unknown section"),
        (["models", "card", "fraud", "1", "--export", "pdf"], "md, html or json"),
        (["models", "alias", "fraud", "staging"], "give VERSION"),
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 1, (args, result.output)
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.output and "Traceback" not in result.stderr
    moved = _json("models", "alias", "fraud", "production", "1", "--override", "incident 7")
    assert moved["version"] == 1
    event = _json("models", "history", "fraud")[-1]
    assert event["after"]["override"]["reason"] == "incident 7"


def test_artifacts_get_takes_a_model_reference(repo: str, tmp_path: Path) -> None:
    """``mltrail artifacts get models:/fraud@prod`` checks the version's bytes out, verified."""
    _ok("models", "register", "fraud", "--artifact", "clf:v1")
    _ok("models", "alias", "fraud", "prod", "1")
    got = _json("artifacts", "get", "models:/fraud@prod", "--to", str(tmp_path / "out"))
    assert Path(str(got["path"])).read_bytes() == b"weights"
    result = runner.invoke(app, ["artifacts", "get", "models:/fraud@nope", "--to", "x"])
    assert result.exit_code == 1 and "no alias 'nope'" in result.stderr
