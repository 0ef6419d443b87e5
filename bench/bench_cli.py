"""CLI start-up and ``runs show`` of a wide run, each command in fresh subprocesses.

- ``small``: ``mltrail runs list``, ``runs list --json``, ``runs show RUN``, ``metrics RUN``
  on a store of 5 runs (2 keys x 10 steps each), and ``data status`` in a git repository
  tracking 10 small files: median wall seconds and median CPU seconds (user + sys) over
  ``--repeats`` runs, each command also forced through the Typer app (``typer_path``: what
  every command cost before the fast path), and which of typer, click, pydantic, rich,
  sqlalchemy and numpy the command imported (read from ``-X importtime``, not timed).
- ``wide``: ``mltrail runs show RUN`` of a run with 10^4 metric keys (10 steps each;
  10^3 with ``--quick``), plain and ``--json``.

The stores are built once through the SDK (capture off) and cached in the temporary
directory, keyed by the source tree and its schema migrations. ``--baseline-src DIR`` also
runs every command with ``PYTHONPATH=DIR`` (an older checkout's ``src``, with its own
stores), interleaved with ours (ABAB), for before/after figures on one loaded machine.

Targets (issue 12): each small command <= 0.2 s wall, the 10^4-key ``runs show`` <= 0.5 s.
Usage: python bench/bench_cli.py [--repeats N] [--quick] [--baseline-src DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WATCHED = ("typer", "click", "pydantic", "rich", "sqlalchemy", "numpy")
QUIET = {"MLTRAIL_CAPTURE": "0", "MLTRAIL_SYSTEM_METRICS_S": "0", "MLTRAIL_CONSOLE": "0"}
SMALL_TARGET_S = 0.2
WIDE_TARGET_S = 0.5

BUILD = """
import json, sys
import mltrail

store, keys = sys.argv[1], int(sys.argv[2])
ids = []
for i in range(5):
    run = mltrail.init(project="bench", name=f"run{i}", store=store + "/small")
    for step in range(10):
        run.log({"loss": 1.0 / (step + 1), "acc": step / 10}, step=step)
    run.finish()
    ids.append(run.run_id)
run = mltrail.init(project="wide", name="wide", store=store + "/wide")
for step in range(10):
    run.log({f"layer{k // 100:03d}/unit{k % 100:02d}": float(k + step) for k in range(keys)}, step)
