"""HasProjectLookup: one project's existence without counting every project's runs."""

from __future__ import annotations

from mltrail.store.base import TrackingStore
from mltrail.store.batch import Batch, RunCreate
from mltrail.store.optional import HasProjectLookup


def test_project_exists_names_only_projects_that_exist(store: TrackingStore) -> None:
    assert isinstance(store, HasProjectLookup)
    assert not store.project_exists("vision")
    store.apply_batch(Batch("r1", create=RunCreate("vision", "n", 1000, 5.0, "u", "h", "c")))
    assert store.project_exists("vision")
    assert not store.project_exists("Vision") and not store.project_exists("visio")
    assert not store.project_exists("vision%") and not store.project_exists("%")
    assert {p.name for p in store.list_projects()} == {"vision"}
