"""Shared by the MLflow compatibility tests: a real ``mltrail server`` per module and backend,
and the real ``mlflow`` client pointed at it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

PG_URL = os.environ.get("MLTRAIL_TEST_PG_URL", "")


def fresh_pg_database() -> str:
    import sqlalchemy as sa

    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(
        sa.make_url(PG_URL).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    admin.dispose()
    return str(sa.make_url(PG_URL).set(database=name).render_as_string(hide_password=False))


@dataclass
class Mlf:
    """A running server, its admin token and a client factory."""

    srv: Any
    token: str

    @property
    def url(self) -> str:
        return str(self.srv.url)

    @property
    def store(self) -> Any:
        return self.srv.app.state.store

    def client(self) -> Any:
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.url, registry_uri=self.url)


def start(backend: str, tmp: Path) -> Iterator[Mlf]:
    pytest.importorskip("mlflow")
    from mltrail.testing.server import ThreadedServer

    if backend == "postgres":
        if not PG_URL:
            pytest.skip("PostgreSQL not configured: set MLTRAIL_TEST_PG_URL")
        uri = fresh_pg_database()
    else:
        uri = str(tmp / "store")
    with ThreadedServer(uri, str(tmp / "artifacts")) as srv:
        yield Mlf(srv, srv.token("admin"))


def point_mlflow(monkeypatch: pytest.MonkeyPatch, mlf: Mlf, token: str | None = None) -> None:
    """MLFLOW_TRACKING_URI and MLFLOW_TRACKING_TOKEN, as a user would set them."""
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlf.url)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token or mlf.token)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    mlflow.set_tracking_uri(mlf.url)
    mlflow.set_registry_uri(mlf.url)
