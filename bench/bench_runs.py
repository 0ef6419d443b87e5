"""Create many runs, each with 10 params, 5 metrics and 3 tags (SQLite).

(a) ``sdk``: ``init / log_params / log / set_tags / finish`` in a loop, one process, timed
    until every run is in the store (``runs_per_s``; ``finish`` returns before its drain, so
    the loop alone is faster: ``loop_runs_per_s``).
    Default settings, from a clean git repository (init checks it and captures the run's
    state); ``sdk_capture_off`` is the same loop with MLTRAIL_CAPTURE=0,
    MLTRAIL_SYSTEM_METRICS_S=0 and MLTRAIL_CONSOLE=0, to split tracking from capture.
(b) ``store``: ``apply_batch`` of one complete batch per run (create, params, tags,
    metrics, status), with an ingest cursor as the writer has.

Target: >= 1,000 runs/s.
Usage: python bench/bench_runs.py [--runs 10000] [--sdk-runs N] [--store URI]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time

from workload import clean_repo_entry, run_metrics, run_params, run_tags  # noqa: E402

TARGET_RPS = 1_000


BARE = {"MLTRAIL_CAPTURE": "0", "MLTRAIL_SYSTEM_METRICS_S": "0", "MLTRAIL_CONSOLE": "0"}


def sdk(n: int, uri: str | None, bare: bool = False) -> dict:
    import mltrail

    root = uri or tempfile.mkdtemp(prefix="mltrail-bench-runs-")
    project = "bench-sdk-bare" if bare else "bench-sdk"
    saved = {k: os.environ.get(k) for k in BARE}
    if bare:
        os.environ.update(BARE)
    try:
        warm = mltrail.init(project="warm", store=root)  # opens the store once
        warm.finish()
        t0 = time.perf_counter()
        for i in range(n):
            run = mltrail.init(project=project, store=root)
            run.log_params(run_params(i))
            run.log(run_metrics(i), step=0)
            run.set_tags(run_tags(i))
            run.finish()
        loop = time.perf_counter() - t0
        api = mltrail.Api(root)  # waits for the drains finish() left to the background
        total = time.perf_counter() - t0
        stored = {p.name: p.run_count for p in api.projects()}
        assert stored.get(project) == n, stored
        return {
            "runs": n,
            "total_s": round(total, 3),
            # every run in the store (what the target counts)
            "runs_per_s": round(n / total),
            "ms_per_run": round(total / n * 1000, 3),
            # what the loop itself saw (finish() returns before the drain)
            "loop_runs_per_s": round(n / loop),
        }
    finally:
        for k, old in saved.items():
            if old is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = old
        if uri is None:
            shutil.rmtree(root, ignore_errors=True)


def store_level(n: int, uri: str | None) -> dict:
    import numpy as np

    from mltrail.entities import RunStatus
    from mltrail.ids import new_run_id
    from mltrail.store.batch import Batch, MetricSeries, RunCreate, StatusChange
    from mltrail.store.registry import open_store, resolve_location

    root = uri or tempfile.mkdtemp(prefix="mltrail-bench-runs-store-")
    try:
        store = open_store(resolve_location(root), shared=False)
        now = time.time_ns() // 1_000_000
        batches = []
        for i in range(n):  # build outside the timed loop, as the decoder would
            run_id = new_run_id()
            step = np.zeros(1, dtype=np.int64)
            stamp = np.full(1, now, dtype=np.int64)
            metrics = {
                k: MetricSeries(step, stamp, np.array([v], dtype=np.float64))
                for k, v in run_metrics(i).items()
            }
            batches.append(
                Batch(
                    run_id,
                    source=f"{run_id}.00000000",
                    start=0,
                    end=4096,
                    create=RunCreate(
                        "bench-store", f"run-{i}", now, 5.0, "bench", "host", "python"
                    ),
                    params=run_params(i),
                    tags=run_tags(i),
                    metrics=metrics,
                    heartbeat_ms=now,
                    status=StatusChange(RunStatus.FINISHED, now + 1),
                )
            )
        t0 = time.perf_counter()
        for batch in batches:
            store.apply_batch(batch)
        total = time.perf_counter() - t0
        projects = {p.name: p.run_count for p in store.list_projects()}
        assert projects.get("bench-store") == n, projects
        store.close()
        return {
            "runs": n,
            "total_s": round(total, 3),
            "runs_per_s": round(n / total),
            "ms_per_run": round(total / n * 1000, 3),
        }
    finally:
        if uri is None:
            shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--sdk-runs", type=int, help="runs for (a); default --runs")
    ap.add_argument("--store", help="a store URI (default: a temporary folder each)")
    args = ap.parse_args()
    repo = clean_repo_entry()
    st = store_level(args.runs, args.store)
    sd = sdk(args.sdk_runs or args.runs, args.store)
    bare = sdk(args.sdk_runs or args.runs, args.store, bare=True)
    print(
        json.dumps(
            {
                "bench": "runs",
                "sdk": sd,
                "sdk_capture_off": bare,
                "store": st,
                "targets": {
                    "sdk runs/s >= 1000": sd["runs_per_s"] >= TARGET_RPS,
                    "sdk runs/s >= 1000 (capture off)": bare["runs_per_s"] >= TARGET_RPS,
                    "store runs/s >= 1000": st["runs_per_s"] >= TARGET_RPS,
                },
            }
        )
    )
    if repo:
        shutil.rmtree(repo, ignore_errors=True)


if __name__ == "__main__":
    main()
