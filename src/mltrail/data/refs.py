"""Digests a tracking store references, so ``mltrail data gc`` keeps their objects.

A plain read of three tables (SQLAlchemy Core, the store's own schema): the artifact
versions (``artifact_versions.digest``), the files runs logged (``run_files.digest``) and the
data pointers runs recorded (``run_state`` of kind ``data``). A store that does not exist
yet, or predates those tables, references nothing. The store is never created or migrated.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from mltrail.errors import StoreError

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
    import sqlalchemy as sa

    from mltrail.store.sql.engine import create_engine
    from mltrail.store.sql.schema import artifact_versions, run_files, run_state

    uri = _store_uri(store, repo)
    if uri is None:
        return set()
    engine = create_engine(uri)
    found: set[str] = set()
    try:
        with engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
            if "artifact_versions" in tables:
                found |= {r[0] for r in conn.execute(sa.select(artifact_versions.c.digest))}
            if "run_files" in tables:
                found |= {r[0] for r in conn.execute(sa.select(run_files.c.digest))}
            if "run_state" in tables:
                query = sa.select(run_state.c.data).where(run_state.c.kind == "data")
                for (doc,) in conn.execute(query):
                    found |= _pointer_digests(doc)
    except sa.exc.SQLAlchemyError as exc:
        raise StoreError(f"reading the digests the tracking store references: {exc}") from exc
    finally:
        engine.dispose()
    return {d for d in found if isinstance(d, str)}


def _pointer_digests(doc: str) -> set[str]:
    try:
        data = json.loads(doc)
    except ValueError:
        return set()
    pointers = data.get("pointers") if isinstance(data, dict) else None
    return {
        p["digest"]
        for p in pointers or []
        if isinstance(p, dict) and isinstance(p.get("digest"), str)
    }
