"""The registry from Python on an embedded store: register from a path and from an artifact
reference, aliases under the policy of .mltrail/config.toml (every unmet rule named, an
admin override recorded), cards filled from the run, load_model_ref verified."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import mltrail
from mltrail.errors import CorruptObjectError, PolicyViolationError, VersionConflictError
from mltrail.registry.cards import SECTIONS
from mltrail.store.registry import forget_open_stores

POLICY = """
[registry.aliases.production]
require_card = ["intended_use", "training_data", "evaluation_results", "limitations"]
require_finished_run = true
require_reproduced = true
metrics = ["val/auc >= 0.9"]
"""


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A working folder with an embedded store (MLTRAIL_STORE) and no policy yet."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".git").mkdir()  # the config search stops at the git root
    monkeypatch.setenv("MLTRAIL_STORE", str(tmp_path / "store"))
    yield tmp_path
    forget_open_stores()


def _train(repo: Path, auc: float, finish: bool = True) -> mltrail.Run:
    model = repo / "model.bin"
    model.write_bytes(f"weights auc={auc}".encode())
    run = mltrail.init(
        project="proj", name="train", capture=False, console=False, system_metrics_s=0
    )
    run.log({"val/auc": auc, "loss": 0.1})
    run.log_artifact(model, name="clf", type="model")
    if finish:
        run.finish()
    return run


def test_register_from_reference_and_path(repo: Path) -> None:
    """A reference pins that artifact version; a path is stored as a model artifact first."""
    run = _train(repo, 0.95)
    v1 = mltrail.register_model("fraud", run=run.run_id, artifact="clf:v1")
    assert (v1.version, v1.artifact, v1.run_id) == (1, "clf:v1", run.run_id)
    other = repo / "other.bin"
    other.write_bytes(b"other weights")
    v2 = mltrail.register_model("fraud", run=run.run_id, artifact=other, reason="retrained")
    assert v2.version == 2 and v2.artifact == "fraud:v1" and v2.digest != v1.digest
    events = mltrail.models.history("fraud")
    assert [e.action for e in events] == ["version_created", "version_created"]
    assert events[1].reason == "retrained"


def test_load_model_ref_fetches_verified_bytes(repo: Path) -> None:
    """models:/name@alias gives the version's bytes; a corrupted object is refused."""
    run = _train(repo, 0.95)
    v = mltrail.register_model("fraud", run=run.run_id, artifact="clf:v1")
    mltrail.set_alias("fraud", "staging", v.version)
    path = mltrail.load_model_ref("models:/fraud@staging", root=repo / "out")
    assert path.read_bytes() == b"weights auc=0.95"
    assert mltrail.load_model_ref("models:/fraud/1", root=repo / "out2").read_bytes() == (
        b"weights auc=0.95"
    )
    hexpart = v.digest.split(":", 1)[1]
    obj = next(p for p in (repo / "store" / "objects").rglob(hexpart[2:]) if p.is_file())
    obj.chmod(0o644)
    obj.write_bytes(b"tampered weights")
    with pytest.raises(CorruptObjectError):
        mltrail.load_model_ref("models:/fraud@staging", root=repo / "out3")


def test_card_update_fills_from_run_and_exports(repo: Path) -> None:
    """Training data (with digests) and evaluation results come from the run."""
    run = _train(repo, 0.95)
    v = mltrail.register_model("fraud", run=run.run_id, artifact="clf:v1")
    card = mltrail.models.card("fraud", v.version)
    card.update(intended_use="triage of card fraud", limitations="EU data only")
    data = card.data
    assert data["intended_use"] == "triage of card fraud"
    results = {r["metric"]: r["value"] for r in data["evaluation_results"]}
    assert results == {"loss": 0.1, "val/auc": 0.95}
    assert data["model_details"]["digest"] == v.digest
    assert set(card.missing()) == {
        "out_of_scope_use",
        "training_data",
        "evaluation_data",
        "ethical_considerations",
    }
    md = card.export("md")
    assert "## Intended use\n\ntriage of card fraud" in md and "_not provided_" in md
    assert json.loads(card.export("json"))["sections"]["limitations"] == "EU data only"
    assert "<h2>Caveats and limitations</h2>" in card.export("html")
    assert list(json.loads(card.export("json"))["sections"]) == list(SECTIONS)
    assert [e.action for e in mltrail.models.history("fraud")][-1] == "card_updated"


