"""CPU overhead of the system metrics sampler (mltrail.capture.system.SystemSampler).

- ``direct``: ``sample()`` called 200 times in a loop; CPU time per sample (thread_time) and
  wall time per sample, median and mean, in µs.
- ``threaded``: the sampler thread at interval 0.1 s for 5 s, against the same process idle
  (sleeping) for 5 s without it: process CPU time with and without, and the sampler thread's
  own CPU time (psutil per-thread times). Per-sample cost = the CPU-time difference / samples.
- ``extrapolated``: the CPU % of one core the sampler costs at the default 10 s interval
  (per-sample cost / 10 s), from the threaded and the direct per-sample costs.

The process tree includes ``--children`` sleeping child processes (default 4), as a training
run with data-loader workers would. The sampler walks every process on the machine to find the
tree (psutil's ``children(recursive=True)``), so the machine's process count is reported too.
Target: < 1 % CPU at 10 s. GPU keys are included when NVML is available (``gpu_status``).
Usage: python bench/bench_sampler.py [--children N] [--seconds S]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time

import psutil

from mltrail.capture.system import SystemSampler

INTERVAL_S = 0.1
DEFAULT_INTERVAL_S = 10.0


def _direct(n: int) -> dict[str, float]:
    sampler = SystemSampler(lambda values: None)
    sampler.sample()  # import psutil, initialise NVML
    cpu_us: list[float] = []
    wall_us: list[float] = []
    for _ in range(n):
        c0, w0 = time.thread_time(), time.perf_counter()
        sampler.sample()
        cpu_us.append((time.thread_time() - c0) * 1e6)
        wall_us.append((time.perf_counter() - w0) * 1e6)
    sampler.stop()
    return {
        "samples": n,
        "cpu_us_median": round(statistics.median(cpu_us), 1),
        "cpu_us_mean": round(statistics.fmean(cpu_us), 1),
        "wall_us_median": round(statistics.median(wall_us), 1),
        "wall_us_mean": round(statistics.fmean(wall_us), 1),
    }


def _threaded(seconds: float) -> tuple[dict[str, float | str | int], int]:
    c0 = time.process_time()
    time.sleep(seconds)
    idle_cpu_s = time.process_time() - c0

    samples: list[dict[str, float]] = []
    sampler = SystemSampler(samples.append, interval_s=INTERVAL_S)
    c0 = time.process_time()
    sampler.start()
    time.sleep(seconds)
    thread = next(t for t in threading.enumerate() if t.name == "mltrail-system")
    times = {t.id: t.user_time + t.system_time for t in psutil.Process().threads()}
    thread_cpu_s = times.get(thread.native_id or -1, float("nan"))
    sampler.stop()
    with_cpu_s = time.process_time() - c0
    n = len(samples)
    per_sample_us = (with_cpu_s - idle_cpu_s) / n * 1e6 if n else float("nan")
    thread_us = thread_cpu_s / n * 1e6 if n else float("nan")
    gpu_keys = sorted(k for k in samples[-1] if k.startswith("system/gpu/")) if samples else []
    return {
        "interval_s": INTERVAL_S,
        "seconds": seconds,
        "samples": n,
        "idle_process_cpu_s": round(idle_cpu_s, 4),
        "with_sampler_process_cpu_s": round(with_cpu_s, 4),
        "per_sample_cpu_us_from_process": round(per_sample_us, 1),
        "sampler_thread_cpu_s": round(thread_cpu_s, 4),
        "per_sample_cpu_us_from_thread": round(thread_us, 1),
        "cpu_percent_at_interval": round(100 * (with_cpu_s - idle_cpu_s) / seconds, 2),
        "gpu_status": sampler.gpu_status,
        "gpu_keys": len(gpu_keys),
        "disabled_queries": json.dumps(sampler.disabled_queries),
        "last_sample": json.dumps(samples[-1] if samples else {}),
    }, n


def main() -> None:
    """Runs the benchmark and prints one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--children", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    children = [
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        for _ in range(args.children)
    ]
    try:
        time.sleep(0.2)
        direct = _direct(200)
        threaded, _ = _threaded(args.seconds)
    finally:
        for child in children:
            child.kill()
            child.wait()
    per_sample_us = max(
        float(threaded["per_sample_cpu_us_from_process"]),
        float(threaded["per_sample_cpu_us_from_thread"]),
    )
    result = {
        "bench": "sampler",
        "python": sys.version.split()[0],
        "machine_processes": len(psutil.pids()),
        "tree_children": args.children,
        "direct": direct,
        "threaded": threaded,
        "extrapolated": {
            "interval_s": DEFAULT_INTERVAL_S,
            "cpu_percent_from_threaded": round(100 * per_sample_us / 1e6 / DEFAULT_INTERVAL_S, 4),
            "cpu_percent_from_direct": round(
                100 * direct["cpu_us_mean"] / 1e6 / DEFAULT_INTERVAL_S, 4
            ),
            "target_percent": 1.0,
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
