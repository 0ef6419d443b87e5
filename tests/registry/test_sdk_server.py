"""The registry SDK through an ``mltrail server``: register from a live run's file (bytes
pushed to the server), alias, card, and load_model_ref pulling the bytes back verified."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import mltrail
from mltrail.store.registry import forget_open_stores
from mltrail.testing.server import ThreadedServer


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ThreadedServer]:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".git").mkdir()
    with ThreadedServer(str(tmp_path / "srv-store"), str(tmp_path / "srv-art")) as srv:
        _, token = srv.app.state.store.tokens().create("admin", name="ci-bot")
        monkeypatch.setenv("MLTRAIL_TOKEN", token)
        monkeypatch.setenv("MLTRAIL_STORE", srv.url)
        yield srv
        forget_open_stores()


def test_register_alias_card_and_load_through_a_server(
    server: ThreadedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every step goes over HTTP; the loaded bytes are the ones the run logged."""
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"remote weights")
    with mltrail.init(project="proj", capture=False, console=False, system_metrics_s=0) as run:
        run.log({"val/auc": 0.91})
        v = mltrail.register_model("fraud", run=run, artifact=weights)
    assert (v.version, v.run_id) == (1, run.run_id)
    mltrail.set_alias("fraud", "production", 1, reason="first")
    mltrail.models.card("fraud", 1).update(intended_use="remote use")
    forget_open_stores()
    monkeypatch.setenv("MLTRAIL_CACHE_DIR", str(tmp_path / "fresh-cache"))
    # a fresh cache: the bytes come from the server, verified
    path = mltrail.load_model_ref("models:/proj/fraud@production", root=tmp_path / "got")
    assert path.read_bytes() == b"remote weights"
    assert any(p.is_file() for p in (tmp_path / "fresh-cache").rglob("*"))
    history = mltrail.models.history("fraud")
    assert [e.action for e in history] == ["version_created", "alias_set", "card_updated"]
    assert {e.actor for e in history} == {"ci-bot"}
    stored = server.app.state.store.model_registry().get_version("proj", "fraud", 1)
    assert stored.card["evaluation_results"][0]["metric"] == "val/auc"
