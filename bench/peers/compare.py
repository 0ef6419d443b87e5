"""Run mltrail and its peers on the same workloads, back to back, and print the ratios.

ours_bench.py runs in this interpreter's venv; mlflow_bench.py (SQLite and file backends)
and wandb_bench.py run in bench/.venv-peers (create it with bench/peers/setup_venv.sh).
Every ratio reads "mltrail is N times faster" (peer time / our time, or our rate / peer rate);
below 1 means the peer is faster.

Usage: python bench/peers/compare.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PEERS_PY = HERE.parent / ".venv-peers" / "bin" / "python"


def call(python: Path | str, script: str, args: list[str], timeout: float = 1800) -> dict:
    out = subprocess.run(
        [str(python), str(HERE / script), *args], capture_output=True, text=True, timeout=timeout
    )
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        return {"error": f"exit {out.returncode}", "stderr_tail": out.stderr.splitlines()[-8:]}
    result: dict = json.loads(lines[-1])
    return result


def get(d: dict, path: str) -> float | None:
    for part in path.split("."):
        if not isinstance(d, dict) or part not in d:
            return None
        d = d[part]
    return d if isinstance(d, int | float) else None


def ratio(ours: dict, peer: dict, ours_path: str, peer_path: str, kind: str) -> float | None:
    a, b = get(ours, ours_path), get(peer, peer_path)
    if not a or not b:
        return None
    return round(b / a if kind == "time" else a / b, 1)


# label | our figure | peer figure | "time" (smaller is better) or "rate" (bigger is better)
MLFLOW_PAIRS = """
log 1 key per call, p50           | log_1key.p50_us               | log_metric_1key.p50_us | time
log 1 key per call, p99           | log_1key.p99_us               | log_metric_1key.p99_us | time
log 5 keys per call, p50          | log_5keys.p50_us              | log_metrics_5keys.p50_us | time
log 5 keys per call, p99          | log_5keys.p99_us              | log_metrics_5keys.p99_us | time
log 5 keys, p50 vs MLflow async   | log_5keys.p50_us        | log_metrics_5keys_async.p50_us | time
log 5 keys, p99 vs MLflow async   | log_5keys.p99_us        | log_metrics_5keys_async.p99_us | time
ingest pts/s, 1 key/call vs log_batch  | ingest_1key.points_per_s | log_batch.points_per_s | rate
ingest pts/s, 5 keys/call vs log_batch | ingest_5key.points_per_s | log_batch.points_per_s | rate
history read                      | history.median_ms             | history.median_ms      | time
runs created/s, SDK vs fluent     | runs_sdk.runs_per_s           | runs_fluent.runs_per_s | rate
runs created/s, batch path  | runs_store_batch.runs_per_s | runs_client_batch.runs_per_s | rate
search: filter+order, 100 rows|search_filter_order.median_ms|search_filter_order.median_ms|time
search: newest 100                | search_newest.median_ms       | search_newest.median_ms | time
import                            | import_s                      | import_s               | time
"""
WANDB_PAIRS = """
init (first in process)           | init_first_s                  | init_first_s           | time
init (second in process)          | init_second_s                 | init_second_s          | time
log 5 keys per call, p50          | log_5keys.p50_us              | log_5keys.p50_us       | time
log 5 keys per call, p99          | log_5keys.p99_us              | log_5keys.p99_us       | time
import                            | import_s                      | import_s               | time
"""


def ratios(ours: dict, peer: dict, table: str) -> dict:
    rows = [[x.strip() for x in line.split("|")] for line in table.strip().splitlines()]
    return {label: ratio(ours, peer, a, b, kind) for label, a, b, kind in rows}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    args = ap.parse_args()
    if args.quick:
        sizes = {"calls": 300, "batch": 10_000, "runs": 20, "search": 300, "wandb": 2000}
    else:
        sizes = {"calls": 2000, "batch": 100_000, "runs": 200, "search": 5000, "wandb": 100_000}
    common = [
        "--batch-points",
        str(sizes["batch"]),
        "--runs",
        str(sizes["runs"]),
        "--search-runs",
        str(sizes["search"]),
    ]
    result: dict = {"bench": "peers", "sizes": sizes}
    ours = call(sys.executable, "ours_bench.py", ["--calls", str(sizes["wandb"]), *common])
    result["mltrail"] = ours
    if not PEERS_PY.exists():
        result["skipped"] = f"{PEERS_PY} missing: run bash bench/peers/setup_venv.sh"
        print(json.dumps(result))
        return
    for backend in ("sqlite", "file"):
        extra = ["--backend", backend, "--calls", str(sizes["calls"]), *common]
        peer = call(PEERS_PY, "mlflow_bench.py", extra)
        result[f"mlflow_{backend}"] = peer
        result[f"vs_mlflow_{backend}"] = ratios(ours, peer, MLFLOW_PAIRS)
    peer = call(PEERS_PY, "wandb_bench.py", ["--calls", str(sizes["wandb"])])
    result["wandb_offline"] = peer
    result["vs_wandb_offline"] = ratios(ours, peer, WANDB_PAIRS)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
