"""The tracking server: start-up, 50 concurrent clients, REST ingest throughput (SQLite).

- ``healthy_s``: from spawning ``mltrail server`` to the first 200 from ``/health`` (median
  of ``--repeat`` starts on an existing store), and the same for MLflow's server
  (``bench/.venv-peers/bin/mlflow server --backend-store-uri sqlite:///...``), measured back
  to back; the peer is skipped when that venv is absent. Target: <= 1 s (MLflow: ~7 s).
- ``concurrent``: 50 asyncio+httpx clients each create a run, log 1,000 points as 10 JSON
  calls of 100, set tags and read the run back; p50/p95 request latency and errors.
  Target: 0 errors, p95 <= 500 ms.
- ``ingest``: points/s through ``POST /api/v1/ingest`` (SDK batches, wire format, 50,000
  points of 10 keys per batch) and through JSON ``/log`` (10,000 points per call), one
  client. Target (SDK batching): >= 300,000 points/s (MLflow server: 8-9k).

Usage: python bench/bench_server.py [--repeat 3] [--workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

MLTRAIL = str(Path(sys.executable).with_name("mltrail"))
MLFLOW = Path(__file__).parent / ".venv-peers" / "bin" / "mlflow"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(
    cmd: list[str], port: int, timeout: float = 120.0
) -> tuple[subprocess.Popen[bytes], float]:
    t0 = time.perf_counter()
    # own process group: stopping a server stops its workers too (MLflow forks several)
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{cmd[0]} exited with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc, time.perf_counter() - t0
        except httpx.HTTPError:
            pass
        time.sleep(0.01)
    proc.kill()
    raise RuntimeError(f"{cmd[0]} not healthy in {timeout}s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    time.sleep(0.5)  # let the group's workers exit before the next measurement


def make_token(store: str) -> str:
    out = subprocess.run(
        [MLTRAIL, "token", "create", "--store", store, "--scope", "write"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip().splitlines()[-1]


def healthy_times(tmp: Path, repeat: int) -> dict[str, object]:
    store = str(tmp / "health-store")
    make_token(store)  # the store exists: time the server, not the first schema creation
    ours: list[float] = []
    peer: list[float] = []
    for _ in range(repeat):  # ours first, then the peer's: neither starts beside the other
        port = free_port()
        proc, t = start([MLTRAIL, "server", "--store", store, "--port", str(port)], port)
        stop(proc)
        ours.append(t)
    for i in range(repeat):
        if MLFLOW.exists():
            port = free_port()
            db = tmp / "mlflow.db"
            cmd = [
                str(MLFLOW),
                "server",
                "--backend-store-uri",
                f"sqlite:///{db}",
                "--default-artifact-root",
                str(tmp / "mlruns"),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ]
            if i == 0:  # the first start creates MLflow's schema: not counted
                stop(start(cmd, port)[0])
                port = free_port()
                cmd[cmd.index("--port") + 1] = str(port)
            proc, t = start(cmd, port)
            stop(proc)
            peer.append(t)
    result: dict[str, object] = {"mltrail_s": round(statistics.median(ours), 3), "target_s": 1.0}
    result["mltrail_all_s"] = [round(x, 3) for x in ours]
    if peer:
        result["mlflow_s"] = round(statistics.median(peer), 3)
        result["mlflow_all_s"] = [round(x, 3) for x in peer]
    else:
        result["mlflow_s"] = None
    return result


async def concurrent(url: str, token: str, clients: int = 50) -> dict[str, object]:
    latencies: list[float] = []
    errors = 0

    async def call(
        client: httpx.AsyncClient, method: str, path: str, **kw: object
    ) -> httpx.Response:
        nonlocal errors
        t0 = time.perf_counter()
        r = await client.request(method, path, **kw)  # type: ignore[arg-type]
        latencies.append(time.perf_counter() - t0)
        if r.status_code >= 400:
            errors += 1
        return r

    async def one(client: httpx.AsyncClient, i: int) -> None:
        run_id = (await call(client, "POST", "/api/v1/runs", json={"project": "b2"})).json()[
            "run_id"
        ]
        for b in range(10):
            pts = [
                {"key": "loss", "value": s * 0.5, "step": s} for s in range(b * 100, b * 100 + 100)
            ]
            await call(client, "POST", f"/api/v1/runs/{run_id}/log", json={"metrics": pts})
        await call(client, "POST", f"/api/v1/runs/{run_id}/log", json={"tags": {"c": str(i)}})
        got = (await call(client, "GET", f"/api/v1/runs/{run_id}")).json()
        if got["metrics"]["loss"]["count"] != 1000:
            raise AssertionError(f"client {i}: data missing")

    t0 = time.perf_counter()
    async with httpx.AsyncClient(
        base_url=url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=120,
        limits=httpx.Limits(max_connections=clients + 10),
    ) as client:
        await asyncio.gather(*(one(client, i) for i in range(clients)))
    wall = time.perf_counter() - t0
    latencies.sort()
    return {
        "clients": clients,
        "requests": len(latencies),
        "errors": errors,
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 1),
        "p95_ms": round(latencies[int(len(latencies) * 0.95)] * 1000, 1),
        "wall_s": round(wall, 2),
        "target_p95_ms": 500,
    }


def ingest(url: str, token: str) -> dict[str, object]:
    import numpy as np

    from mltrail.store.batch import Batch, MetricSeries, RunCreate
    from mltrail.store.wire import CONTENT_TYPE, encode_batch

    headers = {"Authorization": f"Bearer {token}"}
    keys, per_key, batches = 10, 5_000, 20
    run_id = "benchsrv0001"
    source = f"{run_id}.bench"
    now = time.time_ns() // 1_000_000
    bodies = []
    pos = 0
    for b in range(batches):
        steps = np.arange(b * per_key, (b + 1) * per_key, dtype=np.int64)
        cols = {
            f"k{k}": MetricSeries(steps, now + steps, np.sin(steps / 100.0 + k))
            for k in range(keys)
        }
        create = RunCreate(project="bench", name="ingest", created_ms=now, heartbeat_s=60.0)
        batch = Batch(
            run_id,
            source=source,
            start=pos,
            end=pos + 1000,
            metrics=cols,
            create=create if b == 0 else None,
        )
        pos += 1000
        bodies.append(encode_batch(batch))
    with httpx.Client(base_url=url, headers=headers, timeout=120) as client:
        t0 = time.perf_counter()
        for body in bodies:
            r = client.post("/api/v1/ingest", content=body, headers={"Content-Type": CONTENT_TYPE})
            r.raise_for_status()
        wire_s = time.perf_counter() - t0
        json_run = client.post("/api/v1/runs", json={"project": "bench"}).json()["run_id"]
        calls = 10
        payloads = [
            {
                "metrics": [
                    {"key": f"k{i % 10}", "value": i * 0.25, "step": c * 1000 + i // 10}
                    for i in range(10_000)
                ]
            }
            for c in range(calls)
        ]
        t0 = time.perf_counter()
        for payload in payloads:
            client.post(f"/api/v1/runs/{json_run}/log", json=payload).raise_for_status()
        json_s = time.perf_counter() - t0
    total = keys * per_key * batches
    return {
        "wire_points": total,
        "wire_points_per_s": round(total / wire_s),
        "json_points": calls * 10_000,
        "json_points_per_s": round(calls * 10_000 / json_s),
        "target_points_per_s": 300_000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mltrail-bench-server-"))
    try:
        out: dict[str, object] = {"healthy": healthy_times(tmp, args.repeat)}
        store = str(tmp / "store")
        token = make_token(store)
        port = free_port()
        cmd = [
            MLTRAIL,
            "server",
            "--store",
            store,
            "--port",
            str(port),
            "--workers",
            str(args.workers),
        ]
        proc, _ = start(cmd, port)
        try:
            url = f"http://127.0.0.1:{port}"
            out["concurrent"] = asyncio.run(concurrent(url, token))
            out["ingest"] = ingest(url, token)
        finally:
            stop(proc)
        out["workers"] = args.workers
        out["load_avg_1m"] = round(os.getloadavg()[0], 2)
        print(json.dumps(out, indent=2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
