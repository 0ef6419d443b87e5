"""Sweeps: the agent's overhead per trial, and suggestions per second from a shared store.

- ``overhead``: a small program (``mltrail.init`` + 10 logged steps, ``--sleep-s`` each) run
  ``--trials`` times on its own (``python prog.py --x=...``: the program's own time, its
  mltrail capture included) and as the trials of a random sweep through ``run_agent``
  (ask, the wrapped run with its capture and console tee, the metric watcher, tell).
  ``agent_overhead_s`` is the median of (trial time - the program's own wall time under
  the agent), with and without a pruner (which adds the per-step store reads);
  ``agent_trial_vs_program_alone_s`` compares with the program run on its own (noisier:
  separate runs). Target (issue 16): <= 0.1 s.
- ``suggest``: ``--agents`` processes ask Optuna (TPE) for parameters and tell a value at
  once, through :class:`mltrail.sweeps.session.SweepSession` (fail_stale, the run cap,
  heartbeats) on one shared store, for ``--seconds``: suggestions per second in total.

The store is ``--store`` (a PostgreSQL URI for the shared case; default
``$MLTRAIL_TEST_PG_URL``, else an SQLite folder in a temporary directory).
Usage: python bench/bench_sweep.py [--trials N] [--agents N] [--seconds S] [--store URI]
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_OVERHEAD_S = 0.1
PROG = """
import argparse, time, mltrail
p = argparse.ArgumentParser(); p.add_argument("--x", type=float); a = p.parse_args()
with mltrail.init():
    for step in range(10):
        mltrail.log({"loss": (a.x - 2.0) ** 2 + 1.0 / (step + 1)}, step=step)
        time.sleep(%(sleep_s)r)
"""


def _spec(run_cap: int, pruner: bool) -> dict[str, object]:
    spec: dict[str, object] = {
        "program": "prog.py",
        "method": "random",
        "metric": {"name": "loss"},
        "parameters": {"x": {"distribution": "uniform", "min": -4.0, "max": 6.0}},
        "run_cap": run_cap,
        "seed": 0,
    }
    if pruner:
        spec["early_terminate"] = {"type": "median", "min_iter": 1, "startup_trials": 1000}
    return spec


def _program_times(folder: Path, store: str, trials: int) -> list[float]:
    env = {**os.environ, "MLTRAIL_STORE": store, "MLTRAIL_ALLOW_DIRTY": "1"}
    times = []
    for i in range(trials):
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "prog.py", f"--x={i * 0.1}"],
            cwd=folder,
            env=env,
            check=True,
            capture_output=True,
        )
        times.append(time.perf_counter() - t0)
    return times


def _agent_times(folder: Path, store: str, trials: int, pruner: bool) -> list[tuple[float, float]]:
    from mltrail.sweeps.agent import AgentOptions, run_agent
    from mltrail.sweeps.spec import parse_spec
    from mltrail.sweeps.storage import create_sweep

    rec = create_sweep(parse_spec(_spec(trials, pruner)), store=store, cwd=folder)
    opts = AgentOptions(stdout=io.BytesIO(), stderr=io.BytesIO())
    results = run_agent(rec.sweep_id, store=store, options=opts)
    assert all(r.state == "finished" for r in results), [r.reason for r in results]
    return [(r.duration_s, r.program_s) for r in results]


def overhead(store: str, trials: int, sleep_s: float) -> dict[str, object]:
    """The agent's time per trial beyond the program's own (medians)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "prog.py").write_text(PROG % {"sleep_s": sleep_s})
        _program_times(folder, store, 1)  # warm caches (imports, the store's schema)
        _agent_times(folder, store, 1, False)  # the agent's own imports, once per process
        own, plain, pruned = [], [], []
        for _ in range(2):  # interleaved: the machine's load hits both alike
            own += _program_times(folder, store, trials // 2)
            plain += _agent_times(folder, store, trials // 2, False)
            pruned += _agent_times(folder, store, trials // 2, True)
    own_s = statistics.median(own)

    def med(pairs: list[tuple[float, float]], i: int) -> float:
        return round(statistics.median(p[i] for p in pairs), 4)

    def beyond(pairs: list[tuple[float, float]]) -> float:
        return round(statistics.median(d - p for d, p in pairs), 4)

    return {
        "trials": len(own),
        "program_alone_s": round(own_s, 4),
        "agent_trial_s": med(plain, 0),
        "program_under_agent_s": med(plain, 1),
        "agent_overhead_s": beyond(plain),
        "agent_trial_vs_program_alone_s": round(med(plain, 0) - own_s, 4),
        "agent_trial_with_pruner_s": med(pruned, 0),
        "agent_overhead_with_pruner_s": beyond(pruned),
        "target_s": TARGET_OVERHEAD_S,
    }


def _suggester(sweep_id: str, store: str, seconds: float, out: multiprocessing.Queue) -> None:
    from mltrail.sweeps.session import SweepSession

    n = 0
    with SweepSession(sweep_id, store) as session:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            trial = session.next_trial(wait=False)
            if trial is None:
                break
            with session.heartbeat(trial):
                session.tell(trial, "finished", [(trial.params["x"] - 2.0) ** 2])
            n += 1
    out.put(n)


def suggest(store: str, agents: int, seconds: float) -> dict[str, object]:
    """Suggestions per second with ``agents`` processes on one store (TPE)."""
    from mltrail.sweeps.spec import parse_spec
    from mltrail.sweeps.storage import create_sweep

    spec = {**_spec(1_000_000, False), "method": "tpe"}
    rec = create_sweep(parse_spec(spec), store=store)
    out: multiprocessing.Queue = multiprocessing.Queue()
    procs = [
        multiprocessing.Process(target=_suggester, args=(rec.sweep_id, store, seconds, out))
        for _ in range(agents)
    ]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    counts = [out.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join()
    wall = time.perf_counter() - t0
    return {
        "agents": agents,
        "seconds": round(wall, 2),
        "suggestions": sum(counts),
        "suggestions_per_s": round(sum(counts) / seconds, 1),
        "per_agent": counts,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--sleep-s", type=float, default=0.02)
    parser.add_argument("--agents", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--store", default=os.environ.get("MLTRAIL_TEST_PG_URL", ""))
    args = parser.parse_args()
    os.environ.setdefault("MLTRAIL_ALLOW_DIRTY", "1")
    with tempfile.TemporaryDirectory() as tmp:
        store = args.store or str(Path(tmp) / "store")
        result = {
            "store": "postgresql" if store.startswith("postgres") else "sqlite",
            "cpus": os.cpu_count(),
            "overhead": overhead(store, args.trials, args.sleep_s),
            "suggest": suggest(store, args.agents, args.seconds),
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
