"""A store with a bit of everything the audit trail records, for the audit tests."""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from mltrail.audit import keys
from mltrail.entities import RunStatus
from mltrail.store.batch import Batch, MetricSeries, RunCreate, StatusChange

BLOB = b"uncommitted diff\n"
BLOB_DIGEST = "sha256:" + hashlib.sha256(BLOB).hexdigest()
#: points per metric batch: above the open-chunk rewrite limit, so each batch is its own chunk
POINTS = 3000


@dataclass
class Trail:
    """What :func:`populate` made."""

    store: Any
    key: Path
    offbox: Path
    runs: list[str] = field(default_factory=list)
    metric_seqs: list[int] = field(default_factory=list)

    @property
    def engine(self) -> sa.Engine:
        return self.store._engine  # type: ignore[no-any-return]

    def sql(self, statement: str, **params: Any) -> Any:
        with self.engine.begin() as conn:
            return conn.execute(sa.text(statement), params)

    def scalar(self, statement: str, **params: Any) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(sa.text(statement), params).scalar()


def audit_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, every: int = 5) -> tuple[Path, Path]:
    """A signing key and an off-box folder, in the environment (before any store opens)."""
    key = tmp_path / "keys" / "audit.pem"
    offbox = tmp_path / "offbox"
    monkeypatch.setenv("MLTRAIL_AUDIT_KEY", str(key))
    monkeypatch.setenv("MLTRAIL_AUDIT_CHECKPOINTS", str(offbox))
    monkeypatch.setenv("MLTRAIL_AUDIT_CHECKPOINT_EVERY", str(every))
    keys.generate_key(key)
    return key, offbox


def run_batches(run_id: str, now: int) -> list[Batch]:
    """A run's life: creation with params, tags, state and a blob; three metric batches of
    :data:`POINTS` points; its end."""
    create = RunCreate(project="audit", name=f"run-{run_id[:4]}", created_ms=now, heartbeat_s=5.0)
    out = [
        Batch(
            run_id=run_id,
            create=create,
            params={"lr": 0.1, "layers": 4, "optimizer": "adam"},
            tags={"team": "fraud"},
            state={"environment": {"python": "3.11", "packages": ["numpy==2"]}},
            blobs={BLOB_DIGEST: BLOB},
        )
    ]
    rng = np.random.default_rng(len(run_id))
    for b in range(3):
        steps = np.arange(b * POINTS, (b + 1) * POINTS, dtype=np.int64)
        stamps = np.full(POINTS, now + b, dtype=np.int64)
        series = MetricSeries(steps, stamps, rng.random(POINTS))
        out.append(Batch(run_id=run_id, metrics={"loss": series}))
    out.append(Batch(run_id=run_id, status=StatusChange(RunStatus.FINISHED, now + 10)))
    return out


def populate(store: Any, key: Path, offbox: Path, runs: int = 2) -> Trail:
    """Runs, an artifact version, a registered model with an alias move, a token created and
    revoked; then a checkpoint of everything."""
    from mltrail.artifacts.records import NewVersion
    from mltrail.registry.records import NewModelVersion

    trail = Trail(store, key, offbox)
    now = int(time.time() * 1000)
    for i in range(runs):
        run_id = f"{i:02d}" + os.urandom(5).hex()
        trail.runs.append(run_id)
        for batch in run_batches(run_id, now):
            store.apply_batch(batch)
            if batch.metrics and i == 0:
                trail.metric_seqs.append(store.audit_size())
    digest = "sha256:" + "ab" * 32
    store.artifacts().log_version(
        NewVersion("audit", "model-files", "model", digest, "file", 10, 1, run_id=trail.runs[0])
    )
    reg = store.model_registry()
    reg.register_version(NewModelVersion("audit", "fraud", "model-files", 1, actor="alice"))
    reg.set_alias("audit", "fraud", "production", 1, actor="alice")
    tokens = store.tokens()
    token, _ = tokens.create("write", project="audit", name="ci")
    tokens.revoke(token.token_id)
    store.audit_checkpoint()
    return trail
