"""The workloads every benchmark shares (ours and the peers'), so the comparisons match.

Plain Python with no mltrail import: the peer scripts import it from their own venv.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def run_params(i: int) -> dict:
    """The 10 params of run ``i``."""
    return {
        "lr": 10.0 ** -(1 + i % 5),
        "batch_size": 32 << (i % 4),
        "optimizer": ("adam", "sgd", "adamw")[i % 3],
        "dropout": (i % 10) / 10,
        "epochs": 10 + i % 7,
        "seed": i,
        "model.depth": 2 + i % 6,
        "model.width": 64 * (1 + i % 4),
        "use_amp": bool(i % 2),
        "scheduler": "cosine",
    }


def run_metrics(i: int) -> dict:
    """The 5 final metrics of run ``i``."""
    x = (i % 997) / 997
    return {"loss": 1 - x, "acc": x, "val_loss": 1.1 - x, "val_acc": x * 0.9, "lr_final": 1e-4}


def run_tags(i: int) -> dict:
    """The 3 tags of run ``i``."""
    return {"team": ("vision", "nlp")[i % 2], "git": f"{i:08x}", "stage": "sweep"}


def pct(ns: list[int]) -> dict:
    """p50, p99 and mean in µs of per-call times given in ns."""
    s = sorted(ns)
    n = len(s)
    return {
        "p50_us": round(s[n // 2] / 1000, 2),
        "p99_us": round(s[min(n - 1, int(0.99 * n))] / 1000, 2),
        "mean_us": round(statistics.fmean(s) / 1000, 2),
        "calls": n,
    }


def clean_repo_entry() -> str | None:
    """Run as ``python train.py`` from a clean git repository would: ``init()`` checks the
    entry point's repository (dirty code is refused by default) and records it, so give it a
    committed one-file repository rather than the mltrail checkout the benchmarks sit in."""
    repo = tempfile.mkdtemp(prefix="mltrail-bench-repo-")
    Path(repo, "train.py").write_text("# benchmark entry point\n")
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost", "-C", repo]
    try:
        for args in (["init", "-q"], ["add", "train.py"], ["commit", "-qm", "bench"]):
            subprocess.run([*git, *args], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        shutil.rmtree(repo, ignore_errors=True)
        return None  # no git: init() finds no repository to check
    sys.argv[0] = str(Path(repo, "train.py"))
    return repo
