"""The ObjectStore contract over a real S3-compatible server (SeaweedFS on 127.0.0.1; the
``s3_bucket`` fixture skips, saying why, when there is none)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from mltrail.objects.fsspec_store import FsspecObjectStore
from mltrail.objects.registry import open_object_store
from mltrail.testing import ObjectStoreContract


@pytest.fixture
def object_store(s3_bucket: str) -> Iterator[FsspecObjectStore]:
    store = open_object_store(f"{s3_bucket}/objects")
    assert isinstance(store, FsspecObjectStore) and store.atomic_put
    yield store
    store.close()


@pytest.fixture
def tamper(object_store: FsspecObjectStore) -> Callable[[str, bytes], None]:
    def write(digest: str, data: bytes) -> None:
        object_store.fs.pipe_file(object_store.path(digest), data)

    return write


class TestS3ObjectStore(ObjectStoreContract):
    """FsspecObjectStore on s3:// keeps every promise of the contract."""
