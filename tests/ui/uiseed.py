"""The store the UI tests browse, written with the real store API (``apply_batch``)."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mltrail.entities import RunStatus
from mltrail.store.batch import Batch, MetricSeries, RunCreate, StatusChange
from mltrail.store.registry import open_store
from mltrail.testing import make_batch

if TYPE_CHECKING:
    from mltrail.store.base import TrackingStore

SCRIPT = "<script>alert(1)</script>"
RTL = "abc\u202edef\u200bghi"
DIFF = (
    "diff --git a/train.py b/train.py\n"
    "index 1111111..2222222 100644\n"
    "--- a/train.py\n"
    "+++ b/train.py\n"
    "@@ -1,3 +1,3 @@\n"
    " import torch\n"
    "-lr = 0.01\n"
    "+lr = 0.1\n"
)
T0 = 1_700_000_000_000


@dataclass(frozen=True)
class Seeded:
    """What the seeded store holds: its folder and the run ids by role."""

    root: Path
    a: str
    b: str
    c: str
    repro: str
    bulk: list[str]


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _series(n: int, scale: float, seed: int, start_ms: int) -> MetricSeries:
    rng = np.random.default_rng(seed)
    steps = np.arange(n, dtype=np.int64)
    values = scale / (1.0 + steps / 50.0) + rng.normal(0.0, 0.02 * scale, n)
    return MetricSeries(steps, start_ms + steps * 100, values.astype(np.float64))


def _state(diff_digest: str, lock_digest: str, lr: float) -> dict[str, dict[str, object]]:
    return {
        "code": {
            "versioned": True,
            "entry_repo": "/work/repo",
            "repos": [
                {
                    "root": "/work/repo",
                    "sha": "3f" * 20,
                    "branch": "main",
                    "dirty": True,
                    "remotes": {"origin": "git@example.com:team/vision.git"},
                    "changed_files": ["train.py"],
                    "untracked": [],
                    "diff": diff_digest,
                    "diff_stats": {"files": 1, "insertions": 1, "deletions": 1},
                }
            ],
        },
        "environment": {
            "python": {
                "version": "3.11.9",
                "implementation": "CPython",
                "executable": "/usr/bin/python3",
            },
            "packages": {"numpy": "1.26.4", "torch": "2.3.0", "mltrail": "0.1.0"},
            "lock_files": [{"path": "uv.lock", "digest": lock_digest}],
        },
        "hardware": {
            "os": {"system": "Linux", "release": "6.1", "machine": "x86_64"},
            "hostname": "gpu-box",
            "cpu": {"model": "EPYC", "physical": 16, "logical": 32, "usable": 32},
            "memory_bytes": 64 * 2**30,
            "gpus": [],
            "nvml": {"reason": "no NVIDIA driver"},
        },
        "config": {"source": "argparse", "argv": ["train.py", f"--lr={lr}"]},
    }


def _vision(store: TrackingStore, ids: dict[str, str]) -> None:
    diff, lock = DIFF.encode(), b"version = 1\n"
    blobs = {_digest(diff): diff, _digest(lock): lock}
    specs = [
        ("a", "resnet-a", 0.01, "resnet", RunStatus.FINISHED, 1.0, {"note": SCRIPT, "rtl": RTL}),
        ("b", "resnet-b", 0.1, "resnet", RunStatus.CRASHED, 1.5, {}),
        ("c", "vit-c", 0.003, "vit", RunStatus.FAILED, 0.8, {}),
        ("repro", "resnet-a-repro", 0.01, "resnet", RunStatus.FINISHED, 1.0, {}),
    ]
    for i, (role, name, lr, model, status, scale, extra) in enumerate(specs):
        run_id, created = ids[role], T0 + i * 60_000
        tags = {"model": model, **extra}
        if role == "repro":
            tags["reproduction-of"] = ids["a"]
        create = RunCreate(
            project="vision",
            name=name,
            created_ms=created,
            heartbeat_s=5.0,
            user="alice",
            host="gpu-box",
            command="python train.py",
            config={"optim": {"lr": lr, "wd": 0.0}},
        )
        batch = Batch(run_id, create=create)
        batch.params = {"lr": lr, "model": model, "batch_size": 32}
        batch.tags = tags
        batch.metrics = {
            "loss": _series(2000, scale, i, created),
            "acc": _series(2000, 1.0 / scale, i + 10, created),
            "system/cpu_percent": _series(60, 50.0, i + 20, created),
        }
        batch.state = _state(_digest(diff), _digest(lock), lr)
        batch.blobs = blobs
        batch.console = [
            (created + k, "stdout", f"epoch {k} loss {1.0 / (k + 1):.4f}") for k in range(300)
        ] + [(created + 400, "stderr", "WARNING: gradient overflow at step 1234")]
        batch.status = StatusChange(status, created + 200_000)
        store.apply_batch(batch)


def seed_store(root: Path) -> Seeded:
    """Write the test projects into ``root / "store"`` and return their run ids."""
    ids = {role: uuid.uuid4().hex for role in ("a", "b", "c", "repro")}
    store = open_store(str(root / "store"), shared=False)
    try:
        _vision(store, ids)
        bulk = []
        rng = np.random.default_rng(7)
        for i in range(130):
            run_id = uuid.uuid4().hex
            batch = make_batch(
                run_id,
                project="bulk",
                created_ms=T0 + i * 1000,
                metrics={"acc": [(0, float(rng.random()))]},
            )
            batch.params = {"lr": float(rng.choice([0.1, 0.01, 0.001])), "seed": i}
            batch.status = StatusChange(RunStatus.FINISHED, T0 + i * 1000 + 500)
            store.apply_batch(batch)
            bulk.append(run_id)
    finally:
        store.close()
    return Seeded(root, ids["a"], ids["b"], ids["c"], ids["repro"], bulk)
