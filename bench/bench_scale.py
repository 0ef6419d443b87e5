"""LLM-scale runs: many keys through the SDK, and charts of a very long series (issue 12).

(a) ``many_keys``: one run logs ``keys`` metrics at each of ``steps`` steps through the SDK
    (``run.log(dict, step)``) with the writer draining concurrently, then ``run.flush()``.
    Points/s over the whole span (first log call to the end of the flush), and the process's
    memory growth while it ran: RSS sampled every 5 ms in a child process, peak minus the RSS
    after ``init()`` and the first flush (so the figure is the log loop's and the writer's
    memory; the log loop reuses one dict, so it is the writer's). Target: >= 1M points/s,
    <= 200 MB.
(b) ``chart``: one key of ``points`` points applied to a store, then the downsampled chart
    (1,000 buckets) the server draws: full range, a 1% zoom and a 0.01% zoom, timed cold
    (a fresh store object, first request) and warm (median of 5 repeats). The store's
    ``metric_buckets`` is what the series endpoint calls; ``load_all_s`` is the old path
    (``metric_history`` + bucketing) for comparison. Target: <= 100 ms warm, <= 300 ms cold.

Prints one JSON object. Usage:
    python bench/bench_scale.py [--quick] [--keys 10000 --steps 1000] [--points 10000000]
        [--only many_keys|chart] [--store URI]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

TARGET_PPS = 1_000_000
TARGET_MB = 200


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def many_keys_child(keys: int, steps: int, uri: str | None) -> dict:
    import mltrail

    root = uri or tempfile.mkdtemp(prefix="mltrail-bench-scale-")
    try:
        names = [f"layer{i // 100:03d}/stat{i % 100:02d}" for i in range(keys)]
        run = mltrail.init(project="bench", store=root, allow_dirty=True)
        run.flush()  # the writer has opened the store: measure ingest, not first open
        base = _rss_bytes()
        peak = [base]
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.005):
                peak[0] = max(peak[0], _rss_bytes())

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        base_values = [float(j) for j in range(keys)]
        t0 = time.perf_counter()
        for step in range(steps):
            x = step * 1e-3
            run.log(dict(zip(names, [b + x for b in base_values], strict=True)), step)
        t_logged = time.perf_counter()
        run.flush()
        t_flushed = time.perf_counter()
        stop.set()
        sampler.join()
        run.finish()
        h = mltrail.Api(root).history(run.run_id, names[-1])
        assert len(h) == steps and float(h.values[-1]) == float(keys - 1) + (steps - 1) * 1e-3
        points = keys * steps
        total = t_flushed - t0
        return {
            "keys": keys,
            "steps": steps,
            "points": points,
            "log_s": round(t_logged - t0, 3),
            "flush_wait_s": round(t_flushed - t_logged, 3),
            "total_s": round(total, 3),
            "points_per_s": round(points / total),
            "rss_growth_mb": round((peak[0] - base) / 2**20, 1),
            "target_pps": TARGET_PPS,
            "target_mb": TARGET_MB,
        }
    finally:
        if uri is None:
            shutil.rmtree(root, ignore_errors=True)


def many_keys(keys: int, steps: int, uri: str | None) -> dict:
    """Run (a) in a fresh interpreter so its memory is the run's alone."""
    args = [sys.executable, __file__, "--child", "--keys", str(keys), "--steps", str(steps)]
    if uri:
        args += ["--store", uri]
    work = tempfile.mkdtemp(prefix="mltrail-bench-cwd-")  # outside any git work tree
    try:
        args[1] = os.path.abspath(__file__)
        out = subprocess.run(args, check=True, capture_output=True, text=True, cwd=work).stdout
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return json.loads(out.strip().splitlines()[-1])


def _fill(store, run_id: str, points: int) -> None:
    import numpy as np

    from mltrail.store.batch import Batch, MetricSeries, RunCreate

    now = time.time_ns() // 1_000_000
    create = RunCreate(project="bench", name="long", created_ms=now, heartbeat_s=5.0)
    store.apply_batch(Batch(run_id, create=create))
    rng = np.random.default_rng(0)
    per = 1 << 20  # points per batch
    for lo in range(0, points, per):
        s = np.arange(lo, min(points, lo + per), dtype=np.int64)
        v = np.cumsum(rng.standard_normal(len(s))) + lo * 1e-6
        col = MetricSeries(s, s + now, v)
        store.apply_batch(Batch(run_id, metrics={"loss": col}))


def chart(points: int, uri: str | None) -> dict:
    from mltrail.server.series import downsample
    from mltrail.store.registry import open_store, resolve_location

    root = uri or tempfile.mkdtemp(prefix="mltrail-bench-chart-")
    try:
        store = open_store(resolve_location(root), shared=False)
        t0 = time.perf_counter()
        _fill(store, "benchlong0001", points)
        fill_s = time.perf_counter() - t0
        store.close()
        zooms = {"full": None, "zoom_1pct": 0.01, "zoom_0.01pct": 0.0001}
        out: dict = {
            "points": points,
            "fill_s": round(fill_s, 2),
            "fill_pps": round(points / fill_s),
        }
        for name, frac in zooms.items():
            lo, hi = (None, None)
            if frac is not None:
                lo = int(points * 0.37)
                hi = lo + int(points * frac)
            store = open_store(resolve_location(root), shared=False)  # cold: a fresh engine
            t = time.perf_counter()
            body = store.metric_buckets("benchlong0001", "loss", 1000, lo, hi)
            cold = time.perf_counter() - t
            warm = []
            for _ in range(5):
                t = time.perf_counter()
                body = store.metric_buckets("benchlong0001", "loss", 1000, lo, hi)
                warm.append(time.perf_counter() - t)
            entry = {
                "cold_ms": round(cold * 1e3, 1),
                "warm_ms": round(statistics.median(warm) * 1e3, 1),
                "buckets": len(body["steps"]),
            }
            if points <= 20_000_000:
                t = time.perf_counter()
                downsample(store.metric_history("benchlong0001", "loss"), 1000, lo, hi)
                entry["load_all_ms"] = round((time.perf_counter() - t) * 1e3, 1)
            store.close()
            out[name] = entry
        return out
    finally:
        if uri is None:
            shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true", help="small sizes for a CI smoke run")
    p.add_argument("--keys", type=int, default=None)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--points", type=int, default=None)
    p.add_argument("--only", choices=("many_keys", "chart"), default=None)
    p.add_argument("--store", default=None)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    keys = a.keys or (500 if a.quick else 10_000)
    steps = a.steps or (100 if a.quick else 1_000)
    points = a.points or (200_000 if a.quick else 10_000_000)
    if a.child:
        print(json.dumps(many_keys_child(keys, steps, a.store)))
        return
    result: dict = {"cpus": os.cpu_count(), "load_avg": os.getloadavg()[0]}
    if a.only in (None, "many_keys"):
        result["many_keys"] = many_keys(keys, steps, a.store)
    if a.only in (None, "chart"):
        result["chart"] = chart(points, a.store)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
