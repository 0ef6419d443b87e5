"""Latency of ``run.log({5 metrics}, step=i)``, the training loop's hot path.

Two cases, each in a fresh embedded store:

- ``with_writer`` (the realistic case): the writer thread drains the spool into SQLite
  every ``flush_interval_s`` (0.2 s) while the loop logs, competing for the GIL.
- ``without_writer``: the writer thread sleeps (flush interval and heartbeat set to a day),
  so only ``log()`` itself is measured; the spool is drained at ``finish()``.

Per-call figures time each call with ``perf_counter_ns``; ``mean_us_big_loop`` divides one
timed loop of N calls (no per-call timer). Targets: p50 <= 10 us, p99 <= 100 us.

Usage: python bench/bench_log.py [--calls 100000]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time

from workload import clean_repo_entry  # noqa: E402

KEYS = ("loss", "acc", "lr", "grad_norm", "throughput")
TARGET_P50_US = 10.0
TARGET_P99_US = 100.0


def percentiles(ns: list[int]) -> dict[str, float]:
    s = sorted(ns)
    n = len(s)

    def at(q: float) -> float:
        return round(s[min(n - 1, int(q * n))] / 1000, 2)

    return {
        "p50_us": at(0.50),
        "p90_us": at(0.90),
        "p99_us": at(0.99),
        "p99_9_us": at(0.999),
        "max_us": round(s[-1] / 1000, 2),
        "mean_us": round(statistics.fmean(s) / 1000, 3),
    }


def timer_overhead_ns(n: int = 100_000) -> float:
    clock = time.perf_counter_ns
    out = []
    for _ in range(n):
        t0 = clock()
        out.append(clock() - t0)
    return statistics.median(out)


def one_case(calls: int, drain: bool) -> dict:
    import mltrail

    if drain:
        os.environ.pop("MLTRAIL_FLUSH_INTERVAL_S", None)
    else:
        os.environ["MLTRAIL_FLUSH_INTERVAL_S"] = "86400"
    root = tempfile.mkdtemp(prefix="mltrail-bench-log-")
    try:
        run = mltrail.init(project="bench", store=root, heartbeat_s=None if drain else 86400.0)
        log = run.log
        clock = time.perf_counter_ns
        # warm-up: declares the keyset, lets the writer open the store
        for i in range(1000):
            log({k: 0.5 for k in KEYS}, step=i)
        run.flush()
        base = 1000
        lat = [0] * calls
        for i in range(calls):
            x = i * 1e-6
            data = {"loss": 1.0 - x, "acc": x, "lr": 0.001, "grad_norm": 2.0 + x, "throughput": 3e3}
            step = base + i
            t0 = clock()
            log(data, step=step)
            lat[i] = clock() - t0
        base += calls
        # one big timed loop: total / N, no per-call timer; dicts prebuilt
        datas = [
            {
                "loss": 1.0 - i * 1e-6,
                "acc": i * 1e-6,
                "lr": 0.001,
                "grad_norm": 2.0,
                "throughput": 3e3,
            }
            for i in range(calls)
        ]
        t0 = clock()
        for i in range(calls):
            log(datas[i], step=base + i)
        big_ns = clock() - t0
        spool_bytes = os.path.getsize(run.spool_path)
        t_fin = time.perf_counter()
        run.finish()
        finish_s = time.perf_counter() - t_fin
        out = percentiles(lat)
        out["mean_us_big_loop"] = round(big_ns / calls / 1000, 3)
        out["finish_s"] = round(finish_s, 3)
        out["spool_bytes_per_call"] = round(spool_bytes / (calls * 2 + 1000), 1)
        out["calls"] = calls
        return out
    finally:
        os.environ.pop("MLTRAIL_FLUSH_INTERVAL_S", None)
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=100_000)
    args = ap.parse_args()
    repo = clean_repo_entry()
    gc.collect()
    overhead = timer_overhead_ns()
    without = one_case(args.calls, drain=False)
    with_w = one_case(args.calls, drain=True)
    result = {
        "bench": "log",
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "metrics_per_call": len(KEYS),
        "timer_overhead_ns": overhead,
        "with_writer": with_w,
        "without_writer": without,
        "targets": {
            "p50_us<=10 (with writer)": with_w["p50_us"] <= TARGET_P50_US,
            "p99_us<=100 (with writer)": with_w["p99_us"] <= TARGET_P99_US,
            "p50_us<=10 (without writer)": without["p50_us"] <= TARGET_P50_US,
            "p99_us<=100 (without writer)": without["p99_us"] <= TARGET_P99_US,
        },
    }
    print(json.dumps(result))
    if repo:
        shutil.rmtree(repo, ignore_errors=True)


if __name__ == "__main__":
    main()
