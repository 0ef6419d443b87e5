"""mltrail on exactly the peer workloads of mlflow_bench.py / wandb_bench.py (same sizes).

Runs in mltrail's own venv (compare.py starts it). Embedded SQLite store in a temp folder.
- ``import_s``; ``init`` return time, first and second in the process;
- ``run.log`` per-call latency, 1 key and 5 keys, writer draining concurrently;
- end-to-end ingest: ``--batch-points`` points logged (1 key per call, the series MLflow
  writes with log_batch, and 5 keys per call) until ``flush()`` returns: points/s;
- ``Api.history`` of that 1-key series (median of 3 after 1 warm-up);
- runs created/s through the SDK (10 params, 5 metrics, 3 tags);
- ``Api.runs`` search over ``--search-runs`` runs (created with store.apply_batch).

Usage: python bench/peers/ours_bench.py [--calls 100000] [--batch-points 100000] ...
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/workload.py
from workload import clean_repo_entry, pct, run_metrics, run_params, run_tags  # noqa: E402

FILTER = "params.optimizer = 'adam' and metrics.acc > 0.25"
ORDER = "metrics.loss asc"
KEYS5 = ("loss", "acc", "lr", "grad_norm", "throughput")


def latency(run, calls: int, keys: tuple[str, ...], base: int) -> dict:
    log, clock = run.log, time.perf_counter_ns
    out = [0] * calls
    for i in range(calls):
        data = {k: i * 1e-3 for k in keys}
        t0 = clock()
        log(data, step=base + i)
        out[i] = clock() - t0
    return pct(out)


def search_store(root: str, n: int) -> tuple[float, str]:
    import numpy as np

    from mltrail.entities import RunStatus
    from mltrail.ids import new_run_id
    from mltrail.store.batch import Batch, MetricSeries, RunCreate, StatusChange
    from mltrail.store.registry import open_store, resolve_location

    store = open_store(resolve_location(root))
    now = time.time_ns() // 1_000_000
    step, stamp = np.zeros(1, np.int64), np.full(1, now, np.int64)
    t0 = time.perf_counter()
    for i in range(n):
        run_id = new_run_id()
        metrics = {
            k: MetricSeries(step, stamp, np.array([v], np.float64))
            for k, v in run_metrics(i).items()
        }
        create = RunCreate("search", f"run-{i}", now + i, 5.0)
        status = StatusChange(RunStatus.FINISHED, now + i)
        batch = Batch(run_id, f"{run_id}.0", 0, 1, create, None, run_params(i), run_tags(i))
        batch.metrics, batch.status = metrics, status
        store.apply_batch(batch)
    return n / (time.perf_counter() - t0), root


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=100_000)
    ap.add_argument("--batch-points", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--search-runs", type=int, default=5000)
    args = ap.parse_args()
    repo = clean_repo_entry()
    root = tempfile.mkdtemp(prefix="mltrail-peer-bench-")
    try:
        t0 = time.perf_counter()
        import mltrail

        out: dict = {"peer": "mltrail", "version": mltrail.__version__, "backend": "sqlite"}
        out["import_s"] = round(time.perf_counter() - t0, 3)
        t0 = time.perf_counter()
        run = mltrail.init(project="bench", store=root, config={"lr": 0.01, "bs": 64})
        out["init_first_s"] = round(time.perf_counter() - t0, 4)
        run.flush()
        out["log_1key"] = latency(run, args.calls, ("loss",), 0)
        out["log_5keys"] = latency(run, args.calls, KEYS5, args.calls)
        run.finish()
        n = args.batch_points
        for keys in (("big",), KEYS5):
            run = mltrail.init(project="bench", store=root)
            run.flush()
            t0 = time.perf_counter()
            log = run.log
            for i in range(n // len(keys)):
                log({k: i * 1e-3 for k in keys}, step=i)
            run.flush()
            dt = time.perf_counter() - t0
            out[f"ingest_{len(keys)}key"] = {
                "points": n,
                "s": round(dt, 3),
                "points_per_s": round(n / dt),
            }
            if len(keys) == 1:
                big = run.run_id
            run.finish()
        api = mltrail.Api(root)
        times = []
        for i in range(4):
            t0 = time.perf_counter()
            got = api.history(big, "big")
            if i:
                times.append(time.perf_counter() - t0)
        assert len(got) == n
        out["history"] = {"points": n, "median_ms": round(statistics.median(times) * 1000, 2)}
        t0 = time.perf_counter()
        run = mltrail.init(project="bench", store=root)
        out["init_second_s"] = round(time.perf_counter() - t0, 4)
        run.finish()
        t0 = time.perf_counter()
        for i in range(args.runs):
            run = mltrail.init(project="runs", store=root)
            run.log_params(run_params(i))
            run.log(run_metrics(i), step=0)
            run.set_tags(run_tags(i))
            run.finish()
        out["runs_sdk"] = {
            "runs": args.runs,
            "runs_per_s": round(args.runs / (time.perf_counter() - t0), 1),
        }
        rate, _ = search_store(root, args.search_runs)
        out["runs_store_batch"] = {"runs": args.search_runs, "runs_per_s": round(rate, 1)}
        for name, flt, order in (("filter_order", FILTER, ORDER), ("newest", None, None)):
            times = []
            for i in range(6):
                t0 = time.perf_counter()
                found = api.runs(project="search", filter=flt, order_by=order, limit=100)
                if i:
                    times.append(time.perf_counter() - t0)
            out[f"search_{name}"] = {
                "runs": args.search_runs,
                "rows": len(found),
                "median_ms": round(statistics.median(times) * 1000, 2),
            }
        print(json.dumps(out))
    finally:
        shutil.rmtree(root, ignore_errors=True)
        if repo:
            shutil.rmtree(repo, ignore_errors=True)


if __name__ == "__main__":
    main()
