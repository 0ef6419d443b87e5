"""A child "training" process for tests/test_crash.py.

Usage: ``python -u crash_child.py STORE MODE``. It prints ``RUN <run_id>`` once the run
exists, then logs 20 metric keys per step with one ``log()`` call, calls ``flush()`` every 10
steps and prints ``ACK <step>`` after each flush that returned True. What it does next
depends on MODE:

- ``loop``: log forever (the parent kills it).
- ``raise_in_with`` / ``exit0_in_with`` / ``exit3_in_with`` / ``kbint_in_with``: 30 steps
  inside ``with mltrail.init(...)``, then raise RuntimeError / ``sys.exit(0)`` /
  ``sys.exit(3)`` / KeyboardInterrupt inside the block.
- ``no_finish``: 30 steps without ``with`` or ``finish()``; the script just ends.
- ``raise_top`` / ``exit0_top`` / ``exit4_top``: 30 steps without ``with``, then an uncaught
  RuntimeError / ``sys.exit(0)`` / ``sys.exit(4)`` at the top level.

The expected data is defined here once and imported by the tests by path.
"""

from __future__ import annotations

import sys

N_KEYS = 20
KEYS = [f"m{i:02d}" for i in range(N_KEYS)]
CONFIG = {"lr": 0.01, "batch": 32, "opt": {"name": "adam", "beta1": 0.9}}
TAGS = {"stage": "crash-test"}
EXTRA_PARAMS = {"seed": 7}
EXTRA_TAGS = {"phase": "warmup"}
FINITE_STEPS = 30
FLUSH_EVERY = 10


def value(step: int, i: int) -> float:
    """The value logged for key ``i`` at ``step`` (exact in float64)."""
    return step * 100.0 + i


def train(run, max_steps: int | None) -> None:  # noqa: ANN001 - keep the child import-light
    step = 0
    while max_steps is None or step < max_steps:
        run.log({k: value(step, i) for i, k in enumerate(KEYS)})
        if step % FLUSH_EVERY == FLUSH_EVERY - 1:
            if not run.flush():
                print(f"NACK {step}", flush=True)
                sys.exit(70)
            print(f"ACK {step}", flush=True)
        step += 1


def start(store: str):  # noqa: ANN201
    import mltrail

    run = mltrail.init(project="crash", config=CONFIG, tags=TAGS, store=store)
    run.log_params(EXTRA_PARAMS)
    run.set_tags(EXTRA_TAGS)
    print(f"RUN {run.run_id}", flush=True)
    return run


def main() -> None:
    store, mode = sys.argv[1], sys.argv[2]
    if mode == "loop":
        train(start(store), None)
    elif mode.endswith("_in_with"):
        with start(store) as run:
            train(run, FINITE_STEPS)
            if mode == "raise_in_with":
                raise RuntimeError("boom inside with")
            if mode == "exit0_in_with":
                sys.exit(0)
            if mode == "exit3_in_with":
                sys.exit(3)
            if mode == "kbint_in_with":
                raise KeyboardInterrupt
    elif mode in ("no_finish", "raise_top", "exit0_top", "exit4_top"):
        train(start(store), FINITE_STEPS)
        if mode == "raise_top":
            raise RuntimeError("boom at top level")
        if mode == "exit0_top":
            sys.exit(0)
        if mode == "exit4_top":
            sys.exit(4)
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main()
