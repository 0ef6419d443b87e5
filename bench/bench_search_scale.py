"""Benchmark search at scale: 10^6 runs in one project of the embedded (SQLite) store.

The store is opened through ``open_store`` (so it has the migrated schema, pragmas and
indexes of a real store), then filled with bulk multi-row inserts of rows shaped exactly as
``apply_batch`` writes them (``runs``, ``params``, ``tags``, ``metric_summaries``): 8
params, 4 metric summaries and 3 tags a run. The secondary indexes are dropped during the
load and re-created from their own SQL afterwards. No ``ANALYZE`` is run (a real store has
none). The built store is cached under ``$TMPDIR/mltrail-bench-search-scale/`` keyed by size
and schema revision, so a rerun only times.

Timed, for each common query shape (newest first, a filter on a param / a metric's last value
/ a tag / the status, order by a metric, page 2): ``store.search_runs`` top 100, warm (median
of 5 after a warm-up on the same store object) and cold (first call on a fresh store object;
the OS page cache stays warm). Then the server: ``GET /api/v1/runs`` (first 100) and the UI
runs page ``GET /p/PROJECT`` (the table's first rows rendered in the HTML), first and warm.
Reports bytes per run (database file + WAL / runs) and the load average. Prints JSON::

    .venv/bin/python bench/bench_search_scale.py [--runs 1000000] [--quick] [--rebuild]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

T0 = 1_700_000_000_000
PROJECT = "scale"
LRS = [0.1, 0.03, 0.01, 0.003, 0.001, 0.0003, 0.0001]
OPTS = ["adam", "sgd", "adamw", "rmsprop"]
MODELS = ["resnet", "vit", "mlp"]
METRICS = ["acc", "loss", "val_acc", "val_loss"]
STATUSES = ["finished"] * 6 + ["failed", "killed"]
TABLES = ("runs", "params", "tags", "metric_summaries")
SHAPES: dict[str, tuple[str | None, str | None]] = {
    "newest": (None, None),
    "param_eq": ("params.optimizer = 'adam'", None),
    "param_num_range": ("params.lr <= 0.001", None),
    "metric_last_gt": ("metrics.acc > 0.9", None),
    "tag_eq": ("tags.stage = 'prod'", None),
    "tag_rare": ("tags.git = 'a1b2'", None),
    "status": ("status = 'failed'", None),
    "order_metric": (None, "metrics.acc desc"),
    "order_metric_asc": (None, "metrics.loss"),
    "filter_and_order": ("params.optimizer = 'adam' and tags.stage = 'prod'", "metrics.acc desc"),
    "param_and_metric_order_param": ("metrics.val_acc > 0.5", "params.lr desc"),
}


def _param(run_id: str, key: str, value: Any) -> tuple[Any, ...]:
    """A params row as ``apply_batch`` writes it (see ``store.sql.params.encode_param``)."""
    from mltrail.store.sql.params import encode_param

    text, vtype, num = encode_param(value)
    return (run_id, key, text, vtype, num)


def _rows(i: int, rnd: random.Random, pid: str) -> tuple[tuple, list, list, list]:
    run_id = f"{rnd.getrandbits(128):032x}"
    created = T0 + i * 1000
    status = STATUSES[i % len(STATUSES)] if i % 1000 else "running"
    end = None if status == "running" else created + 600_000
    run = (run_id, pid, f"run-{i}", status, created, end, end or created, 5.0, "bench",
           f"gpu{i % 16}", "python train.py", "{}")  # fmt: skip
    values = {
        "lr": rnd.choice(LRS), "batch_size": rnd.choice([16, 32, 64, 128]),
        "optimizer": rnd.choice(OPTS), "epochs": rnd.randint(1, 100),
        "dropout": round(rnd.random(), 2), "model": rnd.choice(MODELS),
        "seed": i, "amp": rnd.random() < 0.5,
    }  # fmt: skip
    params = [_param(run_id, k, v) for k, v in values.items()]
    summaries = []
    for key in METRICS:
        last = rnd.random()
        summaries.append((run_id, key, last, 99, created + 600_000, last / 2, last, 100, 0, 100))
    tags = [(run_id, "stage", rnd.choice(["dev", "prod"])), (run_id, "git", f"{i % 65536:x}"),
            (run_id, "team", rnd.choice(["a", "b", "c"]))]  # fmt: skip
    return run, params, summaries, tags


def build(folder: Path, n_runs: int, seed: int = 0) -> dict[str, Any]:
    """Create the store in ``folder`` and bulk-load ``n_runs`` runs into one project."""
    import sqlalchemy as sa

    from mltrail.store.registry import open_store
    from mltrail.store.sql import schema

    store: Any = open_store(str(folder), shared=False)
    engine = store._engine
    rnd = random.Random(seed)
    t0 = time.perf_counter()
    pid = "b" * 16
    cols = {name: [c.name for c in schema.metadata.tables[name].columns] for name in TABLES}
    sql = {
        name: f"INSERT INTO {name} ({', '.join(c)}) VALUES ({', '.join('?' * len(c))})"
        for name, c in cols.items()
    }
    with engine.begin() as conn:
        got = conn.exec_driver_sql(
            "SELECT name, sql FROM sqlite_master WHERE type='index' AND sql IS NOT NULL "
            f"AND tbl_name IN ({', '.join(repr(t) for t in TABLES)})"
        ).all()
        indexes = [(str(name), str(text)) for name, text in got]
        for name, _ in indexes:
            conn.exec_driver_sql(f"DROP INDEX {name}")
        conn.execute(sa.insert(schema.projects), [{"project_id": pid, "name": PROJECT,
                                                   "created_ms": T0}])  # fmt: skip
    batch = 20_000
    for start in range(0, n_runs, batch):
        out: dict[str, list] = {name: [] for name in TABLES}
        for i in range(start, min(n_runs, start + batch)):
            run, params, summaries, tags = _rows(i, rnd, pid)
            out["runs"].append(run)
            out["params"] += params
            out["metric_summaries"] += summaries
            out["tags"] += tags
        with engine.begin() as conn:
            for name in TABLES:
                conn.exec_driver_sql(sql[name], out[name])
    load_s = time.perf_counter() - t0
    with engine.begin() as conn:  # sort in memory: a 16 MB cache spilled ~80 GB to temp files
        conn.exec_driver_sql("PRAGMA cache_size=-1000000")
        for _, text in indexes:
            conn.exec_driver_sql(text)
    index_s = time.perf_counter() - t0 - load_s
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    return {"load_s": round(load_s, 1), "index_s": round(index_s, 1)}


def _cached_store(n_runs: int, rebuild: bool) -> tuple[Path, dict[str, Any]]:
    from mltrail.store.sql.schema import SCHEMA_REVISION

    root = Path(tempfile.gettempdir()) / "mltrail-bench-search-scale"
    folder = root / f"runs{n_runs}-rev{SCHEMA_REVISION}"
    done = folder / "built.json"
    if done.exists() and not rebuild:
        return folder, {**json.loads(done.read_text()), "cached": True}
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    info = build(folder, n_runs)
    done.write_text(json.dumps(info))
    return folder, {**info, "cached": False}


def _ms(fn: Any) -> tuple[float, Any]:
    t = time.perf_counter()
    out = fn()
    return (time.perf_counter() - t) * 1000, out


def _time_shapes(folder: Path, shapes: dict[str, tuple[str | None, str | None]]) -> dict:
    from mltrail.store.registry import open_store

    result: dict[str, Any] = {}
    for name, (flt, order) in shapes.items():
        cold_store: Any = open_store(str(folder), shared=False)
        cold, page = _ms(lambda: cold_store.search_runs(PROJECT, flt, order, 100))  # noqa: B023
        times = [_ms(lambda: cold_store.search_runs(PROJECT, flt, order, 100))[0]  # noqa: B023
                 for _ in range(5)]  # fmt: skip
        warm = round(statistics.median(times), 2)
        result[name] = {"filter": flt, "order_by": order, "warm_ms": warm,
                        "cold_ms": round(cold, 2), "rows": len(page.runs)}  # fmt: skip
        cold_store.close()
    store: Any = open_store(str(folder), shared=False)
    first = store.search_runs(PROJECT, None, None, 100)
    times = [_ms(lambda: store.search_runs(PROJECT, None, None, 100, first.next_token))[0]
             for _ in range(5)]  # fmt: skip
    result["newest_page_2"] = {"warm_ms": round(statistics.median(times), 2)}
    store.close()
    return result


def _time_server(folder: Path) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from mltrail.server.app import ServerConfig, create_app

    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as arts:
        app = create_app(ServerConfig(str(folder), arts, auth=False))
        with TestClient(app, base_url="http://127.0.0.1") as client:
            urls = {"ui_runs_page": f"/p/{PROJECT}",
                    "api_runs_first_100": f"/api/v1/runs?project={PROJECT}"}  # fmt: skip
            for name, url in urls.items():
                first, resp = _ms(lambda: client.get(url))  # noqa: B023
                assert resp.status_code == 200, (url, resp.status_code, resp.text[:300])
                times = [_ms(lambda: client.get(url))[0] for _ in range(5)]  # noqa: B023
                out[name] = {"first_ms": round(first, 1),
                             "warm_ms": round(statistics.median(times), 1),
                             "bytes": len(resp.content)}  # fmt: skip
            if "run-" not in client.get(f"/p/{PROJECT}").text:
                raise AssertionError("the runs page shows no run rows")
    return out


def main() -> None:
    """Build (or reuse) the store, time the searches and the server, print one JSON object."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=1_000_000)
    ap.add_argument("--quick", action="store_true", help="10^4 runs (CI smoke)")
    ap.add_argument("--rebuild", action="store_true", help="ignore the cached store")
    ap.add_argument("--no-server", action="store_true", help="skip the server timings")
    args = ap.parse_args()
    n_runs = 10_000 if args.quick else args.runs
    folder, built = _cached_store(n_runs, args.rebuild)
    size = sum(p.stat().st_size for p in folder.glob("mltrail.db*"))
    result: dict[str, Any] = {"runs": n_runs, "build": built, "store_bytes": size,
                              "bytes_per_run": round(size / n_runs),
                              "loadavg_before": os.getloadavg()}  # fmt: skip
    result["search_top100"] = _time_shapes(folder, SHAPES)
    if not args.no_server:
        result["server"] = _time_server(folder)
    warm = [v["warm_ms"] for v in result["search_top100"].values()]
    result["search_warm_ms_max"] = max(warm)
    result["loadavg_after"] = os.getloadavg()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
