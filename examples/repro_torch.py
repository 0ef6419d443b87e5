"""A small PyTorch model trained with or without ``mltrail.seed_everything``.

    python examples/repro_torch.py --seed 0          # seeded: reproduce -> identical
    python examples/repro_torch.py                   # unseeded: reproduce -> diverged at step 0
    python examples/repro_torch.py --seed 0 --device cuda [--deterministic]

The training data is drawn from NumPy's global generator, as many pipelines do: without
seeding it differs from run to run (torch's own generator starts from a fixed default seed,
so the weights alone would not show it).

The model mixes ops whose CUDA kernels are non-deterministic by default (embedding backward,
``index_add_``, ``scatter_add_``: atomic adds in arbitrary order) with a 1-d convolution, so
on a GPU two seeded runs with default kernels can differ in the last bits while
``--deterministic`` (``seed_everything(deterministic=True)``) makes them bit-identical. On the
CPU these kernels are deterministic; fix the thread count too (``OMP_NUM_THREADS``, which the
run records and ``mltrail reproduce`` restores) for bit-identical runs on a busy machine.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch import nn

import mltrail


class Model(nn.Module):
    """Token embeddings -> conv1d -> per-position scores pooled by group with index_add_."""

    def __init__(self, vocab: int, dim: int, groups: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.conv = nn.Conv1d(dim, dim, kernel_size=3, padding=1)
        self.head = nn.Linear(dim, 1)
        self.groups = groups

    def forward(self, tokens: torch.Tensor, group: torch.Tensor) -> torch.Tensor:
        h = self.embed(tokens).transpose(1, 2)  # (batch, dim, length)
        h = torch.relu(self.conv(h)).mean(dim=2)  # (batch, dim)
        scores = self.head(h).squeeze(1)  # (batch,)
        pooled = torch.zeros(self.groups, device=scores.device, dtype=scores.dtype)
        pooled = pooled.index_add(0, group, scores)  # non-deterministic on CUDA by default
        counts = torch.zeros_like(pooled).scatter_add(0, group, torch.ones_like(scores))
        return scores + (pooled / counts.clamp(min=1))[group]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=None, help="seed (default: not seeded)")
    parser.add_argument("--deterministic", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--vocab", type=int, default=500)
    parser.add_argument("--length", type=int, default=16)
    parser.add_argument("--project", default="repro-examples")
    args = parser.parse_args()

    config = {k: getattr(args, k) for k in ("steps", "batch", "dim", "vocab", "length")}
    with mltrail.init(project=args.project, config=config, tags={"example": "torch"}) as run:
        if args.seed is not None:
            mltrail.seed_everything(args.seed, deterministic=args.deterministic)
        device = torch.device(args.device)
        groups = 8
        model = Model(args.vocab, args.dim, groups).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        w_true = torch.as_tensor(np.random.normal(size=args.vocab), dtype=torch.float32)
        w_true = w_true.to(device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        for step in range(args.steps):
            tokens = torch.as_tensor(np.random.randint(0, args.vocab, (args.batch, args.length)))
            group = torch.as_tensor(np.random.randint(0, groups, args.batch))
            tokens, group = tokens.to(device), group.to(device)
            target = w_true[tokens].mean(dim=1)
            loss = nn.functional.mse_loss(model(tokens, group), target)
            opt.zero_grad()
            loss.backward()
            opt.step()
            mltrail.log({"train/loss": loss.item()}, step=step)
        if device.type == "cuda":
            torch.cuda.synchronize()
        # a tag, not a metric: timings differ between runs and must not enter the verdict
        run.set_tags({"train_seconds": f"{time.perf_counter() - started:.4f}"})
        print(f"logged run {run.run_id}")


if __name__ == "__main__":
    main()
