"""Sustained ingest through the real writer path: spool -> decode -> apply_batch (SQLite).

(a) ``end_to_end``: log N points (N/5 calls of 5 keys) with the writer draining concurrently,
    then ``run.flush()``; points/s over the whole span from the first log call to the end of
    the flush, plus how long the flush waited after the last log call.
(b) ``drain_only``: the same spool (frames encoded as ``Run.log`` encodes them) written
    first with ``SpoolAppender``, then drained by hand into a fresh store with
    ``SpoolDecoder.next_batch`` + ``store.apply_batch`` (the writer's loop), timing decode
    and apply apart.

(c) ``small_batches`` (no target; a steady run's shape): 100 keys, 2 points per key per batch
    (10 steps/s drained every 0.2 s), applied with ``apply_batch`` while each key's open
    chunk holds 0 / 8k / 16k points: ms per batch and points/s.

Target: >= 1,000,000 points/s.
Usage: python bench/bench_ingest.py [--points 2000000] [--store URI]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from workload import clean_repo_entry  # noqa: E402

KEYS = ("loss", "acc", "lr", "grad_norm", "throughput")
TARGET_PPS = 1_000_000


def log_points(run, calls: int) -> None:
    log = run.log
    for i in range(calls):
        x = i * 1e-6
        log({"loss": 1.0 - x, "acc": x, "lr": 0.001, "grad_norm": 2.0 + x, "throughput": 3e3}, i)


def end_to_end(calls: int, uri: str | None) -> dict:
    import mltrail

    root = uri or tempfile.mkdtemp(prefix="mltrail-bench-ingest-")
    try:
        run = mltrail.init(project="bench", store=root)
        run.flush()  # the writer has opened the store: measure ingest, not first open
        t0 = time.perf_counter()
        log_points(run, calls)
        t_logged = time.perf_counter()
        run.flush()
        t_flushed = time.perf_counter()
        run.finish()
        points = calls * len(KEYS)
        got = len(mltrail.Api(root).history(run.run_id, "loss"))
        assert got == calls, (got, calls)
        total = t_flushed - t0
        return {
            "points": points,
            "log_s": round(t_logged - t0, 3),
            "flush_wait_s": round(t_flushed - t_logged, 3),
            "total_s": round(total, 3),
            "points_per_s": round(points / total),
            "log_calls_per_s": round(calls / (t_logged - t0)),
        }
    finally:
        if uri is None:
            shutil.rmtree(root, ignore_errors=True)


def write_spool(path: Path, calls: int) -> str:
    """The spool ``Run.log`` writes for ``calls`` calls of KEYS: header, run, keyset, metric
    frames (the same codec calls as the hot path), status; built apart from any Run so that
    no writer thread touches it."""
    from mltrail.events import codec
    from mltrail.events.spool import SpoolAppender

    run_id = "benchdrain0001"
    now = time.time_ns() // 1_000_000
    head = {"run_id": run_id, "pid": os.getpid(), "host": "bench", "proc_start": "", "store": ""}
    spool = SpoolAppender(path, header=codec.frame(codec.encode_json(codec.KIND_HEADER, head)))
    create = {"project": "bench", "name": "drain", "created_ms": now, "heartbeat_s": 5.0}
    spool.append(codec.frame(codec.encode_json(codec.KIND_RUN, create)))
    spool.append(codec.frame(codec.encode_json(codec.KIND_KEYSET, {"id": 0, "keys": list(KEYS)})))
    pack, frame, kind = codec.metrics_struct(len(KEYS)).pack, codec.frame, codec.KIND_METRICS
    for lo in range(0, calls, 10_000):
        chunk = [
            frame(pack(kind, 0, i, now, 1.0 - i * 1e-6, i * 1e-6, 0.001, 2.0, 3e3))
            for i in range(lo, min(calls, lo + 10_000))
        ]
        spool.append(b"".join(chunk))
    end = {"status": "finished", "end_ms": now}
    spool.append(codec.frame(codec.encode_json(codec.KIND_STATUS, end)))
    spool.close()
    return run_id


def drain_only(calls: int, uri: str | None) -> dict:
    from mltrail.events.decode import SpoolDecoder
    from mltrail.store.registry import open_store, resolve_location

    root = uri or tempfile.mkdtemp(prefix="mltrail-bench-drain-")
    work = tempfile.mkdtemp(prefix="mltrail-bench-spool-")
    try:
        spool = Path(work, "bench-drain.spool")  # outside the store's spool folder
        write_spool(spool, calls)
        spool_bytes = spool.stat().st_size
        t_open = time.perf_counter()
        store = open_store(resolve_location(root), shared=False)
        open_s = time.perf_counter() - t_open
        decoder = SpoolDecoder(spool, "bench-drain")
        clock = time.perf_counter
        pos = batches = points = 0
        decode_s = apply_s = 0.0
        t0 = clock()
        while True:
            a = clock()
            batch = decoder.next_batch(pos)
            b = clock()
            decode_s += b - a
            if batch is None:
                break
            assert store.apply_batch(batch).applied
            apply_s += clock() - b
            pos = batch.end
            batches += 1
            points += batch.point_count
        total = clock() - t0
        decoder.close()
        store.close()
        assert points == calls * len(KEYS), points
        return {
            "points": points,
            "spool_mb": round(spool_bytes / 2**20, 1),
            "batches": batches,
            "store_open_s": round(open_s, 3),
            "total_s": round(total, 3),
            "decode_s": round(decode_s, 3),
            "apply_s": round(apply_s, 3),
            "points_per_s": round(points / total),
            "decode_points_per_s": round(points / decode_s),
            "apply_points_per_s": round(points / apply_s),
            "decode_share": round(decode_s / total, 3),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if uri is None:
            shutil.rmtree(root, ignore_errors=True)


def small_batches(uri: str | None, keys: int = 100, per: int = 2) -> dict:
    import numpy as np

    from mltrail.store.batch import Batch, MetricSeries, RunCreate
    from mltrail.store.registry import open_store, resolve_location

    root = uri or tempfile.mkdtemp(prefix="mltrail-bench-small-")
    try:
        store = open_store(resolve_location(root), shared=False)
        now = time.time_ns() // 1_000_000
        create = RunCreate("bench", "small", now, 5.0)
        store.apply_batch(Batch("small", source="s", start=0, end=1, create=create))
        pos, step, out = 1, 0, {}

        def batch(n: int) -> Batch:
            s = np.arange(step, step + n, dtype=np.int64)
            cols = {f"k{j}": MetricSeries(s, s + now, s * 0.5) for j in range(keys)}
            return Batch("small", source="s", start=pos, end=pos + 1, metrics=cols)

        for fill in (0, 8000, 16000):
            if fill > step:
                store.apply_batch(batch(fill - step))
                pos, step = pos + 1, fill
            times = []
            for _ in range(9):
                b = batch(per)
                t0 = time.perf_counter()
                store.apply_batch(b)
                times.append(time.perf_counter() - t0)
                pos, step = pos + 1, step + per
            med = sorted(times)[len(times) // 2]
            out[f"open_chunk_{fill}"] = {
                "ms_per_batch": round(med * 1000, 1),
                "points_per_s": round(keys * per / med),
            }
        store.close()
        return {"keys": keys, "points_per_key_per_batch": per, **out}
    finally:
        if uri is None:
            shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=2_000_000)
    ap.add_argument("--store", help="a store URI (default: a temporary folder)")
    args = ap.parse_args()
    repo = clean_repo_entry()
    calls = args.points // len(KEYS)
    drain = drain_only(calls, args.store)
    e2e = end_to_end(calls, args.store)
    print(
        json.dumps(
            {
                "bench": "ingest",
                "end_to_end": e2e,
                "drain_only": drain,
                "small_batches": small_batches(args.store),
                "targets": {
                    "end_to_end points/s >= 1M": e2e["points_per_s"] >= TARGET_PPS,
                    "drain_only points/s >= 1M": drain["points_per_s"] >= TARGET_PPS,
                },
            }
        )
    )
    if repo:
        shutil.rmtree(repo, ignore_errors=True)


if __name__ == "__main__":
    main()
