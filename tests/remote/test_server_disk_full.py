"""C1 in server mode: the server's SQLite disk is full (SQLITE_FULL via max_page_count).

The server answers 503 with a JSON error (never a 500 with a traceback), the SDK keeps
training and keeps the data in its spool, and when space returns the backlog drains by itself:
every point arrives exactly once and the database checks out.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import httpx
import numpy as np
import pytest
import sqlalchemy as sa

import mltrail
from mltrail.store.batch import MetricSeries
from mltrail.store.wire import CONTENT_TYPE, encode_batch
from mltrail.testing import make_batch
from mltrail.testing.server import ThreadedServer


def _cap(engine: sa.Engine) -> dict[str, bool]:
    """While ``cap["on"]``, every transaction may grow the database by one page at most."""
    cap = {"on": True}

    @sa.event.listens_for(engine, "begin")
    def _limit(conn: sa.Connection) -> None:
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar()
        limit = pages + 1 if cap["on"] else 1073741823
        conn.exec_driver_sql(f"PRAGMA max_page_count={limit}")

    return cap


def test_full_disk_is_503_json_and_nothing_half_applied(tmp_path: Path) -> None:
    with ThreadedServer(str(tmp_path / "store"), str(tmp_path / "a")) as srv:
        token = srv.token("write")
        cap = _cap(srv.app.state.store._engine)
        steps = np.arange(50_000, dtype=np.int64)
        batch = make_batch("r1", source="r1.s", start=0, end=10)
        batch.metrics = {"m": MetricSeries(steps, steps, steps.astype(np.float64))}
        headers = {"Authorization": f"Bearer {token}", "Content-Type": CONTENT_TYPE}
        with httpx.Client(base_url=srv.url, headers=headers) as c:
            r = c.post("/api/v1/ingest", content=encode_batch(batch))
            assert r.status_code in (503, 507), r.text
            body = r.json()["error"]
            assert "full" in body["message"] and "Traceback" not in r.text
            assert c.get("/api/v1/ingest/position", params={"source": "r1.s"}).json() == {
                "position": 0
            }
            cap["on"] = False
            r = c.post("/api/v1/ingest", content=encode_batch(batch))
            assert r.status_code == 200 and r.json()["applied"] is True
            assert c.get("/api/v1/runs/r1").json()["metrics"]["m"]["count"] == 50_000


def test_sdk_rides_out_a_full_server_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("MLTRAIL_CACHE_DIR", str(tmp_path / "cache"))
    caplog.set_level(logging.WARNING, logger="mltrail")
    db = tmp_path / "store" / "mltrail.db"
    with ThreadedServer(str(tmp_path / "store"), str(tmp_path / "a")) as srv:
        monkeypatch.setenv("MLTRAIL_TOKEN", srv.token("write"))
        cap = _cap(srv.app.state.store._engine)
        run = mltrail.init(project="full", store=srv.url, capture=False)
        for step in range(20_000):
            run.log({"x": float(step), "y": -float(step)}, step=step)
        assert not run.flush(timeout=1.0)  # the server cannot take it yet; training went on
        cap["on"] = False  # space is freed
        assert run.flush(timeout=30)
        run.finish()
        api = mltrail.Api(srv.url)
        assert api.history(run.run_id, "x").steps.tolist() == list(range(20_000))
        assert api.run(run.run_id).status.value == "finished"
    warnings = [r for r in caplog.records if "unavailable" in r.getMessage()]
    assert len(warnings) == 1 and "full" in warnings[0].getMessage()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
