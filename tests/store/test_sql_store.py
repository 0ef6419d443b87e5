"""SQL-specific behaviour of SqlTrackingStore beyond the shared contract."""

from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa

from mltrail.errors import StoreError
from mltrail.store.batch import Batch, MetricSeries
from mltrail.store.registry import open_store
from mltrail.testing import make_batch


def test_disk_full_rolls_back_and_retry_succeeds(tmp_path):
    """SQLITE_FULL mid-batch is a StoreError, applies nothing, and a retry after space is freed
    creates the run and its new project consistently."""
    store = open_store(str(tmp_path), shared=False)
    engine = store._engine
    cap = {"on": True}

    @sa.event.listens_for(engine, "begin")
    def _limit(conn):
        if cap["on"]:
            pages = conn.exec_driver_sql("PRAGMA page_count").scalar()
            conn.exec_driver_sql(f"PRAGMA max_page_count={pages + 1}")

    n = 100_000
    steps = np.arange(n, dtype=np.int64)
    batch = make_batch("r1", project="newproj", source="r1.s", start=0, end=10)
    batch.metrics = {"m": MetricSeries(steps, steps, steps.astype(np.float64))}
    with pytest.raises(StoreError, match="full"):
        store.apply_batch(batch)
    cap["on"] = False
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA max_page_count=1073741823")
    assert store.ingest_position("r1.s") == 0
    assert store.apply_batch(batch).applied
    rec = store.get_run("r1")
    assert rec.project == "newproj" and rec.metrics["m"].count == n
    assert [p.name for p in store.list_projects()] == ["newproj"]
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    store.close()


def test_driver_errors_are_wrapped(tmp_path):
    """A driver failure surfaces as StoreError with the original chained."""
    store = open_store(str(tmp_path), shared=False)
    with store._engine.connect() as conn:
        conn.exec_driver_sql("DROP TABLE tags")
        conn.commit()
    store.apply_batch(make_batch("r1"))
    with pytest.raises(StoreError) as info:
        store.apply_batch(Batch("r1", tags={"a": "b"}))
    assert isinstance(info.value.__cause__, sa.exc.SQLAlchemyError)
    store.close()


def test_older_schema_is_upgraded_on_open(tmp_path):
    """A database at an older revision is migrated to the head when a store opens it."""
    from pathlib import Path

    from alembic import command
    from alembic.config import Config

    from mltrail.store.sql import schema
    from mltrail.store.sql.engine import create_engine

    engine = create_engine(f"sqlite:///{tmp_path}/mltrail.db")
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(schema.__file__).parent / "migrations"))
    cfg.attributes["engine"] = engine
    command.upgrade(cfg, "0001")
    assert not sa.inspect(engine).has_table("run_state")
    engine.dispose()
    store = open_store(str(tmp_path), shared=False)
    store.apply_batch(make_batch("r1", state={"code": {"sha": "x"}}))
    assert store.get_state("r1") == {"code": {"sha": "x"}}
    with store._engine.connect() as conn:
        version = conn.exec_driver_sql("SELECT version_num FROM mltrail_alembic_version").scalar()
    assert version == schema.SCHEMA_REVISION
    store.close()


def test_postgres_chunk_arrays_are_stored_uncompressed(store):
    """On PostgreSQL the chunk arrays use EXTERNAL storage (no compression of float arrays)."""
    if store.dialect != "postgresql":
        pytest.skip("PostgreSQL storage setting")
    with store._engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT attname, attstorage FROM pg_attribute"
            " WHERE attrelid = 'metric_chunks'::regclass"
            " AND attname IN ('steps', 'timestamps', 'vals')"
        ).all()
    assert sorted(rows) == [("steps", "e"), ("timestamps", "e"), ("vals", "e")]


def test_migrations_build_exactly_the_schema(tmp_path):
    """Upgrading from the first revision gives the same tables, columns and indexes as a
    fresh database made from schema.py (migrations and schema.py never drift apart)."""
    from pathlib import Path

    from alembic import command
    from alembic.config import Config

    from mltrail.store.sql import schema
    from mltrail.store.sql.engine import create_engine

    def shape(engine):
        insp = sa.inspect(engine)
        out = {}
        for table in sorted(insp.get_table_names()):
            cols = [(c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(table)]
            idx = sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                for i in insp.get_indexes(table)
            )
            pk = tuple(insp.get_pk_constraint(table)["constrained_columns"])
            out[table] = (cols, idx, pk)
        return out

    fresh = open_store(str(tmp_path / "fresh"), shared=False)
    want = shape(fresh._engine)
    fresh.close()
    engine = create_engine(f"sqlite:///{tmp_path}/old.db")
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(schema.__file__).parent / "migrations"))
    cfg.attributes["engine"] = engine
    command.upgrade(cfg, "0001")
    engine.dispose()
    migrated = open_store(f"sqlite:///{tmp_path}/old.db", shared=False)
    got = shape(migrated._engine)
    migrated.close()
    assert got == want
