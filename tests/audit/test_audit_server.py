"""Changes made through the server are recorded as the token that made them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from mltrail.server.app import ServerConfig, create_app


def test_server_changes_carry_the_token_as_actor(tmp_path: Path) -> None:
    store_uri = str(tmp_path / "store")
    app = create_app(ServerConfig(store=store_uri, artifacts=str(tmp_path / "art"), auth=True))
    store = app.state.store
    token, plaintext = store.tokens().create("write", name="ci")
    loop = asyncio.new_event_loop()
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://127.0.0.1",
        headers={"Authorization": f"Bearer {plaintext}"},
    )
    try:
        r = loop.run_until_complete(
            client.post("/api/v1/runs", json={"project": "p", "config": {"lr": 0.1}})
        )
        assert r.status_code == 201, r.text
        run_id = r.json()["run_id"]
    finally:
        loop.run_until_complete(client.aclose())
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()
    try:
        entries = list(store.audit_entries(subject=f"run:{run_id}"))
        assert [e.actor for e in entries] == [f"token:{token.token_id}"]
        created = next(store.audit_entries(subject=f"token:{token.token_id}"))
        assert created.action == "token.create" and created.actor.startswith("local:")
    finally:
        store.close()
