"""Benchmark run search on SQLite: 100,000 runs, 10 params, 5 metric summaries and 3 tags each.

Builds the database with ``schema.metadata.create_all`` and executemany inserts in a temp
dir, then times ``search_run_ids`` (median of 20 runs after a warm-up) and prints JSON::

    .venv/bin/python bench/bench_search.py [--runs 100000] [--repeat 20] [--analyze]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, insert, text

from mltrail.store.sql.schema import metadata, metric_summaries, params, projects, runs, tags
from mltrail.store.sql.search import search_run_ids

NOW_MS = 1_700_000_000_000
LRS = [0.1, 0.03, 0.01, 0.003, 0.001, 0.0003, 0.0001, 0.00003, 0.00001, 0.000003]
OPTIMIZERS = ["adam", "sgd", "adamw", "rmsprop"]
METRICS = ["acc", "loss", "val_acc", "val_loss", "f1"]


def _param(run_id: str, key: str, value: Any) -> dict[str, Any]:
    """A params row as the store writes it: text (JSON for non-str), type code, number."""
    row = {"run_id": run_id, "key": key, "value": value, "vtype": "s", "value_num": None}
    if not isinstance(value, str):
        row["value"] = json.dumps(value)
        row["vtype"] = "b" if isinstance(value, bool) else "i" if isinstance(value, int) else "f"
        row["value_num"] = None if isinstance(value, bool) else float(value)
    return row


def build(path: Path, n_runs: int, seed: int = 0) -> tuple[Any, str]:
    """Create and fill the database; returns the engine and the project id."""
    rnd = random.Random(seed)
    engine = create_engine(f"sqlite:///{path}")

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    metadata.create_all(engine)
    project_id = "p" * 32
    with engine.begin() as conn:
        project = {"project_id": project_id, "name": "bench", "created_ms": 0}
        conn.execute(insert(projects), [project])
        batch = 5000
        for start in range(0, n_runs, batch):
            run_rows, param_rows, summary_rows, tag_rows = [], [], [], []
            for i in range(start, min(n_runs, start + batch)):
                run_id = f"{rnd.getrandbits(128):032x}"
                status = rnd.choice(["finished", "finished", "failed", "running"])
                created = NOW_MS - (n_runs - i) * 60_000
                run_rows.append({
                    "run_id": run_id, "project_id": project_id, "name": f"run-{i}",
                    "status": status, "created_ms": created,
                    "end_ms": None if status == "running" else created + 30_000,
                    "heartbeat_ms": created + 30_000, "heartbeat_s": 5.0,
                    "user_name": rnd.choice(["ana", "bo", "cy"]), "host": f"gpu{i % 8}",
                    "command": "python train.py", "config": "{}",
                })  # fmt: skip
                values = {
                    "lr": rnd.choice(LRS), "batch_size": rnd.choice([16, 32, 64, 128]),
                    "optimizer": rnd.choice(OPTIMIZERS), "epochs": rnd.randint(1, 100),
                    "dropout": round(rnd.random(), 2), "layers": rnd.randint(1, 12),
                    "seed": rnd.randint(0, 10**6), "model": rnd.choice(["resnet", "vit", "mlp"]),
                    "amp": rnd.random() < 0.5, "wd": rnd.choice([0.0, 1e-4, 1e-2]),
                }  # fmt: skip
                param_rows += [_param(run_id, k, v) for k, v in values.items()]
                for key in METRICS:
                    last = rnd.random()
                    summary_rows.append({
                        "run_id": run_id, "key": key, "last_value": last, "last_step": 99,
                        "last_ms": created + 30_000, "min_value": last / 2, "max_value": last,
                        "count": 1, "open_seq": 0, "open_n": 1,
                    })  # fmt: skip
                for key, value in (("stage", rnd.choice(["dev", "prod"])), ("git", f"{i:x}"),
                                   ("team", rnd.choice(["a", "b", "c"]))):  # fmt: skip
                    tag_rows.append({"run_id": run_id, "key": key, "value": value})
            conn.execute(insert(runs), run_rows)
            conn.execute(insert(params), param_rows)
            conn.execute(insert(metric_summaries), summary_rows)
            conn.execute(insert(tags), tag_rows)
    return engine, project_id


def _time(engine: Any, repeat: int, **kwargs: Any) -> dict[str, Any]:
    with engine.connect() as conn:
        ids, token = search_run_ids(conn, now_ms=NOW_MS, **kwargs)  # warm-up
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            ids, token = search_run_ids(conn, now_ms=NOW_MS, **kwargs)
            times.append((time.perf_counter() - t0) * 1000)
    return {"p50_ms": round(statistics.median(times), 3), "max_ms": round(max(times), 3),
            "rows": len(ids), "has_next": token is not None}  # fmt: skip


def _pages(engine: Any, project_id: str, limit: int, n_pages: int) -> list[float]:
    times, token = [], None
    with engine.connect() as conn:
        for _ in range(n_pages):
            t0 = time.perf_counter()
            _, token = search_run_ids(conn, project_id=project_id, filter=None, order_by=None,
                                      limit=limit, page_token=token, now_ms=NOW_MS)  # fmt: skip
            times.append((time.perf_counter() - t0) * 1000)
    return times


def main() -> None:
    """Build the database, run the timings and print one JSON object."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--analyze", action="store_true", help="run ANALYZE after loading")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        engine, project_id = build(Path(tmp) / "bench.db", args.runs)
        build_s = time.perf_counter() - t0
        if args.analyze:
            with engine.begin() as conn:
                conn.execute(text("ANALYZE"))
        query = {"filter": "params.lr = 0.01 and metrics.acc > 0.5", "order_by": "metrics.acc desc",
                 "limit": 100, "page_token": None}  # fmt: skip
        result: dict[str, Any] = {"runs": args.runs, "build_s": round(build_s, 1)}
        main_query = _time(engine, args.repeat, project_id=project_id, **query)
        result["search_ms_p50"] = main_query["p50_ms"]
        result["search"] = main_query
        result["search_all_projects"] = _time(engine, args.repeat, project_id=None, **query)
        others = {
            "list_newest_100": (None, None),
            "filter_only_newest_100": ("params.lr = 0.01 and metrics.acc > 0.5", None),
            "order_by_param_100": ("params.optimizer = 'adam'", "params.lr desc"),
            "metric_range_asc_100": ("metrics.loss < 0.1", "metrics.loss"),
            "rare_tag_by_metric": ("tags.git = 'ff'", "metrics.acc desc"),
            "rare_tag_newest": ("tags.git = 'ff'", None),
            "or_not_100": ("(params.lr = 0.1 or tags.stage = 'prod') and not status = 'failed'",
                           "metrics.val_acc desc"),
        }  # fmt: skip
        for name, (flt, order) in others.items():
            result[name] = _time(engine, args.repeat, project_id=project_id, filter=flt,
                                 order_by=order, limit=100, page_token=None)  # fmt: skip
        with engine.connect() as conn:
            _, token = search_run_ids(conn, project_id=project_id, now_ms=NOW_MS, **query)
        result["search_page_2"] = _time(engine, args.repeat, project_id=project_id,
                                        **{**query, "page_token": token})  # fmt: skip
        pages = _pages(engine, project_id, limit=100, n_pages=50)
        result["list_project_page_ms_p50"] = round(statistics.median(pages), 3)
        result["list_project_page_ms_max"] = round(max(pages), 3)
        result["analyzed"] = args.analyze
        engine.dispose()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
