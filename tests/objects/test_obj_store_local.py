"""The ObjectStore contract over a local directory: LocalObjectStore and the Cache on it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mltrail.objects.cache import Cache
from mltrail.objects.local import LocalObjectStore
from mltrail.testing import ObjectStoreContract


@pytest.fixture(params=["directory", "cache"])
def object_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LocalObjectStore]:
    store = LocalObjectStore(tmp_path / "objects")
    if request.param == "cache":
        store = Cache(tmp_path / "objects")
    yield store
    store.close()


@pytest.fixture
def tamper(object_store: LocalObjectStore) -> Callable[[str, bytes], None]:
    def write(digest: str, data: bytes) -> None:
        path = object_store.path(digest)
        path.chmod(0o644)
        path.write_bytes(data)

    return write


class TestLocalObjectStore(ObjectStoreContract):
    """LocalObjectStore (and the Cache built on it) keeps every promise of the contract."""
