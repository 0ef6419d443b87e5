"""The ModelRegistry contract through a real ``mltrail server`` (HTTP, auth, the SQL store
behind it on SQLite and PostgreSQL), races included."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mltrail.store.http import HttpTrackingStore
from mltrail.testing.artifacts import fake_content, fake_digest
from mltrail.testing.registry import ModelRegistryContract
from mltrail.testing.server import ThreadedServer

TOKEN_NAME = "registry-tester"


@pytest.fixture
def server(store_uri: str, tmp_path: Path) -> Iterator[tuple[ThreadedServer, str]]:
    with ThreadedServer(store_uri, str(tmp_path / "artifacts")) as srv:
        _, token = srv.app.state.store.tokens().create("admin", name=TOKEN_NAME)
        for n in range(1, 10):
            r = httpx.put(
                f"{srv.url}/api/v1/objects/{fake_digest(n)}",
                content=fake_content(n),
                headers={"Authorization": f"Bearer {token}"},
            )
            assert r.status_code in (200, 201), r.text
        yield srv, token


@pytest.fixture
def store(server: tuple[ThreadedServer, str]) -> Iterator[HttpTrackingStore]:
    srv, token = server
    client = HttpTrackingStore(srv.url, token=token)
    yield client
    client.close()


@pytest.fixture
def store_factory(server: tuple[ThreadedServer, str]) -> Iterator[Callable[[], Any]]:
    """One more HTTP client per racer (own connection pool)."""
    srv, token = server
    opened: list[HttpTrackingStore] = []

    def factory() -> HttpTrackingStore:
        opened.append(HttpTrackingStore(srv.url, token=token))
        return opened[-1]

    yield factory
    for s in opened:
        s.close()


class TestHttpModelRegistryContract(ModelRegistryContract):
    """HttpModelRegistry → /api/v1/models → the SQL registry keeps every promise."""

    authenticated_actor = TOKEN_NAME
