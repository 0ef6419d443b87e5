"""`mltrail db upgrade` migrates explicitly; a server refuses an older schema (naming the
command), an SQLite store opened by the SDK still migrates itself, PostgreSQL does not, and a
database newer than this mltrail is refused everywhere."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from teamhelp import cli

from mltrail.errors import SchemaVersionError
from mltrail.store.registry import open_store, resolve_location
from mltrail.store.sql import schema
from mltrail.store.sql.engine import create_engine, known_revisions
from mltrail.testing.server import ThreadedServer


def _downgrade(uri: str) -> str:
    """Take the store at ``uri`` back one revision; return that revision."""
    from alembic import command
    from alembic.config import Config

    open_store(uri, shared=False).close()
    previous = known_revisions()[-2]
    engine = create_engine(resolve_location(uri).uri)
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(schema.__file__).parent / "migrations"))
    cfg.attributes["engine"] = engine
    command.downgrade(cfg, previous)
    engine.dispose()
    return previous


def _revision(uri: str) -> str:
    engine = create_engine(resolve_location(uri).uri)
    with engine.connect() as conn:
        got = conn.exec_driver_sql(f"SELECT version_num FROM {schema.VERSION_TABLE}").scalar()
    engine.dispose()
    return str(got)


def test_server_refuses_an_older_schema_until_db_upgrade(store_uri: str, tmp_path: Path) -> None:
    """A server on an older schema does not start (the message names `mltrail db upgrade`)
    and leaves the schema alone; after the command it starts; a second upgrade is a no-op."""
    previous = _downgrade(store_uri)
    with pytest.raises(SchemaVersionError, match="mltrail db upgrade --store") as info:
        ThreadedServer(store_uri, str(tmp_path / "art"))
    assert f"revision {previous}" in str(info.value)
    assert _revision(store_uri) == previous

    result = cli("server", "--store", store_uri, "--artifacts", str(tmp_path / "art"))
    assert result.exit_code == 1
    assert "mltrail db upgrade" in result.output and "Traceback" not in result.output
    assert _revision(store_uri) == previous

    result = cli("db", "upgrade", "--store", store_uri)
    assert result.exit_code == 0, result.output
    assert f"from revision {previous} to {schema.SCHEMA_REVISION}" in result.output
    assert _revision(store_uri) == schema.SCHEMA_REVISION
    again = cli("db", "upgrade", "--store", store_uri, "--json")
    assert json.loads(again.stdout) == {
        "store": json.loads(again.stdout)["store"],
        "before": schema.SCHEMA_REVISION,
        "after": schema.SCHEMA_REVISION,
    }
    with ThreadedServer(store_uri, str(tmp_path / "art")) as srv:
        assert srv.app.state.store.list_projects() == []


def test_sdk_open_migrates_sqlite_but_not_postgres(store_uri: str) -> None:
    """Opening a store the SDK's way upgrades an SQLite file (a laptop's own) and refuses a
    PostgreSQL database (a team's: upgraded with the command)."""
    previous = _downgrade(store_uri)
    if store_uri.startswith("postgresql"):
        with pytest.raises(SchemaVersionError, match="mltrail db upgrade"):
            open_store(store_uri, shared=False)
        assert _revision(store_uri) == previous
        open_store(store_uri, shared=False, migrate=True).close()
    else:
        open_store(store_uri, shared=False).close()
    assert _revision(store_uri) == schema.SCHEMA_REVISION


def test_newer_schema_is_refused(store_uri: str) -> None:
    """A database written by a newer mltrail is refused by open and by db upgrade alike."""
    open_store(store_uri, shared=False).close()
    engine = create_engine(resolve_location(store_uri).uri)
    with engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {schema.VERSION_TABLE} SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(SchemaVersionError, match="newer than this mltrail"):
        open_store(store_uri, shared=False, migrate=True)
    result = cli("db", "upgrade", "--store", store_uri)
    assert result.exit_code == 1 and "upgrade mltrail" in result.output


def test_db_upgrade_of_a_server_url_is_refused() -> None:
    """`db upgrade` against a server URL says where a server's database is upgraded."""
    result = cli("db", "upgrade", "--store", "http://127.0.0.1:9")
    assert result.exit_code == 1 and "where the server runs" in result.output


def test_a_database_shared_with_other_tables_gets_the_schema(store_uri: str) -> None:
    """A database holding only another program's tables (Optuna's, in a shared database) has
    nothing to migrate: even a server creates mltrail's schema there."""
    engine = create_engine(resolve_location(store_uri).uri)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE studies (study_id INTEGER PRIMARY KEY)"))
    engine.dispose()
    store = open_store(store_uri, shared=False, migrate=False)
    store.close()
    assert _revision(store_uri) == schema.SCHEMA_REVISION
