"""The ObjectStore contract over HTTP: an HttpObjectStore talking to a real ``mltrail
server`` (uvicorn on 127.0.0.1, real sockets and auth), whose own store is tampered with."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mltrail.objects.http import HttpObjectStore
from mltrail.objects.registry import open_object_store
from mltrail.testing import ObjectStoreContract
from mltrail.testing.server import ThreadedServer


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ThreadedServer]:
    with ThreadedServer(str(tmp_path / "store"), str(tmp_path / "artifacts")) as srv:
        yield srv


@pytest.fixture
def object_store(server: ThreadedServer) -> Iterator[HttpObjectStore]:
    store = open_object_store(server.url, token=server.token("write"))
    assert isinstance(store, HttpObjectStore)
    yield store
    store.close()


@pytest.fixture
def tamper(server: ThreadedServer) -> Callable[[str, bytes], None]:
    def write(digest: str, data: bytes) -> None:
        path = server.app.state.objects.path(digest)
        path.chmod(0o644)
        path.write_bytes(data)

    return write


class TestHttpObjectStore(ObjectStoreContract):
    """HttpObjectStore through a real server keeps every promise of the contract."""
