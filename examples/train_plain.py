"""A training script that knows nothing of mltrail: argparse, a seed, printed losses and a
model file. Wrap it with `mltrail run -- python examples/train_plain.py` and mltrail records
its config (the parsed arguments), code, environment, console and the files it wrote; then
`mltrail reproduce RUN` re-runs it and says whether the result reproduced."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="outputs/model.npy")
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)
    x = rng.normal(size=(512, 8))
    w_true = rng.normal(size=8)
    y = x @ w_true + 0.1 * rng.normal(size=512)
    w = np.zeros(8)
    for step in range(args.steps):
        grad = 2 * x.T @ (x @ w - y) / len(y)
        w -= args.lr * grad
        if step % 20 == 0 or step == args.steps - 1:
            loss = float(np.mean((x @ w - y) ** 2))
            print(f"step {step} loss {loss:.6f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, w)
    print(f"saved {out}")


if __name__ == "__main__":
    main()
