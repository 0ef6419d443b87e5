"""SDK -> ``mltrail server`` ingest: the spool's batches uploaded over HTTP in the wire form.

Starts a real ``mltrail server`` (uvicorn, SQLite store, token auth) on 127.0.0.1, then:

(a) ``end_to_end``: one process logs N points (N/5 calls of 5 keys) to the server URL with the
    writer uploading concurrently, then ``run.flush()``: points/s from the first log call to
    the end of the flush (the producer, one Python loop, caps it near 1M points/s).
(b) ``upload_only``: the same points logged while the server is unreachable (the spool keeps
    them), then the server URL made reachable and the backlog drained: points/s of the upload.

Target (issue 4): >= 300,000 points/s through the server with SDK batching (MLflow's server
measured 8-9k points/s here).
Usage: python bench/bench_remote.py [--points 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

KEYS = ("loss", "acc", "lr", "grad_norm", "throughput")
TARGET_PPS = 300_000
MLTRAIL = str(Path(sys.executable).with_name("mltrail"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(root: Path, port: int) -> subprocess.Popen[bytes]:
    store = f"sqlite:///{root / 'server.db'}"
    out = subprocess.run(
        [MLTRAIL, "token", "create", "--store", store, "--scope", "write"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    os.environ["MLTRAIL_TOKEN"] = out.strip().splitlines()[-1]
    proc = subprocess.Popen(
        [
            MLTRAIL,
            "server",
            "--store",
            store,
            "--artifacts",
            str(root / "files"),
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("server did not become healthy")


def log_points(run, calls: int) -> None:
    log = run.log
    for i in range(calls):
        x = i * 1e-6
        log({"loss": 1.0 - x, "acc": x, "lr": 0.001, "grad_norm": 2.0 + x, "throughput": 3e3}, i)


def end_to_end(url: str, calls: int) -> dict:
    import mltrail

    run = mltrail.init(project="bench", store=url, capture=False)
    run.flush()
    t0 = time.perf_counter()
    log_points(run, calls)
    t_logged = time.perf_counter()
    run.flush()
    t1 = time.perf_counter()
    run.finish()
    got = len(mltrail.Api(url).history(run.run_id, "loss"))
    assert got == calls, (got, calls)
    points = calls * len(KEYS)
    return {
        "points": points,
        "seconds": round(t1 - t0, 3),
        "points_per_s": round(points / (t1 - t0)),
        "flush_wait_s": round(t1 - t_logged, 3),
    }


def upload_only(root: Path, calls: int) -> dict:
    """Log into a spool while the server is away, then time the drain to a live server."""
    import mltrail

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    run = mltrail.init(project="bench", store=url, capture=False)
    log_points(run, calls)
    proc = start_server(root, port)  # same database: the token stays valid
    try:
        t0 = time.perf_counter()
        run.flush()
        t1 = time.perf_counter()
        run.finish()
        points = calls * len(KEYS)
        return {
            "points": points,
            "seconds": round(t1 - t0, 3),
            "points_per_s": round(points / (t1 - t0)),
        }
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=1_000_000)
    args = ap.parse_args()
    calls = args.points // len(KEYS)
    root = Path(tempfile.mkdtemp(prefix="mltrail-bench-remote-"))
    os.environ["MLTRAIL_CACHE_DIR"] = str(root / "cache")
    port = free_port()
    proc = start_server(root, port)
    try:
        e2e = end_to_end(f"http://127.0.0.1:{port}", calls)
    finally:
        proc.terminate()
        proc.wait(10)
    up = upload_only(root, calls)
    shutil.rmtree(root, ignore_errors=True)
    print(
        json.dumps(
            {
                "benchmark": "remote_ingest",
                "end_to_end": e2e,
                "upload_only": up,
                "target_points_per_s": TARGET_PPS,
                "met": up["points_per_s"] >= TARGET_PPS,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
