"""Run mltrail and its peers on the same workloads, interleaved, and print the ratios.

ours_bench.py runs in this interpreter's venv; mlflow_bench.py (SQLite and file backends)
and wandb_bench.py run in bench/.venv-peers (create it with bench/peers/setup_venv.sh).
Every ratio reads "mltrail is N times faster" (peer time / our time, or our rate / peer rate);
below 1 means the peer is faster.

Method: ``--reps`` rounds (default 3), each running every side once in the same order
(ours, ours with MLTRAIL_DURABILITY=call, MLflow SQLite, MLflow files, W&B offline), so a
drift in the machine's load hits every side alike; each figure is the median over the
rounds, and the load average before each call is recorded. Each side's durability is stated
(``durability``): MLflow's SQLite backend commits every call (like our ``call`` mode, which
its ratios use); its file backend and W&B offline write without syncing (like our
``process``); our default ``batch`` syncs once per flush interval.

Usage: python bench/peers/compare.py [--quick] [--reps 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PEERS_PY = HERE.parent / ".venv-peers" / "bin" / "python"


DURABILITY = {
    "mltrail": "batch (default): spool and store log synced once per flush interval and at "
    "each run's end; a killed process loses nothing",
    "mltrail_call": "call: every call synced before it returns (MLTRAIL_DURABILITY=call)",
    "mlflow_sqlite": "call: every call is a committed SQLite transaction",
    "mlflow_file": "process: files written, never synced",
    "wandb_offline": "process: a local log file written in the background, never synced",
}


def call(
    python: Path | str,
    script: str,
    args: list[str],
    timeout: float = 1800,
    env: dict[str, str] | None = None,
) -> dict:
    out = subprocess.run(
        [str(python), str(HERE / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
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


def medians(samples: list[dict]) -> dict:
    """The median of every numeric leaf over the rounds (other leaves from the first)."""
    first = samples[0]
    if "error" in first:
        return first
    out: dict = {}
    for key, value in first.items():
        if isinstance(value, dict):
            out[key] = medians([s.get(key, {}) for s in samples if isinstance(s.get(key), dict)])
        elif isinstance(value, int | float) and not isinstance(value, bool):
            nums = [s[key] for s in samples if isinstance(s.get(key), int | float)]
            out[key] = round(statistics.median(nums), 4)
        else:
            out[key] = value
    return out


def ratios(ours: dict, peer: dict, table: str) -> dict:
    rows = [[x.strip() for x in line.split("|")] for line in table.strip().splitlines()]
    return {label: ratio(ours, peer, a, b, kind) for label, a, b, kind in rows}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    ap.add_argument("--reps", type=int, default=3, help="interleaved rounds (medians)")
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
    ours_args = ["--calls", str(sizes["wandb"]), *common]
    sides: dict[str, tuple[Path | str, str, list[str], dict[str, str] | None]] = {
        "mltrail": (sys.executable, "ours_bench.py", ours_args, None),
        "mltrail_call": (
            sys.executable,
            "ours_bench.py",
            ours_args,
            dict(os.environ, MLTRAIL_DURABILITY="call"),
        ),
    }
    result: dict = {"bench": "peers", "sizes": sizes, "reps": args.reps}
    if PEERS_PY.exists():
        for backend in ("sqlite", "file"):
            extra = ["--backend", backend, "--calls", str(sizes["calls"]), *common]
            sides[f"mlflow_{backend}"] = (PEERS_PY, "mlflow_bench.py", extra, None)
        sides["wandb_offline"] = (
            PEERS_PY,
            "wandb_bench.py",
            ["--calls", str(sizes["wandb"])],
            None,
        )
    else:
        result["skipped"] = f"{PEERS_PY} missing: run bash bench/peers/setup_venv.sh"
    samples: dict[str, list[dict]] = {name: [] for name in sides}
    loads: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(args.reps):
        for name, (python, script, argv, env) in sides.items():
            loads[name].append(round(os.getloadavg()[0], 2))
            samples[name].append(call(python, script, argv, env=env))
    for name in sides:
        result[name] = medians(samples[name])
    result["load_avg_before_each_call"] = loads
    result["durability"] = {k: v for k, v in DURABILITY.items() if k in sides}
    ours, ours_call = result["mltrail"], result["mltrail_call"]
    for backend in ("sqlite", "file"):
        peer = result.get(f"mlflow_{backend}")
        if peer is None:
            continue
        like = ours_call if backend == "sqlite" else ours  # like with like: durability
        result[f"vs_mlflow_{backend}"] = ratios(like, peer, MLFLOW_PAIRS)
        result[f"vs_mlflow_{backend}_ours_default"] = ratios(ours, peer, MLFLOW_PAIRS)
    if "wandb_offline" in result:
        result["vs_wandb_offline"] = ratios(ours, result["wandb_offline"], WANDB_PAIRS)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
