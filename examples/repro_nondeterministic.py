"""A training script with a reproducibility bug that ``mltrail verify-determinism`` catches.

    mltrail verify-determinism -- python examples/repro_nondeterministic.py      # diverged
    mltrail verify-determinism --seed 3 -- python examples/repro_nondeterministic.py --fixed

Everything is seeded with ``mltrail.seed_everything()`` (which takes ``MLTRAIL_SEED`` from
``verify-determinism --seed``), except the mini-batch shuffling, whose generator is seeded
from the wall clock: the injected non-determinism. ``--fixed`` derives it from the seed.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import mltrail


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fixed", action="store_true", help="seed the shuffling too")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--project", default="repro-examples")
    args = parser.parse_args()

    with mltrail.init(project=args.project, config={"epochs": args.epochs, "lr": 0.05}):
        seed = mltrail.seed_everything()["seed"]  # MLTRAIL_SEED, else a recorded random one
        data_rng = np.random.default_rng(1234)  # the dataset is fixed
        x = data_rng.normal(size=(512, 8))
        y = x @ data_rng.normal(size=8) + 0.1 * data_rng.normal(size=512)
        w = np.random.normal(scale=0.01, size=8)  # seeded by seed_everything
        shuffle = np.random.default_rng(seed if args.fixed else time.time_ns())  # the bug
        step = 0
        for _epoch in range(args.epochs):
            for batch in np.array_split(shuffle.permutation(len(x)), 16):
                err = x[batch] @ w - y[batch]
                mltrail.log({"train/loss": float(np.mean(err**2))}, step=step)
                w -= 0.05 * 2 * x[batch].T @ err / len(batch)
                step += 1


if __name__ == "__main__":
    main()
