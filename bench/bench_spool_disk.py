"""Disk taken by a long run's spool while it logs (issue target: <= 64 MB plus what the store
has not applied yet; before the writer released applied spool, a 10^8-point run kept 3.7 GB).

Logs ``--points`` points (10 keys per call) through the SDK into the embedded store and
samples the spool's allocated size (``st_blocks``) every ``--every`` calls: reports the
logical spool size, the peak disk it took, the backlog (logical size - applied position) at
that peak, and the store's size at the end.

Usage: python bench/bench_spool_disk.py [--points 10000000] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

TARGET_BYTES = 64 << 20
KEYS = [f"train/k{i}" for i in range(10)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=10_000_000)
    ap.add_argument("--every", type=int, default=20_000)
    ap.add_argument("--quick", action="store_true", help="10^6 points")
    args = ap.parse_args()
    points = 1_000_000 if args.quick else args.points
    os.environ.setdefault("MLTRAIL_CONSOLE", "0")
    os.environ.setdefault("MLTRAIL_SYSTEM_METRICS_S", "0")
    import mltrail

    root = tempfile.mkdtemp(prefix="mltrail-bench-spool-")
    try:
        run = mltrail.init(project="bench", store=root, capture=False)
        path = run.spool_path
        calls = points // len(KEYS)
        peak = peak_backlog = 0
        t0 = time.perf_counter()
        for i in range(calls):
            x = i * 1e-6
            run.log(dict.fromkeys(KEYS, x), step=i)
            if i % args.every == 0:
                disk = os.stat(path).st_blocks * 512
                if disk > peak:
                    peak = disk
                    peak_backlog = run._spool.size - (run._writer.position if run._writer else 0)
        logged_s = time.perf_counter() - t0
        logical = path.stat().st_size
        disk_end = os.stat(path).st_blocks * 512
        run.finish()
        total_s = time.perf_counter() - t0
        store_bytes = sum(p.stat().st_size for p in Path(root).rglob("*") if p.is_file())
        print(
            json.dumps(
                {
                    "bench": "spool_disk",
                    "points": calls * len(KEYS),
                    "log_s": round(logged_s, 2),
                    "total_s": round(total_s, 2),
                    "spool_logical_mb": round(logical / 1e6, 1),
                    "spool_peak_disk_mb": round(peak / 1e6, 1),
                    "backlog_at_peak_mb": round(peak_backlog / 1e6, 1),
                    "spool_disk_at_end_mb": round(disk_end / 1e6, 1),
                    "store_mb": round(store_bytes / 1e6, 1),
                    "targets": {
                        "spool disk <= 64 MB + backlog": peak <= TARGET_BYTES + peak_backlog
                    },
                }
            )
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
