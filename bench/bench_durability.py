"""The cost of each MLTRAIL_DURABILITY mode, measured interleaved (ABCABC..., medians).

For each mode, in a fresh interpreter with the mode set:
- ``ingest_pps``: end-to-end points/s of 5-key ``log()`` calls with the writer draining,
  up to ``run.flush()`` (embedded SQLite store);
- ``log_p50_us``: the median latency of one ``log()`` call;
- ``runs_per_s``: ``init / log / finish`` of short runs, capture off (one commit each).

``batch`` (the default) must cost <= 10% of ``process`` ingest; ``call`` is what MLflow's
per-call commit guarantees, at its price.

Usage: python bench/bench_durability.py [--points 500000] [--runs 200] [--reps 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

MODES = ("process", "batch", "call")
KEYS = ("loss", "acc", "lr", "grad_norm", "throughput")

CHILD = r"""
import json, shutil, sys, tempfile, time
import mltrail
points, runs = int(sys.argv[1]), int(sys.argv[2])
root = tempfile.mkdtemp(prefix="mltrail-bench-dur-")
run = mltrail.init(project="bench", store=root, capture=False)
run.flush()
calls = points // 5
t0 = time.perf_counter()
for i in range(calls):
    x = i * 1e-6
    run.log({"loss": 1.0 - x, "acc": x, "lr": 0.001, "grad_norm": 2.0 + x, "throughput": 3e3}, i)
run.flush()
ingest = time.perf_counter() - t0
lat = []
for i in range(2000):
    t = time.perf_counter_ns()
    run.log({"loss": 0.5}, step=calls + i)
    lat.append(time.perf_counter_ns() - t)
run.finish()
lat.sort()
t0 = time.perf_counter()
for i in range(runs):
    r = mltrail.init(project="runs", store=root, capture=False)
    r.log({"loss": float(i)}, step=0)
    r.finish()
rps = runs / (time.perf_counter() - t0)
shutil.rmtree(root, ignore_errors=True)
print(json.dumps({"ingest_pps": points / ingest, "log_p50_us": lat[len(lat) // 2] / 1000,
                  "runs_per_s": rps}))
"""


def one(mode: str, points: int, runs: int) -> dict[str, float]:
    env = dict(os.environ, MLTRAIL_DURABILITY=mode, MLTRAIL_CONSOLE="0")
    env["MLTRAIL_SYSTEM_METRICS_S"] = "0"
    with tempfile.TemporaryDirectory() as cwd:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(points), str(runs)],
            capture_output=True,
            text=True,
            env=env,
            cwd=cwd,
            timeout=1800,
            check=True,
        )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=500_000)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    samples: dict[str, list[dict[str, float]]] = {m: [] for m in MODES}
    for _ in range(args.reps):
        for mode in MODES:  # interleaved: load drifts hit every mode alike
            samples[mode].append(one(mode, args.points, args.runs))
    med = {
        m: {k: round(statistics.median(s[k] for s in samples[m]), 2) for k in samples[m][0]}
        for m in MODES
    }
    cost = {m: round(1 - med[m]["ingest_pps"] / med["process"]["ingest_pps"], 3) for m in MODES}
    print(
        json.dumps(
            {
                "bench": "durability",
                "points": args.points,
                "runs": args.runs,
                "reps": args.reps,
                "load_avg": os.getloadavg()[0],
                "medians": med,
                "ingest_cost_vs_process": cost,
                "targets": {"batch costs <= 10% of ingest": cost["batch"] <= 0.10},
            }
        )
    )


if __name__ == "__main__":
    main()
