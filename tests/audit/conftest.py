"""Fixtures of the audit tests: a store opened after the audit settings are in place."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from _audit_trail import Trail, audit_env, populate


@pytest.fixture
def trail(store_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Trail]:
    """A populated store with a key, off-box checkpoints and a checkpoint every 5 entries."""
    from mltrail.store.registry import open_store

    key, offbox = audit_env(monkeypatch, tmp_path)
    store = open_store(store_uri, shared=False)
    t = populate(store, key, offbox)
    yield t
    store.close()
