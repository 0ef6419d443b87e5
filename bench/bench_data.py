"""Data versioning, mltrail against DVC, same data, same run, back to back.

Two git repositories get byte-identical data (10,000 × 4 KiB files, and a 1 GiB file; seeded
random bytes). Each operation runs as a whole CLI process (``mltrail data ...`` from this
venv, ``dvc ...`` from bench/.venv-peers), mltrail then DVC, so both see the same page cache:

- ``add`` of the 10k files; ``add`` of the 1 GiB file;
- no-op ``status`` over the 10k files (also the library call ``mltrail.data.status.status``
  in-process, without interpreter start-up and imports);
- ``push`` of the 10k files to a local-directory remote;
- ``checkout`` of them after deleting the folder;
- with ``MLTRAIL_S3_ENDPOINT`` set: push and pull throughput of mltrail to the S3-compatible
  server (the 10k files, and the 1 GiB file).

Prints one JSON object: per operation ``mltrail_s``, ``dvc_s`` and ``ratio`` (DVC time /
mltrail time: above 1 means mltrail is faster).

The generated data is flushed to disk (``sync``) before the first timing unless ``--dirty``.

Usage: python bench/bench_data.py [--files N] [--big-mib M] [--root DIR] [--dirty]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "peers"))
import dvc_bench  # noqa: E402

MLTRAIL = Path(sys.executable).parent / "mltrail"


def _env() -> dict[str, str]:
    return dict(os.environ, GIT_CONFIG_NOSYSTEM="1", MLTRAIL_ALLOW_DIRTY="1")


def ours(repo: Path, *args: str) -> float:
    """Run ``mltrail data ARGS -q`` in ``repo``; return its wall time."""
    t = time.perf_counter()
    done = subprocess.run([str(MLTRAIL), "data", *args], cwd=repo, capture_output=True, env=_env())
    elapsed = time.perf_counter() - t
    if done.returncode != 0:
        raise RuntimeError(f"mltrail data {' '.join(args)}: {done.stderr.decode()[-2000:]}")
    return elapsed


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, env=_env())


def _init_ours(repo: Path, remote: Path) -> None:
    repo.mkdir(parents=True)
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "config", "user.name", "bench")
    _git(repo, "config", "user.email", "bench@example.com")
    (repo / "README").write_text("bench\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "init")
    ours(repo, "remote", "add", "local", str(remote), "--default")


def _small_files(dest: Path, n: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    dest.mkdir(parents=True)
    for i in range(n):
        (dest / f"f{i:05d}.bin").write_bytes(rng.randbytes(4096))


def _big_file(dest: Path, mib: int, seed: int = 2) -> None:
    rng = random.Random(seed)
    with open(dest, "wb") as fh:
        for _ in range(0, mib, 64):
            fh.write(rng.randbytes(64 << 20))


def _rmtree(path: Path) -> None:
    for folder, _dirs, _files in os.walk(path):
        os.chmod(folder, 0o755)
    shutil.rmtree(path)


def _pair(out: dict[str, dict[str, float]], name: str, ours_s: float, dvc_s: float | None) -> None:
    row: dict[str, float] = {"mltrail_s": round(ours_s, 4)}
    if dvc_s is not None:
        row["dvc_s"] = round(dvc_s, 4)
        row["ratio"] = round(dvc_s / ours_s, 2)
    out[name] = row


def _library_status(repo: Path) -> float:
    code = (
        "import time, os\n"
        "t0 = time.perf_counter()\n"
        "from mltrail.data.status import status\nfrom mltrail.data.repo import DataRepo\n"
        "t1 = time.perf_counter()\n"
        "best = min(((lambda t: (status(DataRepo.discover()), time.perf_counter() - t)[1])"
        "(time.perf_counter()) for _ in range(5)))\n"
        "print(best, t1 - t0)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, env=_env()
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return float(done.stdout.split()[0])


def _s3(repo: Path, out: dict[str, object]) -> None:
    endpoint = os.environ.get("MLTRAIL_S3_ENDPOINT")
    if not endpoint:
        out["s3"] = {"skipped": "set MLTRAIL_S3_ENDPOINT to measure S3 throughput"}
        return
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    from mltrail.objects.fsspec_store import filesystem

    bucket = f"mltrail-bench-{uuid.uuid4().hex[:8]}"
    fs, _ = filesystem(f"s3://{bucket}")
    fs.mkdir(bucket)
    try:
        ours(repo, "remote", "add", "s3", f"s3://{bucket}/data")
        rows: dict[str, object] = {"endpoint": endpoint}
        items = (
            ("small", "small", _du(repo / "small")),
            ("big", "big.bin", (repo / "big.bin").stat().st_size),
        )
        pushed = {
            label: ours(repo, "push", "-q", "--remote", "s3", "-j", "16", path)
            for label, path, _ in items
        }
        for label, path, nbytes in items:
            _rmtree(repo / ".mltrail" / "cache")
            (repo / path).unlink() if (repo / path).is_file() else _rmtree(repo / path)
            pull_s = ours(repo, "pull", "-q", "--remote", "s3", "-j", "16", path)
            rows[label] = {
                "bytes": nbytes,
                "push_s": round(pushed[label], 3),
                "pull_s": round(pull_s, 3),
                "push_mib_s": round(nbytes / pushed[label] / 2**20, 1),
                "pull_mib_s": round(nbytes / pull_s / 2**20, 1),
            }
        out["s3"] = rows
    finally:
        fs.rm(bucket, recursive=True)


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--big-mib", type=int, default=1024)
    parser.add_argument("--root", type=Path, default=None)
    parser.add_argument(
        "--dirty",
        action="store_true",
        help="Do not flush the generated data before timing (add then pays its writeback).",
    )
    args = parser.parse_args()
    root = args.root or Path(tempfile.mkdtemp(prefix="mltrail-bench-data-"))
    have_dvc = dvc_bench.available()
    out: dict[str, object] = {
        "files": args.files,
        "dirty": args.dirty,
        "big_mib": args.big_mib,
        "dvc": dvc_bench.version() if have_dvc else None,
        "cpus": os.cpu_count(),
    }
    ops: dict[str, dict[str, float]] = {}
    try:
        mine, theirs = root / "mltrail-repo", root / "dvc-repo"
        _init_ours(mine, root / "mltrail-remote")
        if have_dvc:
            dvc_bench.init_repo(theirs, root / "dvc-remote")
        for repo in [mine] + ([theirs] if have_dvc else []):
            _small_files(repo / "small", args.files)
            _big_file(repo / "big.bin", args.big_mib)
        if not args.dirty:
            # Write the generated data back before timing: mltrail's add makes its objects
            # durable with syncfs(2), which would otherwise also flush the other repo's and
            # the other files' gigabytes the generator just wrote (DVC does not sync at all).
            os.sync()

        def both(name: str, mine_args: list[str], dvc_args: list[str]) -> None:
            a = ours(mine, *mine_args)
            b = dvc_bench.dvc(theirs, *dvc_args) if have_dvc else None
            _pair(ops, name, a, b)

        both("add_10k_small", ["add", "-q", "small"], ["add", "-q", "small"])
        both("add_1gib_file", ["add", "-q", "big.bin"], ["add", "-q", "big.bin"])
        both("status_noop_cli", ["status"], ["status", "-q"])
        ops["status_noop_cli"]["library_s"] = round(_library_status(mine), 4)
        both("push_10k_local", ["push", "-q", "small"], ["push", "-q", "small.dvc"])
        _rmtree(mine / "small")
        if have_dvc:
            _rmtree(theirs / "small")
        both("checkout_10k", ["checkout", "-q", "small"], ["checkout", "-q", "small.dvc"])
        out["ops"] = ops
        try:
            _s3(mine, out)
        except Exception as exc:  # report the local figures even if the S3 server is gone
            out["s3"] = {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        if args.root is None:
            shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
