"""Train a small logistic-regression model with NumPy and track it with mltrail.

Run it from the repository root:  python examples/train_numpy.py
It logs a run into the embedded store (./.mltrail/) and then shows it with
``mltrail runs show``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

import numpy as np

import mltrail


def make_data(rng: np.random.Generator, n: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Two Gaussian blobs, linearly separable up to noise."""
    w_true = rng.normal(size=dim)
    x = rng.normal(size=(n, dim))
    y = (x @ w_true + 0.5 * rng.normal(size=n) > 0).astype(np.float64)
    return x, y


def train(args: argparse.Namespace) -> str:
    rng = np.random.default_rng(args.seed)
    x, y = make_data(rng, args.samples, args.dim)
    split = int(0.8 * len(x))
    x_tr, y_tr, x_va, y_va = x[:split], y[:split], x[split:], y[split:]
    w = np.zeros(args.dim)
    b = 0.0
    config = {
        "lr": args.lr,
        "epochs": args.epochs,
        "seed": args.seed,
        "data": {"samples": args.samples, "dim": args.dim},
        "model": "logistic",
    }
    with mltrail.init(project="quickstart", config=config, tags={"example": "numpy"}) as run:
        for epoch in range(args.epochs):
            p = 1 / (1 + np.exp(-(x_tr @ w + b)))
            loss = -np.mean(y_tr * np.log(p + 1e-12) + (1 - y_tr) * np.log(1 - p + 1e-12))
            w -= args.lr * (x_tr.T @ (p - y_tr)) / len(x_tr)
            b -= args.lr * float(np.mean(p - y_tr))
            val_acc = float(np.mean(((x_va @ w + b) > 0) == y_va))
            mltrail.log({"train/loss": loss, "val/acc": val_acc}, step=epoch)
        run.set_tags({"final_val_acc": f"{val_acc:.3f}"})
        return run.run_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lr", type=float, default=0.5)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--dim", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-show", action="store_true", help="do not print the run afterwards")
    args = parser.parse_args()
    run_id = train(args)
    print(f"logged run {run_id}")
    if not args.no_show:
        subprocess.run([sys.executable, "-m", "mltrail", "runs", "show", run_id], check=True)


if __name__ == "__main__":
    main()
