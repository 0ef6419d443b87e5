"""Registry policies enforced by the server (the model's ``mltrail.policy`` tag): refusals
list every unmet rule as 409, overrides need an admin token and are recorded with their
reason and the token's identity; a stale expected version is a 409 naming the current one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mltrail.errors import PermissionDeniedError, PolicyViolationError
from mltrail.registry.records import NewModelVersion
from mltrail.store.http import HttpTrackingStore
from mltrail.testing.artifacts import fake_content, fake_digest
from mltrail.testing.registry import seed_artifacts
from mltrail.testing.server import ThreadedServer

POLICY = {
    "aliases": {
        "production": {"require_card": ["intended_use"], "metrics": ["m >= 1"]},
        "locked": {"admin_only": True},
    }
}


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[tuple[ThreadedServer, dict[str, str]]]:
    with ThreadedServer(str(tmp_path / "store"), str(tmp_path / "artifacts")) as server:
        tokens = {
            scope: server.app.state.store.tokens().create(scope, name=f"{scope}-person")[1]
            for scope in ("write", "admin")
        }
        for n in (1, 2):
            r = httpx.put(
                f"{server.url}/api/v1/objects/{fake_digest(n)}",
                content=fake_content(n),
                headers={"Authorization": f"Bearer {tokens['admin']}"},
            )
            assert r.status_code in (200, 201)
        admin = HttpTrackingStore(server.url, token=tokens["admin"])
        seed_artifacts(admin, 2)
        reg = admin.model_registry()
        reg.register_version(
            NewModelVersion(project="proj", name="fraud", artifact_name="model", artifact_version=1)
        )
        reg.update_model("proj", "fraud", tags={"mltrail.policy": json.dumps(POLICY)})
        admin.close()
        yield server, tokens


def _reg(server: ThreadedServer, token: str) -> HttpTrackingStore:
    return HttpTrackingStore(server.url, token=token)


def test_refusal_lists_every_rule_and_needs_admin_to_override(
    srv: tuple[ThreadedServer, dict[str, str]],
) -> None:
    """A writer is refused with every rule; its override is 403; an admin's is recorded."""
    server, tokens = srv
    writer, admin = _reg(server, tokens["write"]), _reg(server, tokens["admin"])
    try:
        with pytest.raises(PolicyViolationError) as err:
            writer.model_registry().set_alias("proj", "fraud", "production", 1)
        assert "require_card: the model card lacks intended_use" in str(err.value)
        assert "metrics: m >= 1 is not met" in str(err.value)
        with pytest.raises(PermissionDeniedError, match="admin"):
            writer.model_registry().set_alias(
                "proj", "fraud", "production", 1, override_reason="hotfix"
            )
        got = admin.model_registry().set_alias(
            "proj", "fraud", "production", 1, override_reason="hotfix"
        )
        assert got.aliases == ("latest", "production")
        event = admin.model_registry().history("proj", "fraud")[-1]
        assert (event.actor, event.reason) == ("admin-person", "hotfix")
        assert len(event.after["override"]["unmet"]) == 2
    finally:
        writer.close()
        admin.close()


def test_admin_only_alias_and_conflict_status(srv: tuple[ThreadedServer, dict[str, str]]) -> None:
    """An admin_only alias refuses a writer (403); a stale expected version is 409."""
    server, tokens = srv
    writer = _reg(server, tokens["write"])
    try:
        with pytest.raises(PermissionDeniedError, match="only be moved with an admin"):
            writer.model_registry().set_alias("proj", "fraud", "locked", 1)
        writer.model_registry().set_alias("proj", "fraud", "staging", 1)
    finally:
        writer.close()
    r = httpx.put(
        f"{server.url}/api/v1/models/fraud/aliases/staging",
        json={"project": "proj", "version": 1, "expected_version": 0},
        headers={"Authorization": f"Bearer {tokens['write']}"},
    )
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "version_conflict"
    assert "current version: 1" in r.json()["error"]["message"]
    r = httpx.put(
        f"{server.url}/api/v1/models/fraud/aliases/staging",
        json={"project": "proj", "version": 1, "reason": "x" * 2001},
        headers={"Authorization": f"Bearer {tokens['write']}"},
    )
    assert r.status_code == 422 and "reason" in r.json()["error"]["message"]
