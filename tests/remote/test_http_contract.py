"""The TrackingStore contract through HTTP: HttpTrackingStore -> mltrail server -> SQL store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mltrail.store.http import HttpTrackingStore
from mltrail.testing import TrackingStoreContract
from mltrail.testing.server import ThreadedServer


@pytest.fixture
def store(store_uri: str, tmp_path: Path) -> Iterator[HttpTrackingStore]:
    with ThreadedServer(store_uri, str(tmp_path / "artifacts")) as srv:
        client = HttpTrackingStore(srv.url, token=srv.token("admin"))
        yield client
        client.close()


class TestHttpStoreContract(TrackingStoreContract):
    """The server and its HTTP client together keep every promise the SQL store keeps."""
