"""Read a whole metric series back: ``Api.history`` and ``store.metric_history`` (SQLite).

One run holds ``big`` (1,000,000 points) and ``small`` (100,000 points), applied the way
the writer applies them (batches of ~54k points, about one 4 MB spool read each). Each
figure is the median of 10 reads after 2 warm-up reads.

Targets: 1,000,000 points <= 50 ms, 100,000 points <= 10 ms (via Api.history).
Usage: python bench/bench_read.py [--store URI]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time

TARGETS_MS = {"big": 50.0, "small": 10.0}
SIZES = {"big": 1_000_000, "small": 100_000}
BATCH = 54_000
RUN_ID = "benchread0001"


def build(store) -> None:
    import numpy as np

    from mltrail.store.batch import Batch, MetricSeries, RunCreate

    now = time.time_ns() // 1_000_000
    create = RunCreate(project="bench", name="read", created_ms=now, heartbeat_s=5.0)
    store.apply_batch(Batch(RUN_ID, source="read", start=0, end=1, create=create))
    pos = 1
    for key, n in SIZES.items():
        for lo in range(0, n, BATCH):
            hi = min(n, lo + BATCH)
            steps = np.arange(lo, hi, dtype=np.int64)
            cols = MetricSeries(steps, now + steps, np.sin(steps / 1000.0))
            batch = Batch(RUN_ID, source="read", start=pos, end=pos + 1, metrics={key: cols})
            store.apply_batch(batch)
            pos += 1


def median_ms(fn, n: int = 10, warmup: int = 2) -> tuple[float, float, int]:
    for _ in range(warmup):
        fn()
    times = []
    size = 0
    for _ in range(n):
        t0 = time.perf_counter()
        series = fn()
        times.append((time.perf_counter() - t0) * 1000)
        size = len(series)
    return round(statistics.median(times), 2), round(min(times), 2), size


def main() -> None:
    import mltrail
    from mltrail.store.registry import forget_open_stores

    ap = argparse.ArgumentParser()
    ap.add_argument("--store", help="a store URI (default: a temporary folder)")
    args = ap.parse_args()
    root = args.store or tempfile.mkdtemp(prefix="mltrail-bench-read-")
    try:
        api = mltrail.Api(root)
        t0 = time.perf_counter()
        build(api.store)
        build_s = time.perf_counter() - t0
        out: dict = {"bench": "read", "build_s": round(build_s, 2), "targets": {}}
        for key, n in SIZES.items():
            med, best, size = median_ms(lambda key=key: api.history(RUN_ID, key))
            assert size == n, (size, n)
            s_med, s_best, _ = median_ms(lambda key=key: api.store.metric_history(RUN_ID, key))
            out[key] = {
                "points": n,
                "api_history_median_ms": med,
                "api_history_min_ms": best,
                "store_metric_history_median_ms": s_med,
                "store_metric_history_min_ms": s_best,
                "api_points_per_s": round(n / med * 1000),
            }
            out["targets"][f"{n} points <= {TARGETS_MS[key]:g} ms"] = med <= TARGETS_MS[key]
        series = api.history(RUN_ID, "big")
        assert bool((series.steps[1:] >= series.steps[:-1]).all())
        forget_open_stores()
        t0 = time.perf_counter()
        fresh = mltrail.Api(root)  # as a new process would: new engine, connection, query
        fresh.history(RUN_ID, "big")
        out["fresh_api_open_plus_first_read_1m_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        forget_open_stores()
        print(json.dumps(out))
    finally:
        if args.store is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
