"""Start-up costs, each in fresh subprocesses (median over repeats).

- ``import``: ``import mltrail`` timed inside a fresh interpreter (median of 10); which
  heavy modules it pulled in (sqlalchemy, numpy, fastapi, optuna, torch, pyarrow must not be
  there) and every third-party top-level package it loaded.
- ``init``: ``mltrail.init()`` return time in a fresh interpreter (median of 10), on a store
  that already exists and on a new folder; which heavy modules were loaded at its return.
- ``script``: wall time of ``python empty_run.py`` (``import mltrail; init().finish()``,
  median of 5), existing store and new folder; the bare interpreter for reference.

The scripts are committed in a fresh one-commit git repository and run from it, as a user
runs a training script: ``init()`` checks and records the entry point's repository. The
``capture_off`` figures repeat init and script with MLTRAIL_CAPTURE=0,
MLTRAIL_SYSTEM_METRICS_S=0 and MLTRAIL_CONSOLE=0, to split tracking from state capture.

Targets: import <= 100 ms, init <= 100 ms, whole empty-run script <= 0.6 s.
Usage: python bench/bench_startup.py
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEAVY = ("sqlalchemy", "numpy", "fastapi", "optuna", "torch", "pyarrow")
BARE = {"MLTRAIL_CAPTURE": "0", "MLTRAIL_SYSTEM_METRICS_S": "0", "MLTRAIL_CONSOLE": "0"}

IMPORT_PROBE = f"""
import json, sys, time
t0 = time.perf_counter()
import mltrail
dt = time.perf_counter() - t0
skip = set(sys.stdlib_module_names) | {{"__main__", "_distutils_hack"}}
tops = sorted({{m.split(".")[0] for m in sys.modules}} - skip)
heavy = [m for m in {HEAVY!r} if m in sys.modules]
print(json.dumps({{"s": dt, "heavy": heavy, "third_party": tops}}))
"""

INIT_PROBE = f"""
import json, sys, time
import mltrail
t0 = time.perf_counter()
run = mltrail.init(project="bench", store=sys.argv[1])
dt = time.perf_counter() - t0
heavy = [m for m in {HEAVY!r} if m in sys.modules]
run.finish()
print(json.dumps({{"s": dt, "heavy_at_return": heavy}}))
"""

EMPTY_RUN = """import sys
import mltrail
mltrail.init(project="bench", store=sys.argv[1]).finish()
"""


def make_repo(root: str) -> Path:
    repo = Path(root, "repo")
    repo.mkdir()
    (repo / "init_probe.py").write_text(INIT_PROBE)
    (repo / "empty_run.py").write_text(EMPTY_RUN)
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost", "-C", str(repo)]
    for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "bench"]):
        subprocess.run([*git, *args], check=True, capture_output=True)
    return repo


def run(argv: list[str], cwd: Path | None = None, env: dict | None = None) -> tuple[float, str]:
    t0 = time.perf_counter()
    out = subprocess.run(
        argv, check=True, capture_output=True, text=True, cwd=cwd, env={**os.environ, **(env or {})}
    )
    return time.perf_counter() - t0, out.stdout


def probe(argv: list[str], cwd: Path | None = None, env: dict | None = None) -> dict:
    result: dict = json.loads(run(argv, cwd, env)[1].strip().splitlines()[-1])
    return result


def ms(xs: list[float]) -> float:
    return round(statistics.median(xs) * 1000, 1)


def main() -> None:
    py = sys.executable
    imports = [probe([py, "-c", IMPORT_PROBE]) for _ in range(10)]
    imp = {
        "median_ms": ms([r["s"] for r in imports]),
        "min_ms": round(min(r["s"] for r in imports) * 1000, 1),
        "heavy_imported": imports[-1]["heavy"],
        "third_party_imported": imports[-1]["third_party"],
    }
    root = tempfile.mkdtemp(prefix="mltrail-bench-startup-")
    try:
        repo = make_repo(root)
        existing = os.path.join(root, "store")
        init_py, empty_py = [py, "init_probe.py"], [py, "empty_run.py"]
        probe([*init_py, existing], repo)  # create the store and its schema once
        init: dict = {}
        script: dict = {}
        for label, env in (("", None), ("capture_off_", BARE)):
            olds = [probe([*init_py, existing], repo, env) for _ in range(10)]
            news = [probe([*init_py, f"{root}/new-{label}{i}"], repo, env) for i in range(10)]
            init[f"{label}existing_store_median_ms"] = ms([r["s"] for r in olds])
            init[f"{label}new_store_median_ms"] = ms([r["s"] for r in news])
            heavy = sorted({m for r in olds for m in r["heavy_at_return"]})
            init[f"{label}heavy_imported_at_return"] = heavy
            walls = [run([*empty_py, existing], repo, env)[0] for _ in range(5)]
            new_walls = [run([*empty_py, f"{root}/s-{label}{i}"], repo, env)[0] for i in range(5)]
            script[f"{label}existing_store_median_s"] = round(statistics.median(walls), 3)
            script[f"{label}new_store_median_s"] = round(statistics.median(new_walls), 3)
        bare = [run([py, "-c", "pass"])[0] for _ in range(5)]
        imp_only = [run([py, "-c", "import mltrail"])[0] for _ in range(5)]
        script["bare_python_median_s"] = round(statistics.median(bare), 3)
        script["python_import_mltrail_median_s"] = round(statistics.median(imp_only), 3)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    targets = {
        "import <= 100 ms": imp["median_ms"] <= 100,
        "no heavy module on import": not imp["heavy_imported"],
    }
    for label, note in (("", ""), ("capture_off_", ", capture off")):
        for store in ("existing", "new"):
            init_ms = init[f"{label}{store}_store_median_ms"]
            targets[f"init <= 100 ms ({store} store{note})"] = init_ms <= 100
            script_s = script[f"{label}{store}_store_median_s"]
            targets[f"script <= 0.6 s ({store} store{note})"] = script_s <= 0.6
    out = {"bench": "startup", "import": imp, "init": init, "script": script, "targets": targets}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
