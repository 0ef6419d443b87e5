"""Run every bench script (``bench/bench_*.py``) in its own subprocess; print one JSON.

Each script prints one JSON object as its last stdout line; a script that fails is
reported as ``{"error": ..., "stderr_tail": [...]}`` and the others still run. A script
``bench_X.py`` appears under key ``X``. ``--peers`` also runs ``bench/peers/compare.py``
(needs ``bash bench/peers/setup_venv.sh`` first).

With ``--repeat 3`` each script runs three times and every figure is the median of the three
(the separate runs are kept under ``repeats``).

Usage: python bench/run_all.py [--only log,read] [--skip postgres] [--peers] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run_script(path: Path, timeout: float) -> dict:
    t0 = time.perf_counter()
    try:
        out = subprocess.run(
            [sys.executable, str(path)], capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    wall = round(time.perf_counter() - t0, 1)
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        return {
            "error": f"exit status {out.returncode}",
            "stderr_tail": out.stderr.strip().splitlines()[-10:],
            "wall_s": wall,
        }
    # one JSON line, or an indented object: try the last line, then growing tails
    for start in range(len(lines) - 1, -1, -1):
        if lines[start].startswith("{"):
            try:
                result: dict = json.loads("\n".join(lines[start:]))
            except json.JSONDecodeError:
                continue
            result["wall_s"] = wall
            return result
    return {"error": "no JSON object at the end of stdout", "stdout_tail": lines[-5:]}


def combine(runs: list) -> object:
    """Median of each number over repeats, majority of each bool (for an odd count the two
    agree: the median meets a threshold iff most runs do), the first of anything else."""
    first = runs[0]
    if isinstance(first, bool):
        return sum(bool(r) for r in runs) * 2 > len(runs)
    if isinstance(first, int | float) and all(isinstance(r, int | float) for r in runs):
        return statistics.median(runs)
    if isinstance(first, dict):
        return {k: combine([r[k] for r in runs if isinstance(r, dict) and k in r]) for k in first}
    return first


def machine() -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", help="comma-separated names (log,ingest,read,...)")
    ap.add_argument("--skip", default="", help="comma-separated names to leave out")
    ap.add_argument("--peers", action="store_true", help="also run bench/peers/compare.py")
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--repeat", type=int, default=1, help="runs per script; figures: medians")
    args = ap.parse_args()
    only = set(args.only.split(",")) if args.only else None
    skip = set(filter(None, args.skip.split(",")))
    results: dict = {"machine": machine(), "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    for path in sorted(HERE.glob("bench_*.py")):
        name = path.stem.removeprefix("bench_")
        if (only is not None and name not in only) or name in skip:
            continue
        print(f"running {path.name} ...", file=sys.stderr, flush=True)
        repeats = []
        for _ in range(args.repeat):
            load_before = os.getloadavg()[0]
            res = run_script(path, args.timeout)
            # another busy process on the machine skews figures: rerun when this is high
            res["loadavg_1min_before_after"] = [load_before, os.getloadavg()[0]]
            repeats.append(res)
        results[name] = combine(repeats)
        if args.repeat > 1:
            results[name]["repeats"] = repeats
    if args.peers:
        print("running peers/compare.py ...", file=sys.stderr, flush=True)
        results["peers"] = run_script(HERE / "peers" / "compare.py", args.timeout)
    missed = [
        f"{name}: {target}"
        for name, res in results.items()
        if isinstance(res, dict)
        for target, ok in (res.get("targets") or {}).items()
        if ok is False
    ]
    results["targets_missed"] = missed
    print(json.dumps(results))


if __name__ == "__main__":
    main()
