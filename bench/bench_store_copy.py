"""Benchmark ``mltrail store copy`` and ``mltrail store check`` (issue 19).

Builds an embedded (SQLite) store of ``--runs`` runs, each with ``--keys`` metric keys of
``--steps`` points, params, tags, a state document with a blob, console lines and one run
file, plus one file artifact per 10 runs; then times:

- ``copy`` SQLite -> SQLite folder and SQLite -> PostgreSQL (when ``MLTRAIL_TEST_PG_URL`` or
  ``MLTRAIL_PG_URL`` is set; a fresh database), split into the copy itself and the
  verification (both stores read back whole and fingerprinted);
- a second copy into the same destination (nothing to add: the idempotency check's cost);
- ``store check`` of the source (sampled object digests) and ``--full``.

Rates: runs/s, metric points/s and payload MB/s (points at 24 bytes: step, time, value;
blobs; console; run files; objects). Prints JSON with the 1-minute load average::

    .venv/bin/python bench/bench_store_copy.py [--runs 200] [--keys 4] [--steps 2500]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

T0 = 1_700_000_000_000


def build(src: str, runs: int, keys: int, steps: int) -> dict[str, Any]:
    """Fill the store at ``src``; what it holds."""
    from mltrail.artifacts.records import NewVersion
    from mltrail.entities import RunStatus
    from mltrail.store.batch import Batch, MetricSeries, RunCreate, StatusChange
    from mltrail.store.copy import open_endpoint

    end = open_endpoint(src, create=True)
    assert end.files is not None and end.objects is not None
    rng = np.random.default_rng(0)
    step_col = np.arange(steps, dtype=np.int64)
    for i in range(runs):
        run_id = f"bench{i:06d}"
        blob = f"diff of run {i}\n".encode() * 50
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        created = T0 + i * 60_000
        end.store.apply_batch(
            Batch(
                run_id=run_id,
                source=f"bench-{run_id}",
                start=0,
                end=1,
                create=RunCreate("copybench", f"run-{i}", created, 5.0, "ada", "gpu1", "train"),
                params={"lr": 10 ** -rng.uniform(1, 4), "seed": i, "opt": "adam"},
                tags={"team": "vision"},
                metrics={
                    f"metric_{k}": MetricSeries(
                        step_col, created + step_col * 100, rng.standard_normal(steps)
                    )
                    for k in range(keys)
                },
                status=StatusChange(RunStatus.FINISHED, created + steps * 100),
                state={"code": {"diff": digest}},
                blobs={digest: blob},
                console=[(created + j, "stdout", f"epoch {j}") for j in range(20)],
            )
        )
        end.files.put(run_id, "logs/train.log", f"log of run {i}\n".encode() * 200)
        if i % 10 == 0:
            obj = end.objects.add_bytes(rng.bytes(256 * 1024))
            arts = end.store.artifacts()  # type: ignore[attr-defined]
            arts.log_version(
                NewVersion(
                    "copybench", f"model-{i}", "model", obj, "file", 256 * 1024, 1, run_id=run_id
                )
            )
    end.close()
    return {"runs": runs, "keys": keys, "steps": steps, "points": runs * keys * steps}


def timed_copy(src: str, dst: str, dst_artifacts: str | None) -> dict[str, Any]:
    from mltrail.store.copy import copy_store, open_endpoint

    a = open_endpoint(src)
    b = open_endpoint(dst, dst_artifacts, create=True)
    try:
        first = copy_store(a, b)
        t = time.perf_counter()
        second = copy_store(a, b)
        again_s = time.perf_counter() - t
    finally:
        a.close()
        b.close()
    assert first.ok and second.ok and not second.added_anything, first.mismatches
    payload = (first.payload_bytes + first.file_bytes + first.catalog.object_bytes) / 1e6
    return {
        "copy_s": round(first.copy_s, 2),
        "verify_s": round(first.verify_s, 2),
        "runs_per_s": round(first.runs_added / first.copy_s, 1),
        "points_per_s": round(first.points / first.copy_s),
        "mb_per_s": round(payload / first.copy_s, 1),
        "payload_mb": round(payload, 1),
        "with_verify_runs_per_s": round(first.runs_added / (first.copy_s + first.verify_s), 1),
        "second_copy_s": round(again_s, 2),
    }


def _pg_database(url: str) -> tuple[str, Any]:
    import sqlalchemy as sa

    name = f"mltrail_bench_copy_{secrets.token_hex(4)}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")

    def drop() -> None:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()

    return sa.make_url(url).set(database=name).render_as_string(hide_password=False), drop


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--keys", type=int, default=4)
    ap.add_argument("--steps", type=int, default=2500)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mltrail-bench-copy-"))
    os.environ.setdefault("MLTRAIL_CACHE_DIR", str(work / "cache"))
    result: dict[str, Any] = {"bench": "store_copy"}
    try:
        src = str(work / "src")
        t = time.perf_counter()
        result["store"] = build(src, args.runs, args.keys, args.steps)
        result["build_s"] = round(time.perf_counter() - t, 1)
        result["sqlite_to_sqlite"] = timed_copy(src, str(work / "dst"), None)
        url = os.environ.get("MLTRAIL_PG_URL") or os.environ.get("MLTRAIL_TEST_PG_URL")
        if url:
            pg, drop = _pg_database(url)
            try:
                result["sqlite_to_postgres"] = timed_copy(src, pg, str(work / "pg-art"))
            finally:
                drop()
        from mltrail.store.copy.check import check_store

        for name, full in (("check_s", False), ("check_full_s", True)):
            report = check_store(src, full=full)
            assert report.ok, report.problems
            result[name] = round(report.check_s, 2)
        result["source_mb"] = round(
            sum(p.stat().st_size for p in Path(src).rglob("*") if p.is_file()) / 1e6, 1
        )
        result["loadavg_1m"] = round(os.getloadavg()[0], 2)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