run.finish()
print(json.dumps({"small": ids[-1], "wide": run.run_id}))
"""

TYPER = "import sys; from mltrail.cli.main import main; sys.argv[0] = 'mltrail'; main()"


def _env(src: str | None) -> dict[str, str]:
    env = {**os.environ, **QUIET}
    env.pop("MLTRAIL_STORE", None)
    if src is not None:
        env["PYTHONPATH"] = src
    return env


def _source_key(src: str | None) -> str:
    """Which tree and schema built a cached store (a new migration means a new store)."""
    root = Path(src) if src else Path(__file__).resolve().parents[1] / "src"
    migrations = sorted(p.name for p in root.glob("mltrail/store/sql/migrations/versions/*.py"))
    return hashlib.sha1(json.dumps([str(root), migrations]).encode()).hexdigest()[:12]


def _git(repo: Path, *args: str) -> None:
    ident = ["-c", "user.name=bench", "-c", "user.email=bench@localhost"]
    subprocess.run(["git", *ident, "-C", str(repo), *args], check=True, capture_output=True)


def prepare(src: str | None, keys: int) -> dict[str, str]:
    """The cached stores and data repo for ``src``: their paths and the run ids."""
    cache = Path(tempfile.gettempdir(), "mltrail-bench-cli", f"{_source_key(src)}-{keys}")
    ready = cache / "ready.json"
    if ready.exists():
        return json.loads(ready.read_text())
    shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir(parents=True)
    out = subprocess.run(
        [sys.executable, "-c", BUILD, str(cache), str(keys)],
        check=True,
        capture_output=True,
        text=True,
        env=_env(src),
    )
    info = json.loads(out.stdout.strip().splitlines()[-1])
    repo = cache / "repo"
    (repo / "d").mkdir(parents=True)
    for i in range(10):
        (repo / "d" / f"f{i}.txt").write_text(f"file {i}\n")
    _git(repo, "init", "-q")
    subprocess.run(
        [*_mltrail(), "data", "add", "-q", "d"],
        cwd=repo,
        check=True,
        env=_env(src),
        capture_output=True,
    )
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "data")
    info.update(root=str(cache), repo=str(repo))
    ready.write_text(json.dumps(info))
    return info


def _mltrail() -> list[str]:
    script = Path(sys.executable).with_name("mltrail")
    return [str(script)] if script.exists() else [sys.executable, "-m", "mltrail"]


def commands(info: dict[str, str]) -> dict[str, tuple[list[str], str | None]]:
    """Name -> (arguments after ``mltrail``, working directory)."""
    small = ["--store", f"{info['root']}/small"]
    wide = ["--store", f"{info['root']}/wide"]
    return {
        "runs list": (["runs", "list", *small], None),
        "runs list --json": (["runs", "list", "--json", *small], None),
        "runs show": (["runs", "show", info["small"], *small], None),
        "metrics": (["metrics", info["small"], *small], None),
        "data status": (["data", "status"], info["repo"]),
        "wide runs show": (["runs", "show", info["wide"], *wide], None),
        "wide runs show --json": (["runs", "show", info["wide"], "--json", *wide], None),
    }


def timed(argv: list[str], cwd: str | None, env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (user + sys) seconds of one run; it must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run(argv, cwd=cwd, env=env, capture_output=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        raise SystemExit(f"{argv} failed:\n{out.stderr.decode()[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def imported(argv: list[str], cwd: str | None, env: dict[str, str]) -> list[str]:
    """Which watched top-level packages the command imported (from ``-X importtime``)."""
    out = subprocess.run(
        argv, cwd=cwd, env={**env, "PYTHONPROFILEIMPORTTIME": "1"}, capture_output=True, text=True
    )
    names = {line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines()}
    return [m for m in WATCHED if m in names]


def _stats(xs: list[float]) -> float:
    return round(statistics.median(xs), 3)


def measure(
    sides: dict[str, dict[str, str]], repeats: int, typer_path: bool
) -> dict[str, dict[str, dict[str, object]]]:
    """Every command of every side, interleaved (ABAB), ``repeats`` times."""
    walls: dict[tuple[str, str, str], list[float]] = {}
    cpus: dict[tuple[str, str, str], list[float]] = {}
    for _ in range(repeats):
        for name in commands(next(iter(sides.values()))):
            for side, info in sides.items():
                args, cwd = commands(info)[name]
                src = info.get("src") or None
                ways = {"fast": [*_mltrail(), *args]}
                if typer_path:
                    ways["typer_path"] = [sys.executable, "-c", TYPER, *args]
                for way, argv in ways.items():
                    wall, cpu = timed(argv, cwd, _env(src))
                    walls.setdefault((side, name, way), []).append(wall)
                    cpus.setdefault((side, name, way), []).append(cpu)
    result: dict[str, dict[str, dict[str, object]]] = {}
    for side, info in sides.items():
        for name, (args, cwd) in commands(info).items():
            row: dict[str, object] = {
                "median_s": _stats(walls[side, name, "fast"]),
                "cpu_median_s": _stats(cpus[side, name, "fast"]),
                "imported": imported([*_mltrail(), *args], cwd, _env(info.get("src") or None)),
            }
            if typer_path:
                row["typer_path_median_s"] = _stats(walls[side, name, "typer_path"])
                row["typer_path_cpu_median_s"] = _stats(cpus[side, name, "typer_path"])
            result.setdefault(side, {})[name] = row
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="runs per command (median)")
    parser.add_argument("--quick", action="store_true", help="3 repeats, 10^3 keys")
    parser.add_argument("--baseline-src", metavar="DIR", help="an older checkout's src/")
    args = parser.parse_args()
    repeats = 3 if args.quick else args.repeats
    keys = 1_000 if args.quick else 10_000
    sides = {"ours": {**prepare(None, keys), "src": ""}}
    if args.baseline_src:
        base = str(Path(args.baseline_src).resolve())
        sides["baseline"] = {**prepare(base, keys), "src": base}
    results = measure(sides, repeats, typer_path=True)
    ours = results["ours"]
    targets = {
        f"{name} <= {SMALL_TARGET_S} s": ours[name]["median_s"] <= SMALL_TARGET_S  # type: ignore[operator]
        for name in ("runs list", "runs show", "metrics", "data status")
    }
    wide = f"runs show of {keys:,} keys <= {WIDE_TARGET_S} s"
    targets[wide] = ours["wide runs show"]["median_s"] <= WIDE_TARGET_S  # type: ignore[operator]
    out = {
        "bench": "cli",
        "repeats": repeats,
        "wide_keys": keys,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
        "results": results,
        "targets": targets,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
