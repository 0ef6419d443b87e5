"""DVC's side of bench/bench_data.py: the same data-versioning operations, timed end to end.

DVC runs as its own CLI from bench/.venv-peers (DVC 3.67 there; set DVC_BIN to use another),
so each figure is a whole `dvc ...` process, as a user runs it. bench_data.py imports this
module and alternates mltrail's and DVC's runs of each operation on identical data.

Standalone: ``python bench/peers/dvc_bench.py --root DIR`` makes a repository of 10,000 ×
4 KiB files there and prints the DVC timings as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DVC_BIN = Path(os.environ.get("DVC_BIN", HERE.parent / ".venv-peers" / "bin" / "dvc"))

__all__ = ["DVC_BIN", "available", "dvc", "init_repo", "version"]


def available() -> bool:
    """Whether the DVC CLI is installed where the bench looks."""
    return DVC_BIN.exists()


def _env() -> dict[str, str]:
    env = dict(os.environ, DVC_NO_ANALYTICS="1", GIT_CONFIG_NOSYSTEM="1")
    env.pop("VIRTUAL_ENV", None)
    return env


def version() -> str:
    """``dvc --version``."""
    out = subprocess.run([str(DVC_BIN), "--version"], capture_output=True, text=True, env=_env())
    return out.stdout.strip()


def dvc(repo: Path, *args: str) -> float:
    """Run ``dvc ARGS`` in ``repo``; return its wall time in seconds (raises on failure)."""
    t = time.perf_counter()
    done = subprocess.run([str(DVC_BIN), *args], cwd=repo, capture_output=True, env=_env())
    elapsed = time.perf_counter() - t
    if done.returncode != 0:
        raise RuntimeError(f"dvc {' '.join(args)}: {done.stderr.decode()[-2000:]}")
    return elapsed


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, env=_env())


def init_repo(repo: Path, remote: Path) -> None:
    """``git init`` + ``dvc init`` in ``repo`` with a local default remote at ``remote``."""
    repo.mkdir(parents=True, exist_ok=True)
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "config", "user.name", "bench")
    _git(repo, "config", "user.email", "bench@example.com")
    dvc(repo, "init", "-q")
    dvc(repo, "remote", "add", "-d", "local", str(remote))
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "init")


def main() -> None:
    """Standalone: DVC timings for 10k small files."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--files", type=int, default=10_000)
    args = parser.parse_args()
    if not available():
        print(json.dumps({"error": f"DVC not found at {DVC_BIN}"}))
        sys.exit(1)
    repo, remote = args.root / "dvc-repo", args.root / "dvc-remote"
    shutil.rmtree(args.root, ignore_errors=True)
    init_repo(repo, remote)
    small = repo / "small"
    small.mkdir()
    rng = os.urandom
    for i in range(args.files):
        (small / f"f{i:05d}.bin").write_bytes(rng(4096))
    out = {"dvc": version(), "files": args.files}
    out["add_small_s"] = dvc(repo, "add", "-q", "small")
    out["status_noop_s"] = dvc(repo, "status", "-q")
    out["push_small_s"] = dvc(repo, "push", "-q", "small.dvc")
    shutil.rmtree(small)
    out["checkout_small_s"] = dvc(repo, "checkout", "-q", "small.dvc")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
