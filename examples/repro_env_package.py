"""Ridge regression whose features are scaled by a dependency, ``featscale``.

    PYTHONPATH=examples/featscale/v1.0 python examples/repro_env_package.py
    PYTHONPATH=examples/featscale/v1.1 mltrail reproduce <run id> --env current

``featscale`` stands for any dependency whose upgrade changes the numbers: version 1.0
scales by the population standard deviation, 1.1 by the sample one. The environment capture
records ``featscale 1.0``; reproducing under 1.1 diverges, and ``mltrail reproduce`` names
the package version difference next to the verdict.
"""

from __future__ import annotations

import argparse

import featscale
import numpy as np
from sklearn.datasets import load_diabetes

import mltrail


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--project", default="repro-examples")
    args = parser.parse_args()

    with mltrail.init(project=args.project, config={"alpha": args.alpha, "steps": args.steps}):
        mltrail.seed_everything(0)
        x, y = load_diabetes(return_X_y=True)
        x = featscale.scale(x)
        y = (y - y.mean()) / y.std()
        w = np.zeros(x.shape[1])
        lr = 0.1
        for step in range(args.steps):
            grad = x.T @ (x @ w - y) / len(x) + args.alpha * w / len(x)
            w -= lr * grad
            loss = float(np.mean((x @ w - y) ** 2))
            mltrail.log({"train/mse": loss, "weights/norm": float(np.linalg.norm(w))}, step=step)


if __name__ == "__main__":
    main()
