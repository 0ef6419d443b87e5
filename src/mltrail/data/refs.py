"""Digests a tracking store references, so ``mltrail data gc`` keeps their objects.

The artifact versions, the files runs logged and the data pointers runs recorded
(:func:`mltrail.store.sql.keys.referenced_digests`; only SQL stores keep them). A store that
does not exist yet references nothing; the store is never created or migrated.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mltrail.data.repo import DataRepo

__all__ = ["store_digests"]


def _store_uri(store: str | None, repo: DataRepo) -> str | None:
    from mltrail.store.registry import resolve_location

    if store is None:
        from mltrail.settings import settings

        if not settings().store:
            store = str(repo.meta_dir)  # the embedded store beside the cache
    location = resolve_location(store)
    if location.scheme not in ("sqlite", "postgresql"):
        return None
    if location.scheme == "sqlite":
        db = Path(location.uri[len("sqlite:///") :])
        if not db.exists():
            return None
    return location.uri


def store_digests(store: str | None, repo: DataRepo) -> set[str]:
    """Every object digest the tracking store references (empty when there is no store).

    Raises:
        StoreError: the store exists but cannot be read.
    """
    from mltrail.store.sql.keys import referenced_digests

    uri = _store_uri(store, repo)
    return set() if uri is None else referenced_digests(uri)
