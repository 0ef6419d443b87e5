"""Cost of capturing a run's state, on a real 5,000-file git repository.

Builds a repository of 5,000 small files (50 folders of 100) with one commit, then makes it
dirty (3 modified tracked files, 2 untracked files) and adds a uv.lock and requirements.txt
at its root. Then times ``capture_code``, ``capture_environment``, ``capture_hardware``,
``capture_config`` and ``capture_seeds``, each alone and all together:

- ``warm``: in this process, median of 10 calls after one warm-up call;
- ``cold``: the first call in a fresh interpreter (what ``init()`` pays once per process:
  first imports, first ``importlib.metadata`` scan), median over 5 fresh interpreters.
  ``all`` there counts importing the capture modules plus the five captures, not
  ``import mltrail`` itself (reported apart as ``import_mltrail``: init() has paid it);
- ``racy_index_first_capture_ms``: ``capture_code`` right after the files were written and
  committed, before any git command refreshed the index (git must re-hash files whose
  timestamps tie with the index; captures never take the index lock to refresh it).

Target: all five together <= 150 ms (cold and warm).
Usage: python bench/bench_capture.py
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

FOLDERS, FILES_PER_FOLDER = 50, 100
CONFIG = {
    "model": {"depth": 12, "width": 768, "heads": 12, "dropout": 0.1},
    "optim": {"name": "adamw", "lr": 3e-4, "betas": (0.9, 0.95), "weight_decay": 0.1},
    "data": {"path": "/data/train", "batch_size": 64, "workers": 8},
    "trainer": {f"flag_{i}": i for i in range(40)},
}

COLD_PROBE = """
import json, sys, time
from pathlib import Path
repo, config = Path(sys.argv[1]), json.loads(sys.argv[2])
t = {}
t0 = time.perf_counter()
import mltrail
t["import_mltrail"] = time.perf_counter() - t0
t0 = time.perf_counter()
from mltrail.capture.git import capture_code
from mltrail.capture.environment import capture_environment
from mltrail.capture.hardware import capture_hardware
from mltrail.capture.config import capture_config
from mltrail.capture.seeds import capture_seeds
t["import_capture"] = time.perf_counter() - t0
for name, call in [
    ("code", lambda: capture_code(repo / "train.py")),
    ("environment", lambda: capture_environment(repo)),
    ("hardware", capture_hardware),
    ("config", lambda: capture_config(config)),
    ("seeds", capture_seeds),
]:
    s = time.perf_counter(); call(); t[name] = time.perf_counter() - s
t["all"] = time.perf_counter() - t0
print(json.dumps(t))
"""


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


def make_repo(root: Path) -> None:
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "bench")
    git(root, "config", "user.email", "bench@example.com")
    for d in range(FOLDERS):
        folder = root / f"pkg{d:02d}"
        folder.mkdir()
        for f in range(FILES_PER_FOLDER):
            (folder / f"mod{f:03d}.py").write_text(f"VALUE = {d * 1000 + f}\n")
    (root / "train.py").write_text("print('train')\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    for d in range(3):
        (root / f"pkg{d:02d}" / "mod000.py").write_text(f"VALUE = {-d}\n# changed\n")
    (root / "scratch.txt").write_text("notes")
    (root / "pkg00" / "new_module.py").write_text("NEW = 1\n")
    (root / "uv.lock").write_text("version = 1\n" + "# lock line\n" * 2000)
    (root / "requirements.txt").write_text("numpy>=1.26\ntorch\n")


def median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 2)


def warm(calls: dict[str, object]) -> dict[str, float]:
    result: dict[str, float] = {}
    for name, call in calls.items():
        call()  # type: ignore[operator]
        samples = []
        for _ in range(10):
            t0 = time.perf_counter()
            call()  # type: ignore[operator]
            samples.append(time.perf_counter() - t0)
        result[name] = median_ms(samples)
    return result


def cold(repo: Path) -> dict[str, float]:
    runs = []
    for _ in range(5):
        out = subprocess.run(
            [sys.executable, "-c", COLD_PROBE, str(repo), json.dumps(CONFIG)],
            check=True,
            capture_output=True,
            text=True,
        )
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {key: median_ms([r[key] for r in runs]) for key in runs[0]}


def main() -> None:
    from mltrail.capture.config import capture_config
    from mltrail.capture.environment import capture_environment
    from mltrail.capture.git import capture_code
    from mltrail.capture.hardware import capture_hardware
    from mltrail.capture.seeds import capture_seeds

    tmp = Path(tempfile.mkdtemp(prefix="mltrail-bench-capture-"))
    try:
        repo = tmp / "repo"
        repo.mkdir()
        make_repo(repo)
        t0 = time.perf_counter()
        first = capture_code(repo / "train.py")
        racy_ms = round((time.perf_counter() - t0) * 1000, 2)
        git(repo, "update-index", "-q", "--refresh")  # what any `git status` by the user does
        calls = {
            "code": lambda: capture_code(repo / "train.py"),
            "environment": lambda: capture_environment(repo),
            "hardware": capture_hardware,
            "config": lambda: capture_config(CONFIG),
            "seeds": capture_seeds,
        }
        calls["all"] = lambda: [call() for call in list(calls.values())[:5]]
        warm_ms = warm(calls)
        cold_ms = cold(repo)
        repo_info = first.data["repos"][0]
        hardware = capture_hardware().data
        env = capture_environment(repo).data
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(
        json.dumps(
            {
                "bench": "capture",
                "repo": {
                    "tracked_files": FOLDERS * FILES_PER_FOLDER + 1,
                    "changed_files": len(repo_info["changed_files"]),
                    "untracked": len(repo_info["untracked"]),
                    "diff_stats": repo_info["diff_stats"],
                },
                "packages": len(env["packages"]),
                "lock_files": [e["path"] for e in env["lock_files"]],
                "nvml": hardware["nvml"],
                "cpu": hardware["cpu"]["model"],
                "cores": os.cpu_count(),
                "warm_median_ms": warm_ms,
                "cold_first_call_median_ms": cold_ms,
                "racy_index_first_capture_ms": racy_ms,
                "targets": {
                    "all <= 150 ms (warm)": warm_ms["all"] <= 150,
                    "all <= 150 ms (cold, incl. imports)": cold_ms["all"] <= 150,
                },
            }
        )
    )


if __name__ == "__main__":
    main()
