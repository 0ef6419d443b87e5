"""W&B in offline mode on mltrail's hot-path workloads (run with bench/.venv-peers/bin/python).

- ``import wandb`` time (this process is fresh);
- ``wandb.init()`` return time (``WANDB_MODE=offline``; the first init also starts W&B's
  service process) and a second init in the same process;
- ``run.log({5 metrics}, step=i)`` per-call latency, p50/p90/p99/p99.9/max;
- ``run.finish()`` time (it waits for the service to write everything).

Usage: bench/.venv-peers/bin/python bench/peers/wandb_bench.py [--calls 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time


def pct(ns: list[int]) -> dict:
    s = sorted(ns)
    n = len(s)

    def at(q: float) -> float:
        return round(s[min(n - 1, int(q * n))] / 1000, 2)

    return {
        "p50_us": at(0.5),
        "p90_us": at(0.9),
        "p99_us": at(0.99),
        "p99_9_us": at(0.999),
        "max_us": round(s[-1] / 1000, 1),
        "mean_us": round(statistics.fmean(s) / 1000, 2),
        "calls": n,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=100_000)
    args = ap.parse_args()
    root = tempfile.mkdtemp(prefix="wandb-bench-")
    os.environ.update(
        WANDB_MODE="offline",
        WANDB_DIR=root,
        WANDB_CACHE_DIR=os.path.join(root, "cache"),
        WANDB_CONFIG_DIR=os.path.join(root, "config"),
        WANDB_DATA_DIR=os.path.join(root, "data"),
        WANDB_SILENT="true",
        WANDB_CONSOLE="off",
    )
    try:
        t0 = time.perf_counter()
        import wandb

        out: dict = {"peer": "wandb", "version": wandb.__version__, "mode": "offline"}
        out["import_s"] = round(time.perf_counter() - t0, 3)
        config = {"lr": 0.01, "batch_size": 64, "optimizer": "adam"}
        t0 = time.perf_counter()
        run = wandb.init(project="bench", config=config)
        out["init_first_s"] = round(time.perf_counter() - t0, 3)
        clock = time.perf_counter_ns
        log = run.log
        for i in range(1000):  # warm-up
            log({"loss": 0.5, "acc": 0.5, "lr": 0.001, "grad_norm": 2.0, "throughput": 3e3}, step=i)
        lat = [0] * args.calls
        for i in range(args.calls):
            x = i * 1e-6
            data = {"loss": 1.0 - x, "acc": x, "lr": 0.001, "grad_norm": 2.0 + x, "throughput": 3e3}
            step = 1000 + i
            t0 = clock()
            log(data, step=step)
            lat[i] = clock() - t0
        out["log_5keys"] = pct(lat)
        t0 = time.perf_counter()
        run.finish()
        out["finish_s"] = round(time.perf_counter() - t0, 3)
        t0 = time.perf_counter()
        run2 = wandb.init(project="bench", config=config)
        out["init_second_s"] = round(time.perf_counter() - t0, 3)
        t0 = time.perf_counter()
        run2.finish()
        out["finish_empty_s"] = round(time.perf_counter() - t0, 3)
        print(json.dumps(out))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
