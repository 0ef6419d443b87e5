"""What ``mltrail reproduce`` costs: the series comparison, the plan, a whole reproduction.

Prints one JSON object:

- ``compare``: :func:`mltrail.repro.compare.compare_series` over 1M points (bitwise identical;
  and one point off), median of 5, in ms;
- ``digits``: the scikit-learn example (``examples/repro_sklearn_digits.py``) in a throwaway
  git repository: the original run, ``reproduce --dry-run``, ``reproduce --env current``, and
  with ``--rebuild`` also ``reproduce --env rebuild`` (a fresh virtual environment of every
  package the run recorded, with uv when installed), wall seconds of each process.

    python bench/bench_repro.py [--rebuild]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def _median_ms(fn: Any, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 2)


def bench_compare(n: int = 1_000_000) -> dict[str, Any]:
    from mltrail.repro.compare import compare_series

    steps = np.arange(n, dtype=np.int64)
    a = np.random.default_rng(0).normal(size=n)
    b = a.copy()
    off = a.copy()
    off[n // 2] = np.nextafter(off[n // 2], np.inf)
    return {
        "points": n,
        "identical_ms": _median_ms(lambda: compare_series("k", steps, a, steps, b)),
        "one_ulp_off_ms": _median_ms(lambda: compare_series("k", steps, a, steps, off)),
    }


def _timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return round(wall, 3), done.stdout


def bench_digits(rebuild: bool) -> dict[str, Any]:
    from mltrail.testing.repos import init_repo

    script = (ROOT / "examples" / "repro_sklearn_digits.py").read_text()
    env = {**os.environ, "MLTRAIL_SYSTEM_METRICS_S": "0", "GIT_CONFIG_NOSYSTEM": "1"}
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="mltrail-bench-repro-") as tmp:
        repo = init_repo(Path(tmp) / "repo", {"train.py": script, ".gitignore": ".mltrail/\n"})
        out["original_s"], stdout = _timed([sys.executable, "train.py"], repo, env)
        run_id = stdout.split("logged run ")[1].split()[0]
        cli = [sys.executable, "-m", "mltrail", "reproduce", run_id]
        out["dry_run_s"], _ = _timed([*cli, "--dry-run"], repo, env)
        out["reproduce_current_s"], stdout = _timed([*cli, "--json"], repo, env)
        out["verdict_current"] = json.loads(stdout)["outcome"]["verdict"]
        if rebuild:
            out["reproduce_rebuild_s"], stdout = _timed(
                [*cli, "--env", "rebuild", "--json"], repo, env
            )
            result = json.loads(stdout)
            out["verdict_rebuild"] = result["outcome"]["verdict"]
            out["rebuilt"] = result["environment"]["rebuilt"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rebuild", action="store_true", help="also time --env rebuild")
    args = parser.parse_args()
    result = {"compare": bench_compare(), "digits": bench_digits(args.rebuild)}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
