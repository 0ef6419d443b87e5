"""Benchmarks of the object layer (mltrail.objects); prints one JSON object.

Figures (seconds unless named otherwise), each the median of ``--repeat`` fresh runs:

- ``add_10k_4k_s``: ``build`` of 10,000 x 4 KiB files (100 directories) into an empty cache
  (auto link mode: hardlinks on ext4), durable (syncfs) and indexed;
- ``status_noop_10k_s``: the same directory hashed again with the index (nothing changed);
- ``checkout_10k_cold_s``: checkout into an empty directory, every object verified by hashing;
  ``checkout_10k_s``: the same again (every object is hashed on every checkout: bit rot keeps
  size and mtime, so the index cannot vouch for cache objects); ``checkout_10k_noverify_s``:
  the same with ``verify=False``, so ``checkout_verify_cost_s`` is what verifying costs;
- ``verify_10k_s`` / ``verify_10k_mb_per_s`` / ``verify_10k_objects_per_s``: ``fsck`` of that
  cache (``mltrail data verify``: every object read and hashed, trees parsed);
- ``verify_1gib_s`` / ``verify_1gib_mb_per_s``: verifying the 1 GiB object (blake3, mmap, every
  core), as checkout and pull do before placing it;
- ``push_10k_local_s``: push of the 10k objects + tree to an empty local-directory remote;
- ``add_1gib_s``: ``build`` of one 1 GiB file (created in /tmp, deleted after);
- ``s3_*``: push/pull to a SeaweedFS server on 127.0.0.1 (objects/s and MB/s), when ``weed``
  is available or MLTRAIL_S3_ENDPOINT is set.

The data is written and ``sync``-ed before each timed step, so the timings do not include
flushing the benchmark's own setup writes. Usage: python bench/bench_objects.py [--repeat 3]
[--no-s3] [--no-1g]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from mltrail.objects.build import build  # noqa: E402
from mltrail.objects.cache import Cache  # noqa: E402
from mltrail.objects.checkout import checkout  # noqa: E402
from mltrail.objects.fsck import fsck  # noqa: E402
from mltrail.objects.registry import open_object_store  # noqa: E402
from mltrail.objects.transfer import pull, push  # noqa: E402


def _files(root: Path, n: int = 10_000, size: int = 4096) -> None:
    for d in range(100):
        (root / f"d{d:02}").mkdir(parents=True)
    for i in range(n):
        with open(root / f"d{i % 100:02}" / f"f{i:05}.bin", "wb") as f:
            f.write(os.urandom(size))
    os.sync()
    time.sleep(0.05)  # out of the index's racy window


def _timed(fn):  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def small_files(base: Path) -> dict[str, float]:
    data = base / "data"
    _files(data)
    cache = Cache(base / "cache")
    out: dict[str, float] = {}
    out["add_10k_4k_s"], r = _timed(lambda: build(data, cache))
    out["status_noop_10k_s"], r2 = _timed(lambda: build(data, cache, store=False))
    assert r2.digest == r.digest
    os.sync()
    out["checkout_10k_cold_s"], _ = _timed(lambda: checkout(r.digest, cache, base / "co1"))
    out["checkout_10k_s"], _ = _timed(lambda: checkout(r.digest, cache, base / "co2"))
    out["checkout_10k_noop_s"], _ = _timed(lambda: checkout(r.digest, cache, base / "co2"))
    out["checkout_10k_noverify_s"], _ = _timed(
        lambda: checkout(r.digest, cache, base / "co3", verify=False)
    )
    out["checkout_verify_cost_s"] = out["checkout_10k_s"] - out["checkout_10k_noverify_s"]
    out["verify_10k_s"], report = _timed(lambda: fsck(cache))
    assert report.ok and report.checked == 10_001, report
    out["verify_10k_mb_per_s"] = report.bytes / 1e6 / out["verify_10k_s"]
    out["verify_10k_objects_per_s"] = report.checked / out["verify_10k_s"]
    remote = open_object_store(base / "remote")
    os.sync()
    out["push_10k_local_s"], res = _timed(lambda: push(cache, remote, [r.digest], progress=False))
    assert res.transferred == 10_001, res
    cache.close()
    return out


def one_gib(base: Path) -> dict[str, float]:
    big = base / "big.bin"
    chunk = os.urandom(8 << 20)
    with open(big, "wb") as f:
        for _ in range(128):
            f.write(chunk)
    os.sync()
    cache = Cache(base / "cache1g")
    t, r = _timed(lambda: build(big, cache))
    big.unlink()
    assert r.size == 1 << 30
    tv, _ = _timed(lambda: cache.verify(r.digest))
    cache.close()
    return {"add_1gib_s": t, "verify_1gib_s": tv, "verify_1gib_mb_per_s": (1 << 30) / 1e6 / tv}


def s3(base: Path) -> dict[str, float]:
    from mltrail.testing.s3 import find_weed, new_bucket, seaweedfs

    if not os.environ.get("MLTRAIL_S3_ENDPOINT") and find_weed() is None:
        return {}
    out: dict[str, float] = {}
    with seaweedfs() as endpoint:
        os.environ["MLTRAIL_S3_ENDPOINT"] = endpoint
        data = base / "s3data"
        _files(data, n=2000, size=4096)
        big = base / "s3big"
        big.mkdir()
        (big / "blob.bin").write_bytes(os.urandom(256 << 20))
        os.sync()
        with Cache(base / "s3cache") as cache:
            small = build(data, cache).digest
            large = build(big, cache).digest
            remote = open_object_store(f"{new_bucket(endpoint)}/store")
            t, _ = _timed(lambda: push(cache, remote, [small], progress=False))
            out["s3_push_small_objects_per_s"] = 2001 / t
            t, _ = _timed(lambda: push(cache, remote, [large], progress=False))
            out["s3_push_large_mb_per_s"] = 256 / t
        with Cache(base / "s3pull") as fresh:
            t, _ = _timed(lambda: pull(remote, fresh, [small], progress=False))
            out["s3_pull_small_objects_per_s"] = 2001 / t
            t, _ = _timed(lambda: pull(remote, fresh, [large], progress=False))
            out["s3_pull_large_mb_per_s"] = 256 / t
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-s3", action="store_true")
    ap.add_argument("--no-1g", action="store_true")
    args = ap.parse_args()
    runs: list[dict[str, float]] = []
    for _ in range(args.repeat):
        base = Path(tempfile.mkdtemp(prefix="mltrail-bench-obj-", dir="/tmp"))
        try:
            fig = small_files(base)
            if not args.no_1g:
                fig.update(one_gib(base))
            runs.append(fig)
        finally:
            shutil.rmtree(base, ignore_errors=True)
    result: dict[str, object] = {
        k: round(statistics.median(r[k] for r in runs), 4) for k in runs[0]
    }
    result["runs"] = runs
    if not args.no_s3:
        base = Path(tempfile.mkdtemp(prefix="mltrail-bench-s3-", dir="/tmp"))
        try:
            result.update({k: round(v, 1) for k, v in s3(base).items()})
        finally:
            shutil.rmtree(base, ignore_errors=True)
    result["loadavg_1m"] = os.getloadavg()[0]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
