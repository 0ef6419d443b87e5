"""A process attached to a ``mltrail run`` wrapper that names its project keeps it.

``mltrail run -- python train.py`` creates the run before the program starts; a program that
calls ``mltrail.init(project="x")`` moves it to ``x`` (created when missing), so one script's
runs never split across two projects by how they were started. The move is an ordinary,
idempotent batch (``Batch.project``): on the wire, scoped by the server like any write, and
in the audit trail (``verify`` stays ok after it).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import mltrail
from mltrail.audit.verify import verify_log
from mltrail.store.batch import Batch, RunCreate
from mltrail.store.registry import open_store
from mltrail.store.wire import decode_batch, encode_batch

SRC = str(Path(mltrail.__file__).resolve().parents[1])


def test_a_batch_moves_a_run_and_the_trail_still_verifies(store_uri: str) -> None:
    store = open_store(store_uri, shared=False)
    try:
        store.apply_batch(
            Batch(
                "mv1", source="mv1.a", end=10, create=RunCreate("default", "n", 1, 5.0, "", "", "")
            )
        )
        moved = Batch("mv1", source="mv1.b", end=10, project="vision")
        store.apply_batch(decode_batch(encode_batch(moved)))  # through the wire form too
        store.apply_batch(moved)  # a retry: a no-op
        assert store.get_run("mv1").project == "vision"
        assert {p.name: p.run_count for p in store.list_projects()} == {
            "default": 0,
            "vision": 1,
        }
        assert verify_log(store).ok
    finally:
        store.close()


def test_a_childs_project_wins_under_mltrail_run(tmp_path: Path) -> None:
    store = tmp_path / "store"
    script = tmp_path / "train.py"
    script.write_text(
        "import mltrail\n"
        "run = mltrail.init(project='vision')\n"
        "run.log({'loss': 0.5})\n"
        "print('CHILD', run.project)\n"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mltrail",
            "run",
            "--store",
            str(store),
            "--",
            sys.executable,
            str(script),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": SRC, "MLTRAIL_SYSTEM_METRICS_S": "0"},
    )
    assert done.returncode == 0, done.stderr
    assert "CHILD vision" in done.stdout
    (run,) = mltrail.Api(store).runs()
    assert run.project == "vision" and run.metrics["loss"].last == 0.5
    assert {p.name for p in mltrail.Api(store).projects() if p.run_count} == {"vision"}


@pytest.mark.parametrize("bad", ["", "a" * 300])
def test_a_bad_project_on_the_wire_is_refused(bad: str) -> None:
    from mltrail.errors import InvalidArgumentError

    wire = encode_batch(Batch("mv2", project=bad))
    with pytest.raises(InvalidArgumentError, match="project"):
        decode_batch(wire)
