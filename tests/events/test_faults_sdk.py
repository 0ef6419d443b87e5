"""Fault injection over the SDK's write path: fail the Nth I/O call for every N.

SQLite's discipline applied to the run lifecycle: a real workload (create a run, params,
30 steps of two metrics with a flush every 10, tags, finish) is run once to count the
``open``/``write``/``fsync``/``rename``/``truncate`` calls it makes under the store's folder,
then once per N with the N-th call failing (ENOSPC, then EIO). The workload goes on after a
failure the way a training script that catches errors would, and a recovery runs at the end.
After each: every acknowledged step is in the store with both keys (no step half present),
acknowledged params and tags are there, the status is final, SQLite passes
``integrity_check``, and every failure the user saw was an ``MltrailError`` naming the path.

``MLTRAIL_FAULTS_FULL=1`` runs the longer mode (more steps, every op kind on its own too).
The number of fault points exercised is printed (``-s``) and written to
``faults-sdk.json`` in the test's temporary directory.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import mltrail
from mltrail.entities import RunStatus
from mltrail.errors import MltrailError
from mltrail.store.registry import forget_open_stores
from mltrail.testing.faults import FaultInjector

FULL = os.environ.get("MLTRAIL_FAULTS_FULL", "") == "1"
STEPS = 120 if FULL else 30
FLUSH_EVERY = 10


@dataclass
class Outcome:
    """What the workload saw: which calls returned (acknowledged) and which raised."""

    run_id: str | None = None
    acked_steps: list[int] = field(default_factory=list)
    params: bool = False
    tags: bool = False
    finished: bool = False
    errors: list[BaseException] = field(default_factory=list)


def _attempt(out: Outcome, fn, *args, **kwargs) -> bool:  # noqa: ANN001
    try:
        fn(*args, **kwargs)
    except MltrailError as exc:
        out.errors.append(exc)
        return False
    return True


def _workload(store: Path) -> Outcome:
    out = Outcome()
    run = None
    for _ in range(2):  # a failed init is retried once, as a user would
        try:
            run = mltrail.init(
                project="faults", store=store, heartbeat_s=60, capture=False, console=False
            )
            break
        except MltrailError as exc:
            out.errors.append(exc)
    if run is None:
        return out
    out.run_id = run.run_id
    out.params = _attempt(out, run.log_params, {"lr": 0.1, "opt": "adam"})
    for step in range(STEPS):
        if _attempt(out, run.log, {"a": float(step), "b": step * 2.0}, step=step):
            out.acked_steps.append(step)
        if step % FLUSH_EVERY == FLUSH_EVERY - 1:
            _attempt(out, run.flush, 30)
    out.tags = _attempt(out, run.set_tags, {"phase": "done"})
    for _ in range(2):  # finish is retried once if its status could not be written
        if _attempt(out, run.finish):
            out.finished = True
            break
    return out


def _check(store: Path, out: Outcome, label: str) -> None:
    for exc in out.errors:
        assert isinstance(exc, MltrailError), (label, exc)
        assert str(store) in str(exc) or "spool" in str(exc), (label, exc)
    forget_open_stores()
    api = mltrail.Api(store)  # recovery of anything left behind
    if out.run_id is None:
        return
    record = api.run(out.run_id)
    if out.finished:
        assert record.status is RunStatus.FINISHED, (label, record.status)
    else:
        assert record.status is not RunStatus.RUNNING, label
    series = {k: api.history(out.run_id, k).steps.tolist() for k in ("a", "b")}
    assert series["a"] == series["b"], label  # no step half present
    assert set(out.acked_steps) <= set(series["a"]), (label, out.acked_steps, series["a"])
    if out.params:
        assert record.params.items() >= {"lr": 0.1, "opt": "adam"}.items(), label
    if out.tags:
        assert record.tags.get("phase") == "done", label
    with sqlite3.connect(store / "mltrail.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok", label


def test_every_io_fault_along_a_run_loses_nothing_acknowledged(tmp_path: Path) -> None:
    """For every N and errno, failing the N-th I/O call keeps every acknowledged point."""
    probe = tmp_path / "probe"
    with FaultInjector(probe) as counter:
        _workload(probe)
    total = counter.count
    assert total > STEPS  # every log() is a write: the workload was really counted
    exercised = 0
    fired_by_op: dict[str, int] = {}
    for err in (errno.ENOSPC, errno.EIO):
        for n in range(1, total + 1):
            store = tmp_path / f"s-{err}-{n}"
            with FaultInjector(store, fail_at=n, errno_=err) as faults:
                out = _workload(store)
            label = f"{errno.errorcode[err]} at call {n}"
            _check(store, out, label)
            for point in faults.fired:
                exercised += 1
                fired_by_op[point.op] = fired_by_op.get(point.op, 0) + 1
    report = {"io_calls_per_workload": total, "fault_points": exercised, "by_op": fired_by_op}
    (tmp_path / "faults-sdk.json").write_text(json.dumps(report))
    print(f"\nSDK fault injection: {json.dumps(report)}")
    assert exercised >= total  # each N fired (the count is deterministic)


@pytest.mark.parametrize("torn", [False, True], ids=["refused", "short-write"])
def test_a_disk_that_stays_full_then_frees_loses_nothing_acknowledged(
    tmp_path: Path, torn: bool
) -> None:
    """A sticky ENOSPC from the N-th call until healed: later acknowledged points all land."""
    store = tmp_path / "store"
    run = mltrail.init(project="full", store=store, heartbeat_s=60, capture=False, console=False)
    acked = []
    with FaultInjector(store, fail_at=20, sticky=True, torn=torn) as faults:
        for step in range(200):
            if step == 120:
                faults.heal()
            try:
                run.log({"a": float(step), "b": 0.0}, step=step)
            except MltrailError:
                continue
            acked.append(step)
    run.finish()
    forget_open_stores()
    api = mltrail.Api(store)
    assert api.run(run.run_id).status is RunStatus.FINISHED
    assert api.history(run.run_id, "a").steps.tolist() == acked
    assert acked[-80:] == list(range(120, 200))
