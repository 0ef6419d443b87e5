"""The ingest, read, run-creation and search workloads against PostgreSQL. No targets.

Needs ``MLTRAIL_PG_URL`` (or ``MLTRAIL_TEST_PG_URL``): a database the user may create
databases from. Each workload gets a scratch database, dropped afterwards; the ingest, read
and runs workloads are ``bench_ingest.py``, ``bench_read.py`` and ``bench_runs.py`` run with
``--store`` pointing at it. Without a URL it prints ``{"skipped": reason}``.

A throwaway server (fsync off: test data only; say so when quoting figures):
    eval "$(bash ../shared/scripts/start_postgres.sh start 55439)"
    python bench/bench_postgres.py
    bash ../shared/scripts/start_postgres.sh stop "$MLTRAIL_PG_DIR"
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
QUERIES = {
    "param_eq_limit100": ("params.optimizer = 'adam'", None),
    "metric_gt_order_metric": ("metrics.acc > 0.25", "metrics.loss asc"),
    "param_and_tag_order_param": ("params.lr < 0.01 and tags.team = 'nlp'", "params.lr desc"),
    "no_filter_newest": (None, None),
}


def admin(url: str, sql: str) -> None:
    import psycopg

    conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(sql)


def with_db(url: str, name: str) -> str:
    from sqlalchemy import make_url

    return make_url(url).set(database=name).render_as_string(hide_password=False)


def sub_bench(script: str, store: str, extra: list[str], cache: str) -> dict:
    env = {**os.environ, "MLTRAIL_CACHE_DIR": cache}
    out = subprocess.run(
        [sys.executable, str(HERE / script), "--store", store, *extra],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
    )
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-5:]}
    result: dict = json.loads(out.stdout.strip().splitlines()[-1])
    result.pop("targets", None)
    return result


def search(store: str, project: str) -> dict:
    import mltrail
    from mltrail.store.registry import forget_open_stores

    api = mltrail.Api(store)
    out: dict = {"runs_in_project": len(api.runs(project=project))}
    for name, (flt, order) in QUERIES.items():
        times = []
        found = 0
        for i in range(7):
            t0 = time.perf_counter()
            found = len(api.runs(project=project, filter=flt, order_by=order, limit=100))
            if i >= 2:  # two warm-up queries
                times.append((time.perf_counter() - t0) * 1000)
        out[name] = {"median_ms": round(statistics.median(times), 2), "rows": found}
    some = api.runs(project=project, limit=1)[0].run_id
    t0 = time.perf_counter()
    for _ in range(100):
        api.run(some)
    out["get_run_ms"] = round((time.perf_counter() - t0) * 10, 3)
    forget_open_stores()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=2_000_000)
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--sdk-runs", type=int, default=2_000)
    args = ap.parse_args()
    url = os.environ.get("MLTRAIL_PG_URL") or os.environ.get("MLTRAIL_TEST_PG_URL")
    if not url:
        print(json.dumps({"bench": "postgres", "skipped": "MLTRAIL_PG_URL is not set"}))
        return
    try:
        import psycopg  # noqa: F401
    except ImportError:
        print(json.dumps({"bench": "postgres", "skipped": "psycopg is not installed"}))
        return
    result: dict = {"bench": "postgres"}
    cache = tempfile.mkdtemp(prefix="mltrail-bench-pg-cache-")
    workloads = {
        "ingest": ("bench_ingest.py", ["--points", str(args.points)]),
        "read": ("bench_read.py", []),
        "runs": ("bench_runs.py", ["--runs", str(args.runs), "--sdk-runs", str(args.sdk_runs)]),
    }
    try:
        for name, (script, extra) in workloads.items():
            db = f"mltrail_bench_{name}_{secrets.token_hex(4)}"
            admin(url, f"CREATE DATABASE {db}")
            try:
                store = with_db(url, db)
                result[name] = sub_bench(script, store, extra, cache)
                if name == "runs" and "error" not in result[name]:
                    result["search"] = search(store, "bench-store")
            finally:
                admin(url, f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        import psycopg

        conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(conninfo) as conn:
            result["server_version"] = conn.execute("SHOW server_version").fetchone()[0]
            result["fsync"] = conn.execute("SHOW fsync").fetchone()[0]
            result["synchronous_commit"] = conn.execute("SHOW synchronous_commit").fetchone()[0]
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
