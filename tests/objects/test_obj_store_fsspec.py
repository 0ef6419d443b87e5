"""The ObjectStore contract over fsspec: ``memory://`` (the in-memory store: atomic puts)
and ``local://`` (a filesystem without atomic puts: temp key and move)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mltrail.objects.fsspec_store import FsspecObjectStore
from mltrail.objects.registry import open_object_store
from mltrail.testing import ObjectStoreContract


@pytest.fixture(params=["memory", "local"])
def object_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FsspecObjectStore]:
    if request.param == "memory":
        url = f"memory://contract-{uuid.uuid4().hex}"
    else:
        url = f"local://{tmp_path / 'objects'}"
    store = open_object_store(url)
    assert isinstance(store, FsspecObjectStore)
    assert store.atomic_put == (request.param == "memory")
    yield store
    store.close()
    if request.param == "memory":  # the memory filesystem is global: leave it as it was
        with contextlib.suppress(FileNotFoundError):
            store.fs.rm(store.root, recursive=True)


@pytest.fixture
def tamper(object_store: FsspecObjectStore) -> Callable[[str, bytes], None]:
    def write(digest: str, data: bytes) -> None:
        object_store.fs.pipe_file(object_store.path(digest), data)

    return write


class TestFsspecObjectStore(ObjectStoreContract):
    """FsspecObjectStore on memory:// and local:// keeps every promise of the contract."""
