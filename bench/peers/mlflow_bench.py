"""MLflow on the workloads of mltrail's benches (run it with bench/.venv-peers/bin/python).

Workloads (sizes are arguments; compare.py passes the same ones to ours_bench.py):
- ``log_metric`` (1 key) and ``log_metrics`` (5 keys) per-call latency, synchronous, and
  ``log_metrics(..., synchronous=False)`` (MLflow's async logging) plus its flush;
- ``log_batch`` points/s (1,000 metrics per call, MLflow's limit);
- ``get_metric_history`` of the series logged by log_batch (median of 3 after 1 warm-up);
- runs created/s through the fluent API (start_run / log_params / log_metrics / set_tags /
  end_run, 10 params, 5 metrics, 3 tags);
- ``search_runs`` over ``--search-runs`` runs (created with create_run + log_batch).

Usage: bench/.venv-peers/bin/python bench/peers/mlflow_bench.py --backend sqlite|file
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/workload.py
from workload import pct, run_metrics, run_params, run_tags  # noqa: E402

os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 refuses ./mlruns otherwise
FILTER = "params.optimizer = 'adam' and metrics.acc > 0.25"
ORDER = "metrics.loss ASC"


def timed_calls(fn, calls: int) -> list[int]:
    clock = time.perf_counter_ns
    for i in range(min(50, calls)):  # warm-up
        fn(i)
    out = []
    for i in range(calls):
        t0 = clock()
        fn(50 + i)
        out.append(clock() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", choices=("sqlite", "file"), default="sqlite")
    ap.add_argument("--calls", type=int, default=1000)
    ap.add_argument("--batch-points", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--search-runs", type=int, default=5000)
    args = ap.parse_args()
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    root = tempfile.mkdtemp(prefix="mlflow-bench-")
    try:
        t0 = time.perf_counter()
        import mlflow
        from mlflow import MlflowClient
        from mlflow.entities import Metric, Param, RunTag

        out: dict = {"peer": "mlflow", "version": mlflow.__version__, "backend": args.backend}
        out["import_s"] = round(time.perf_counter() - t0, 3)
        uri = f"sqlite:///{root}/mlflow.db" if args.backend == "sqlite" else f"file://{root}/mlruns"
        mlflow.set_tracking_uri(uri)
        client = MlflowClient(uri)
        t0 = time.perf_counter()
        eid = client.create_experiment("bench")
        out["open_and_create_experiment_s"] = round(time.perf_counter() - t0, 3)
        keys5 = ("loss", "acc", "lr", "grad_norm", "throughput")
        with mlflow.start_run(experiment_id=eid):
            one = timed_calls(
                lambda i: mlflow.log_metric("loss", 1.0 / (i + 1), step=i), args.calls
            )
            out["log_metric_1key"] = pct(one)
            five = timed_calls(
                lambda i: mlflow.log_metrics({k: i * 1e-3 for k in keys5}, step=i), args.calls
            )
            out["log_metrics_5keys"] = pct(five)
            asy = timed_calls(
                lambda i: mlflow.log_metrics(
                    {k: i * 1e-3 for k in keys5}, step=10**6 + i, synchronous=False
                ),
                args.calls,
            )
            t0 = time.perf_counter()
            mlflow.flush_async_logging()
            out["log_metrics_5keys_async"] = pct(asy)
            out["log_metrics_5keys_async"]["flush_s"] = round(time.perf_counter() - t0, 3)
        run_id = client.create_run(eid).info.run_id
        now = int(time.time() * 1000)
        n = args.batch_points
        t0 = time.perf_counter()
        for lo in range(0, n, 1000):
            pts = [Metric("big", i * 1e-3, now, i) for i in range(lo, min(n, lo + 1000))]
            client.log_batch(run_id, metrics=pts)
        dt = time.perf_counter() - t0
        out["log_batch"] = {"points": n, "s": round(dt, 3), "points_per_s": round(n / dt)}
        times = []
        for i in range(4):
            t0 = time.perf_counter()
            got = client.get_metric_history(run_id, "big")
            if i:
                times.append(time.perf_counter() - t0)
        assert len(got) == n, len(got)
        out["history"] = {"points": n, "median_ms": round(statistics.median(times) * 1000, 1)}
        t0 = time.perf_counter()
        for i in range(args.runs):
            with mlflow.start_run(experiment_id=eid):
                mlflow.log_params(run_params(i))
                mlflow.log_metrics(run_metrics(i), step=0)
                mlflow.set_tags(run_tags(i))
        dt = time.perf_counter() - t0
        out["runs_fluent"] = {"runs": args.runs, "runs_per_s": round(args.runs / dt, 1)}
        sid = client.create_experiment("search")
        t0 = time.perf_counter()
        for i in range(args.search_runs):
            rid = client.create_run(sid).info.run_id
            client.log_batch(
                rid,
                metrics=[Metric(k, v, now, 0) for k, v in run_metrics(i).items()],
                params=[Param(k, str(v)) for k, v in run_params(i).items()],
                tags=[RunTag(k, v) for k, v in run_tags(i).items()],
            )
            client.set_terminated(rid)
        dt = time.perf_counter() - t0
        rate = round(args.search_runs / dt, 1)
        out["runs_client_batch"] = {"runs": args.search_runs, "runs_per_s": rate}
        for name, flt, order in (("filter_order", FILTER, [ORDER]), ("newest", "", None)):
            times = []
            for i in range(6):
                t0 = time.perf_counter()
                found = client.search_runs([sid], flt, order_by=order, max_results=100)
                if i:
                    times.append(time.perf_counter() - t0)
            out[f"search_{name}"] = {
                "runs": args.search_runs,
                "rows": len(found),
                "median_ms": round(statistics.median(times) * 1000, 1),
            }
        print(json.dumps(out))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
