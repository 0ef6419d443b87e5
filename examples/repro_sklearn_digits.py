"""Reproducible training: a linear classifier on scikit-learn's digits, seeded.

    python examples/repro_sklearn_digits.py            # logs a run
    mltrail reproduce <run id>                         # -> identical

``mltrail.seed_everything`` seeds Python, NumPy (and torch when installed) and records the
seed; the model's own ``random_state`` comes from it too. Every epoch logs the training loss
and the validation accuracy; the learned coefficients are logged as an artifact, so
``mltrail reproduce`` compares both the metric series and the artifact's digest.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import mltrail


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--alpha", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--project", default="repro-examples")
    args = parser.parse_args()

    config = {"model": "sgd-logistic", "epochs": args.epochs, "alpha": args.alpha}
    with mltrail.init(project=args.project, config=config, tags={"example": "digits"}) as run:
        seed = mltrail.seed_everything(args.seed)["seed"]
        x, y = load_digits(return_X_y=True)
        x_tr, x_va, y_tr, y_va = train_test_split(x, y, test_size=0.25, random_state=seed)
        scaler = StandardScaler().fit(x_tr)
        x_tr, x_va = scaler.transform(x_tr), scaler.transform(x_va)
        classes = np.unique(y)
        model = SGDClassifier(loss="log_loss", alpha=args.alpha, random_state=seed)
        rng = np.random.default_rng(seed)
        for epoch in range(args.epochs):
            order = rng.permutation(len(x_tr))
            for batch in np.array_split(order, 10):
                model.partial_fit(x_tr[batch], y_tr[batch], classes=classes)
            loss = log_loss(y_tr, model.predict_proba(x_tr), labels=classes)
            mltrail.log({"train/loss": loss, "val/acc": float(model.score(x_va, y_va))}, step=epoch)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "coef.npy"
            np.save(path, model.coef_)
            run.log_artifact(path, name="digits-coef", type="model")
        print(f"logged run {run.run_id}")


if __name__ == "__main__":
    main()
