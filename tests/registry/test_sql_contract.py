"""The ModelRegistry contract on SQLite and PostgreSQL (the ``store_uri`` fixture)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mltrail.store.registry import open_store
from mltrail.testing.registry import ModelRegistryContract


@pytest.fixture
def store_factory(store_uri: str) -> Iterator[Callable[[], Any]]:
    """More private stores over the same database (one per racer: separate pools)."""
    opened: list[Any] = []

    def factory() -> Any:
        opened.append(open_store(store_uri, shared=False))
        return opened[-1]

    yield factory
    for s in opened:
        s.close()


class TestSqlModelRegistryContract(ModelRegistryContract):
    """SqlModelRegistry on SQLite and PostgreSQL passes the shared contract."""
