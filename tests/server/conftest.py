"""Server fixtures: the app in-process over every backend, with tokens and clients."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from srvhelp import Client, Server, make_server


@pytest.fixture
def srv(store_uri: str, tmp_path: Path) -> Iterator[Server]:
    """The app with auth on, over SQLite and (when configured) PostgreSQL."""
    server = make_server(store_uri, tmp_path / "artifacts")
    yield server
    for c in server._clients:
        c.close()
    server.store.close()


@pytest.fixture
def api(srv: Server) -> Client:
    """A client with a write token."""
    return srv.client(srv.write_token)
