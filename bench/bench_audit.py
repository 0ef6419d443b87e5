"""The audit trail's cost and its verifier's speed (issue 15).

(a) ``run_creation``: creation batches shaped like the SDK's (20 params, 5 tags, captured
    state ~30 KB, a 5 KB blob) applied to a store with the trail on and off (the private
    ``_audit=False`` flag), in alternating rounds; median ms per run; target ratio <= 1.10.
    ``sdk_runs``: whole runs through the SDK (``init`` with capture, params, tags, 50 steps,
    ``finish``), on and off: what a user sees.
(b) ``metric_ingest``: batches as the writer applies them, on and off: ``large`` (5 keys x
    20,000 points) and ``small`` (100 keys x 2 points: a steady run drained every 0.2 s);
    points/s; target ratio <= 1.10 (of the time).
(c) ``verify``: 10^6 entries (``--quick``: 10^5) built directly through the trail's append in
    big transactions (each a tag written with its entry), a signed checkpoint, then
    ``verify_log`` over everything (chain, Merkle roots, live rows); target <= 60 s.

Usage: python bench/bench_audit.py [--quick] [--store-dir DIR] [--pg URL]
Prints JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def _store(uri: str, audit: bool):
    from mltrail.store.sql.store import SqlTrackingStore

    return SqlTrackingStore(uri, _audit=audit)


def _uri(root: Path, name: str, pg: str | None) -> str:
    if pg:
        import uuid

        import sqlalchemy as sa

        db = f"bench_audit_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(
            sa.make_url(pg).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
        )
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {db}")
        admin.dispose()
        return pg.rsplit("/", 1)[0] + "/" + db
    return f"sqlite:///{root / name}.db"


def _creation(run_id: str, now: int):
    from mltrail.store.batch import Batch, RunCreate

    blob = os.urandom(5000)
    packages = [{"name": f"pkg{i}", "version": f"{i}.0.{i}", "hash": "a" * 64} for i in range(250)]
    return Batch(
        run_id=run_id,
        create=RunCreate(project="bench", name=run_id, created_ms=now, heartbeat_s=5.0),
        params={f"p{i}": (i * 0.1 if i % 2 else f"v{i}") for i in range(20)},
        tags={f"t{i}": f"value{i}" for i in range(5)},
        state={
            "environment": {"python": "3.11.7", "packages": packages},
            "git": {"commit": "c" * 40, "branch": "main", "dirty": True},
            "hardware": {"cpus": 2, "gpus": []},
        },
        blobs={"sha256:" + hashlib.sha256(blob).hexdigest(): blob},
    )


def _pair(stores: dict, make, count: int) -> dict:
    """Apply ``count`` pairs of batches (``make(i, flag)``), alternating the trail on and off
    batch by batch (the machine is shared: its load moves slower than one batch); per side
    the median wall time and the total CPU time of this process (SQLite runs in it)."""
    wall: dict[bool, list[float]] = {True: [], False: []}
    cpu: dict[bool, float] = {True: 0.0, False: 0.0}
    for i in range(count):
        for flag in (True, False) if i % 2 else (False, True):
            batch = make(i, flag)
            c0, t0 = time.process_time(), time.perf_counter()
            stores[flag].apply_batch(batch)
            wall[flag].append(time.perf_counter() - t0)
            cpu[flag] += time.process_time() - c0
    on, off = statistics.median(wall[True]), statistics.median(wall[False])
    return {
        "ms_on": round(on * 1000, 3),
        "ms_off": round(off * 1000, 3),
        "ratio_wall_median": round(on / off, 3),
        "cpu_ms_on": round(cpu[True] / count * 1000, 3),
        "cpu_ms_off": round(cpu[False] / count * 1000, 3),
        "ratio_cpu": round(cpu[True] / cpu[False], 3),
    }


def run_creation(root: Path, pg: str | None, runs: int) -> dict:
    stores = {flag: _store(_uri(root, f"create-{flag}", pg), flag) for flag in (True, False)}
    now = int(time.time() * 1000)
    for flag, store in stores.items():  # warm: the project exists, statements are cached
        store.apply_batch(_creation(f"warm{int(flag)}0000000", now))
    out = _pair(stores, lambda i, flag: _creation(f"r{int(flag)}{i:010d}", now), runs)
    for s in stores.values():
        s.close()
    return {"runs": runs, **out}


def metric_ingest(root: Path, pg: str | None, keys: int, points: int, batches: int) -> dict:
    from mltrail.store.batch import Batch, MetricSeries, RunCreate

    stores = {flag: _store(_uri(root, f"ingest-{keys}-{flag}", pg), flag) for flag in (True, False)}
    now = int(time.time() * 1000)
    rng = np.random.default_rng(0)
    run_ids = {flag: f"ingest{int(flag)}00000" for flag in (True, False)}
    for flag, store in stores.items():
        store.apply_batch(Batch(run_ids[flag], create=RunCreate("bench", "i", now, 5.0)))

    def make(b: int, flag: bool) -> Batch:
        steps = np.arange(b * points, (b + 1) * points, dtype=np.int64)
        stamps = np.full(points, now, dtype=np.int64)
        cols = {f"k{k}": MetricSeries(steps, stamps, rng.random(points)) for k in range(keys)}
        return Batch(run_ids[flag], metrics=cols)

    out = _pair(stores, make, batches)
    for s in stores.values():
        s.close()
    return {"keys": keys, "points_per_key_per_batch": points, "batches": batches, **out}


def sdk_runs(root: Path, runs: int) -> dict:
    """Runs as a user creates them: ``init()`` (capture on, from a clean git repository),
    20 params, 5 tags, 50 steps of 5 metrics, ``finish()`` waited into the store; the trail on
    and off alternating run by run (off: the store class's private flag, patched here)."""
    from workload import clean_repo_entry

    import mltrail
    from mltrail.store.registry import forget_open_stores
    from mltrail.store.sql.store import SqlTrackingStore

    repo = clean_repo_entry()
    os.environ["MLTRAIL_FINISH_WAIT"] = "1"
    defaults = SqlTrackingStore.__init__.__kwdefaults__
    wall: dict[bool, list[float]] = {True: [], False: []}
    try:
        for i in range(runs * 2):
            flag = bool(i % 2) if (i // 2) % 2 else not bool(i % 2)
            defaults["_audit"] = flag
            forget_open_stores()
            store = str(root / f"sdk-{flag}")
            t0 = time.perf_counter()
            run = mltrail.init(
                project="bench",
                config={f"p{k}": k * 0.1 for k in range(20)},
                tags={f"t{k}": "v" for k in range(5)},
                store=store,
            )
            for step in range(50):
                run.log({f"m{k}": step * 0.1 + k for k in range(5)}, step=step)
            run.finish()
            wall[flag].append(time.perf_counter() - t0)
    finally:
        defaults["_audit"] = True
        os.environ.pop("MLTRAIL_FINISH_WAIT", None)
        if repo:
            shutil.rmtree(repo, ignore_errors=True)
    on, off = statistics.median(wall[True]), statistics.median(wall[False])
    return {
        "runs": runs,
        "ms_on": round(on * 1000, 1),
        "ms_off": round(off * 1000, 1),
        "ratio_wall_median": round(on / off, 3),
    }


def verify(root: Path, pg: str | None, entries: int) -> dict:
    import sqlalchemy as sa

    from mltrail.audit.keys import generate_key
    from mltrail.audit.verify import verify_log
    from mltrail.store.batch import Batch, RunCreate
    from mltrail.store.sql import audit
    from mltrail.store.sql.audit_rows import table_rows
    from mltrail.store.sql.engine import write_connection
    from mltrail.store.sql.schema import tags

    store = _store(_uri(root, "verify", pg), True)
    key = root / "key.pem"
    generate_key(key)
    runs = max(1, entries // 1000)
    now = int(time.time() * 1000)
    t0 = time.perf_counter()
    for r in range(runs):
        store.apply_batch(Batch(f"v{r:011d}", create=RunCreate("bench", f"v{r}", now, 5.0)))
    left = entries - runs  # each creation is one entry
    step = 20_000
    i = 0
    while i < left:
        n = min(step, left - i)
        rows, changes = [], []
        for j in range(i, i + n):
            run_id = f"v{j % runs:011d}"
            row = {"run_id": run_id, "key": f"t{j}", "value": f"value {j}"}
            rows.append(row)
            changes.append(
                audit.Change(
                    "run.tags",
                    f"run:{run_id}",
                    {"run": run_id, "rows": {"tags": table_rows("tags", [row])}},
                )
            )
        with write_connection(store._engine) as conn:
            conn.execute(sa.insert(tags), rows)
            audit.append(conn, changes, every=10**12)
        i += n
    built = time.perf_counter() - t0
    t1 = time.perf_counter()
    cp = store.audit_log().audit_checkpoint("manual", key_path=key, offbox="")
    signed = time.perf_counter() - t1
    from mltrail.audit.keys import load_public_key, public_key_path

    t2, c2 = time.perf_counter(), time.process_time()
    report = verify_log(store, public_key=load_public_key(public_key_path(key)))
    took, cpu = time.perf_counter() - t2, time.process_time() - c2
    store.close()
    assert report.ok, report.problems[:3]
    assert report.entries == entries and cp is not None and cp.tree_size == entries
    return {
        "entries": entries,
        "rows_checked": report.rows,
        "build_s": round(built, 1),
        "checkpoint_s": round(signed, 2),
        "verify_s": round(took, 1),
        "verify_cpu_s": round(cpu, 1),
        "target_s": 60,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--store-dir", default=None)
    parser.add_argument("--pg", default=None, help="a postgresql:// URL to bench on instead")
    parser.add_argument("--only", choices=["create", "sdk", "ingest", "verify"], default=None)
    args = parser.parse_args()
    root = Path(args.store_dir or tempfile.mkdtemp(prefix="mltrail-bench-audit-"))
    root.mkdir(parents=True, exist_ok=True)
    out: dict = {"backend": "postgresql" if args.pg else "sqlite", "load_1m": os.getloadavg()[0]}
    try:
        if args.only in (None, "create"):
            out["run_creation"] = run_creation(root, args.pg, 100 if args.quick else 600)
        if args.only in (None, "sdk") and not args.pg:
            out["sdk_runs"] = sdk_runs(root, 10 if args.quick else 30)
        if args.only in (None, "ingest"):
            out["metric_ingest_large"] = metric_ingest(
                root, args.pg, 5, 20_000, 20 if args.quick else 100
            )
            out["metric_ingest_small"] = metric_ingest(
                root, args.pg, 100, 2, 200 if args.quick else 1000
            )
        if args.only in (None, "verify"):
            out["verify"] = verify(root, args.pg, 10**5 if args.quick else 10**6)
        out["load_1m_end"] = os.getloadavg()[0]
    finally:
        if args.store_dir is None:
            shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
