"""MLflow's client ``log_batch`` through ``mltrail server`` vs through ``mlflow server``.

Both servers run as their own processes on 127.0.0.1 (fixed ports), each over SQLite:
``mltrail server --store DIR`` from this venv, ``mlflow server --backend-store-uri
sqlite:///...`` from bench/.venv-peers (create it with ``python3 -m venv bench/.venv-peers &&
bench/.venv-peers/bin/pip install mlflow==3.17.2``). The same client (this venv's
``mlflow-skinny``, the same version as the peer server) logs ``--calls`` batches of 1,000
metrics (10 keys x 100 steps, MLflow's per-call limit) into one run per round, synchronously.
Rounds alternate which server goes first; each figure is the median over ``--reps`` rounds;
the 1-minute load average is recorded before each round. Durability: both servers commit
every call to SQLite (mltrail's server store uses its default ``batch`` mode, which syncs
the write-ahead log once per interval; MLflow's SQLite commits with SQLite's defaults).

Prints one JSON object: points/s per side, the ratio (mltrail / MLflow; >= 1 means mltrail is
at least as fast), per-round figures and load averages.

Usage: python bench/bench_mlflow_compat.py [--reps 3] [--calls 20]
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
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
PEERS = HERE / ".venv-peers" / "bin"
OURS = Path(sys.executable).parent
MLTRAIL_PORT = 5941
MLFLOW_PORT = 5942
KEYS = 10
STEPS = 100


def _wait(url: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not come up")


def start_mltrail(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    store = tmp / "mltrail-store"
    out = subprocess.run(
        [str(OURS / "mltrail"), "token", "create", "--scope", "write", "--store", str(store)],
        capture_output=True,
        text=True,
        check=True,
    )
    token = out.stdout.strip().splitlines()[-1].strip()
    proc = subprocess.Popen(
        [str(OURS / "mltrail"), "server", "--store", str(store), "--port", str(MLTRAIL_PORT)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _wait(f"http://127.0.0.1:{MLTRAIL_PORT}/health")
    return proc, token


def start_mlflow(tmp: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            str(PEERS / "mlflow"),
            "server",
            "--backend-store-uri",
            f"sqlite:///{tmp / 'mlflow.db'}",
            "--default-artifact-root",
            str(tmp / "mlflow-artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(MLFLOW_PORT),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _wait(f"http://127.0.0.1:{MLFLOW_PORT}/health")
    return proc


def one_round(url: str, calls: int) -> float:
    """Seconds for ``calls`` log_batch calls of 1,000 metrics into a fresh run."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    client = MlflowClient(tracking_uri=url)
    run_id = client.create_run("0").info.run_id
    now = int(time.time() * 1000)
    batches = [
        [
            Metric(f"metric_{k}", float(c * STEPS + s), now + s, c * STEPS + s)
            for s in range(STEPS)
            for k in range(KEYS)
        ]
        for c in range(calls)
    ]
    started = time.perf_counter()
    for batch in batches:
        client.log_batch(run_id, metrics=batch, synchronous=True)
    elapsed = time.perf_counter() - started
    client.set_terminated(run_id)
    history = client.get_metric_history(run_id, "metric_0")
    assert len(history) == calls * STEPS, (url, len(history))
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--calls", type=int, default=20)
    args = parser.parse_args()
    if not (PEERS / "mlflow").exists():
        sys.exit(f"no peer venv: create {PEERS.parent} with mlflow 3.x (see the docstring)")
    tmp = Path(tempfile.mkdtemp(prefix="bench-mlflow-compat-"))
    ours, token = start_mltrail(tmp)
    peer = start_mlflow(tmp)
    os.environ["MLFLOW_TRACKING_TOKEN"] = token  # MLflow's own server ignores it
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    sides = {
        "mltrail": f"http://127.0.0.1:{MLTRAIL_PORT}",
        "mlflow": f"http://127.0.0.1:{MLFLOW_PORT}",
    }
    times: dict[str, list[float]] = {k: [] for k in sides}
    loads: list[float] = []
    try:
        for url in sides.values():  # warm both (imports, first run, SQLite files)
            one_round(url, 2)
        for rep in range(args.reps):
            order = list(sides) if rep % 2 == 0 else list(reversed(sides))
            loads.append(os.getloadavg()[0])
            for side in order:
                times[side].append(one_round(sides[side], args.calls))
    finally:
        for proc in (ours, peer):
            proc.terminate()
            proc.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)
    points = args.calls * KEYS * STEPS
    med = {k: statistics.median(v) for k, v in times.items()}
    rate = {k: points / med[k] for k in med}
    print(
        json.dumps(
            {
                "bench": "mlflow_compat_log_batch",
                "calls": args.calls,
                "metrics_per_call": KEYS * STEPS,
                "reps": args.reps,
                "points_per_s": {k: round(v) for k, v in rate.items()},
                "ms_per_call": {k: round(1000 * med[k] / args.calls, 2) for k in med},
                "ratio_mltrail_over_mlflow": round(rate["mltrail"] / rate["mlflow"], 2),
                "rounds_s": {k: [round(x, 3) for x in v] for k, v in times.items()},
                "load_avg_1m": [round(x, 2) for x in loads],
            }
        )
    )


if __name__ == "__main__":
    main()