def test_policy_refusal_lists_every_unmet_rule(repo: Path) -> None:
    """A protected alias refuses a version that breaks rules, naming each one."""
    (repo / ".mltrail").mkdir()
    (repo / ".mltrail" / "config.toml").write_text(POLICY)
    run = _train(repo, 0.5, finish=False)
    v = mltrail.register_model("fraud", run=run.run_id, artifact="clf:v1")
    with pytest.raises(PolicyViolationError) as err:
        mltrail.set_alias("fraud", "production", v.version)
    text = str(err.value)
    for rule in (
        "require_card: the model card lacks intended_use, training_data, "
        "evaluation_results, limitations",
        f"require_finished_run: source run {run.run_id} is running",
        "require_reproduced: no reproduction",
        "metrics: val/auc >= 0.9 is not met (source run: 0.5)",
    ):
        assert rule in text
    assert mltrail.models.get("fraud").aliases == {}
    assert mltrail.set_alias("fraud", "staging", v.version).aliases  # not protected
    run.finish()


def test_policy_passes_when_met_and_override_is_recorded(repo: Path) -> None:
    """Met rules let the move through; an override with a reason is in the history."""
    (repo / ".mltrail").mkdir()
    (repo / ".mltrail" / "config.toml").write_text(
        "[registry.aliases.production]\nrequire_card = ['intended_use', 'limitations']\n"
        "require_finished_run = true\nmetrics = ['val/auc >= 0.9']\n"
    )
    good = _train(repo, 0.95)
    v1 = mltrail.register_model("fraud", run=good.run_id, artifact="clf:v1")
    mltrail.models.card("fraud", 1).update(intended_use="u", limitations="l")
    assert mltrail.set_alias("fraud", "production", v1.version).version == 1
    bad = _train(repo, 0.2)
    v2 = mltrail.register_model("fraud", run=bad.run_id, artifact="clf:v2")
    with pytest.raises(PolicyViolationError, match="val/auc"):
        mltrail.set_alias("fraud", "production", v2.version)
    got = mltrail.set_alias(
        "fraud", "production", v2.version, expected_version=1, override_reason="incident 42"
    )
    assert got.version == 2
    event = mltrail.models.history("fraud")[-1]
    assert event.action == "alias_moved" and event.reason == "incident 42"
    assert event.after["override"]["reason"] == "incident 42"
    assert any("require_card" in u for u in event.after["override"]["unmet"])
    assert any("val/auc" in u for u in event.after["override"]["unmet"])
    with pytest.raises(VersionConflictError, match="current version: 2"):
        mltrail.set_alias("fraud", "production", 1, expected_version=1)


def test_reproduced_verdict_satisfies_the_rule(repo: Path) -> None:
    """A reproduction tagged with an identical verdict meets require_reproduced."""
    (repo / ".mltrail").mkdir()
    (repo / ".mltrail" / "config.toml").write_text(
        "[registry.aliases.production]\nrequire_reproduced = true\n"
    )
    run = _train(repo, 0.95)
    v = mltrail.register_model("fraud", run=run.run_id, artifact="clf:v1")
    with pytest.raises(PolicyViolationError, match="require_reproduced"):
        mltrail.set_alias("fraud", "production", v.version)
    for verdict in ("diverged", "identical"):
        with mltrail.init(
            project="proj", name="repro", capture=False, console=False, system_metrics_s=0
        ) as rep:
            rep.set_tags({"reproduction-of": run.run_id, "mltrail.verdict": verdict})
    assert mltrail.set_alias("fraud", "production", v.version).version == 1


def test_bad_policy_names_the_key(repo: Path) -> None:
    """A malformed policy is refused naming the file, the alias and the key."""
    (repo / ".mltrail").mkdir()
    (repo / ".mltrail" / "config.toml").write_text(
        "[registry.aliases.production]\nmetrics = ['auc is high']\n"
    )
    run = _train(repo, 0.95)
    mltrail.register_model("fraud", run=run.run_id, artifact="clf:v1")
    with pytest.raises(mltrail.InvalidArgumentError, match=r"registry.aliases.production.metrics"):
        mltrail.set_alias("fraud", "production", 1)
