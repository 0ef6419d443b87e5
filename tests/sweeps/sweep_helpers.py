"""Helpers shared by the sweep tests (imported by name: tests/sweeps is on sys.path)."""

from __future__ import annotations


def spec(**changes: object) -> dict[str, object]:
    """A small sweep spec over train_prog.py (x in [-4, 6], depth in {1, 2, 4})."""
    base: dict[str, object] = {
        "program": "train_prog.py",
        "method": "tpe",
        "metric": {"name": "loss", "goal": "minimize"},
        "parameters": {
            "x": {"distribution": "uniform", "min": -4.0, "max": 6.0},
            "depth": {"values": [1, 2, 4]},
        },
        "run_cap": 4,
        "seed": 7,
        "heartbeat_s": 1,
        "grace_s": 3,
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def fresh_pg_database(pg_url: str) -> str:
    """A new, empty PostgreSQL database on the server of ``pg_url``; its URI."""
    import uuid

    import sqlalchemy as sa

    name = f"t_{uuid.uuid4().hex[:12]}"
    url = sa.make_url(pg_url)
    admin = sa.create_engine(url.set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    admin.dispose()
    return str(url.set(database=name).render_as_string(hide_password=False))
