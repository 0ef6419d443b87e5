"""The PostgreSQL schema Optuna's tables live in, beside mltrail's own (sweeps).

Optuna's ``RDBStorage`` creates its own tables (``studies``, ``trials``, ...) and its own
``alembic_version``; on PostgreSQL they go into a schema of their own in the same database,
so no name can meet one of mltrail's. This is the only SQL sweeps need; the rest is Optuna's.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa

from mltrail.errors import InvalidArgumentError, StoreError
from mltrail.store.sql.engine import create_engine

__all__ = ["SWEEPS_SCHEMA", "ensure_schema", "optuna_url", "tune_sqlite"]

#: the schema Optuna's tables live in on PostgreSQL
SWEEPS_SCHEMA = "mltrail_optuna"


def optuna_url(uri: str) -> str:
    """The SQLAlchemy URL Optuna opens for a ``postgresql://`` store URI (psycopg 3)."""
    url = sa.make_url(uri)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url.render_as_string(hide_password=False)


def ensure_schema(uri: str, schema: str = SWEEPS_SCHEMA) -> None:
    """Create ``schema`` in the PostgreSQL database at ``uri`` if it is missing.

    Raises:
        StoreError: the database cannot be reached or refuses.
    """
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", schema):
        raise InvalidArgumentError(f"schema {schema!r}: lower-case letters, digits and _")
    engine = create_engine(uri)
    try:
        with engine.begin() as conn:
            # one creator at a time: two agents starting together must not race on it
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:s))"), {"s": schema})
            conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    except sa.exc.SQLAlchemyError as exc:
        raise StoreError(f"cannot create schema {schema}: {exc}") from exc
    finally:
        engine.dispose()


def tune_sqlite(engine: sa.Engine) -> None:
    """Give Optuna's SQLite file a write-ahead log with ``synchronous=NORMAL`` (every new
    connection of ``engine``; the pool is emptied so none is left without).

    Optuna commits several times per ask and tell; in the default rollback journal each
    commit is two fsyncs and readers block the writer. With WAL a commit is an append (synced
    at checkpoints), readers never block it, and a committed trial survives a crash of the
    process (only an OS crash or power loss can take the last commits back).
    """

    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    sa.event.listen(engine, "connect", _pragmas)
    engine.dispose()
