"""A child process for tests/test_concurrency.py: one of many writers to one SQLite store.

Usage: ``python -u conc_child.py STORE WORKER GO_FILE FLUSH_EVERY``. It starts a run,
prints ``READY <run_id>``, waits until GO_FILE exists (so that every worker logs at once),
logs ``STEPS`` steps of ``KEYS`` with one ``log()`` call per step, calls ``flush()`` every
FLUSH_EVERY steps (each flush is at least one transaction), sets a tag, finishes the run
and prints ``DONE``.
"""

from __future__ import annotations

import os
import sys
import time

STEPS = 200
KEYS = [f"k{j}" for j in range(10)]
GO_TIMEOUT_S = 120.0


def value(worker: int, step: int, j: int) -> float:
    """The value worker ``worker`` logs for key ``j`` at ``step`` (exact in float64)."""
    return worker * 1_000_000.0 + step * 10.0 + j


def main() -> None:
    import mltrail

    store, worker, go, flush_every = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    config = {"worker": worker, "lr": 0.1, "net": {"depth": worker % 4}}
    tags = {"worker": str(worker)}
    with mltrail.init(
        project="b1", name=f"worker-{worker}", config=config, tags=tags, store=store
    ) as run:
        print(f"READY {run.run_id}", flush=True)
        deadline = time.monotonic() + GO_TIMEOUT_S
        while not os.path.exists(go):
            if time.monotonic() > deadline:
                raise SystemExit("no go signal")
            time.sleep(0.01)
        for step in range(STEPS):
            run.log({k: value(worker, step, j) for j, k in enumerate(KEYS)})
            if step % flush_every == flush_every - 1 and not run.flush():
                raise SystemExit(f"flush failed at step {step}")
        run.set_tags({"done": "yes"})
    print("DONE", flush=True)


if __name__ == "__main__":
    main()
