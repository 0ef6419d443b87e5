"""``mltrail runs list`` read with the standard library alone (store/sql/lite.py).

The light read must return exactly the records the full store returns (every status, the
crashed-by-heartbeat rule, params of every type, NaN metrics, two projects, ties on the
creation time), never import SQLAlchemy or NumPy, and step aside (None) whenever the full
path must answer: a spool to recover, another schema revision, a filter, a server store.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import mltrail
from mltrail.cli._light import lite_run, lite_runs, open_api
from mltrail.store.sql import lite
from mltrail.store.sql.schema import SCHEMA_REVISION


def _doc(records: list[mltrail.RunRecord]) -> str:
    return json.dumps([r.to_dict() for r in records], sort_keys=True, default=str)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("lite") / "store")
    kinds = [{"lr": 0.1, "n": 3, "on": True, "opt": "adam", "none": None}, {"lr": 1e-9}, {}]
    for i in range(12):
        run = mltrail.init(
            project="a" if i % 3 else "b",
            name=f"r{i}",
            store=path,
            capture=False,
            system_metrics_s=0,
            config=kinds[i % 3],
            tags={"k": str(i)},
        )
        run.log({"loss": 1.0 / (i + 1), "nan": float("nan")}, step=0)
        run.log({"loss": 0.5 / (i + 1)}, step=1)
        run.finish("failed" if i == 4 else "finished")
    mltrail.Api(path)  # the runs' drains are done (finish() returned before them)
    db = Path(path) / "mltrail.db"
    with sqlite3.connect(db) as conn:  # a run still marked running, heartbeat long gone
        conn.execute(
            "UPDATE runs SET status = 'running', end_ms = NULL, heartbeat_ms = created_ms - 60000"
            " WHERE name = 'r5'"
        )
        conn.execute("UPDATE runs SET created_ms = 1000 WHERE name IN ('r7', 'r8')")  # a tie
    return path


@pytest.mark.parametrize("project", [None, "a", "b", "missing"])
@pytest.mark.parametrize("limit", [1, 5, 100])
def test_the_light_read_returns_what_the_store_returns(
    store: str, project: str | None, limit: int
) -> None:
    light = lite_runs(store, project, limit)
    assert light is not None
    full = open_api(store).runs(project=project, limit=limit)
    assert _doc(light) == _doc(full)
    if project == "a" and limit == 100:
        statuses = {r.name: r.status.value for r in light}
        assert statuses["r5"] == "crashed" and statuses["r4"] == "failed"


def test_runs_list_imports_neither_sqlalchemy_nor_numpy(store: str) -> None:
    code = (
        "import sys\n"
        "from mltrail.cli._entry import main\n"
        f"sys.argv = ['mltrail', 'runs', 'list', '--store', {store!r}, '--json']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('sqlalchemy', 'numpy', 'typer') if m in sys.modules]\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=os.environ
    )
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stderr, done.stderr
    assert len(json.loads(done.stdout)) == 12


def test_the_full_path_answers_when_the_light_read_cannot(
    store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert lite.READABLE_REVISIONS[-1] == SCHEMA_REVISION  # kept by hand: this test says so
    assert lite_runs("http://127.0.0.1:9/", None, 5) is None  # a server store
    assert lite_runs(str(tmp_path / "nothing"), None, 5) is None  # no store there
    monkeypatch.setattr(lite, "READABLE_REVISIONS", ("0000",))  # another revision
    assert lite_runs(store, None, 5) is None
    monkeypatch.undo()
    spool_dir = Path(store) / "spool"
    leftover = spool_dir / "zzzzzzzzzzzz.00000000.spool"  # a spool that recovery must see
    leftover.write_bytes(b"")
    try:
        assert lite_runs(store, None, 5) is None
    finally:
        leftover.unlink()
    assert lite_runs(store, None, 5) is not None


def _show(capsys: pytest.CaptureFixture[str], store: str, run: str, light: bool) -> str:
    from mltrail.cli import runs_view

    capsys.readouterr()
    if light:
        runs_view.show_run(run, as_json=True, store=store)
    else:
        saved = runs_view.lite_run
        runs_view.lite_run = lambda *a: None  # type: ignore[assignment]
        try:
            runs_view.show_run(run, as_json=True, store=store)
        finally:
            runs_view.lite_run = saved
    return capsys.readouterr().out


def test_runs_show_reads_light_and_prints_the_same(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(tmp_path / "store")
    with mltrail.init(project="p", name="shown", store=path, config={"lr": 0.1}) as run:
        for i in range(30):
            print(f"epoch {i}")
            run.log({"loss": 1.0 / (i + 1)}, step=i)
    mltrail.Api(path)  # drained
    light = lite_run(path, run.run_id[:6].upper(), 20)  # a prefix, in the wrong case
    assert light is not None
    record, state, tail, verdicts = light
    assert verdicts == []
    assert record.run_id == run.run_id and {"code", "config", "environment"} <= set(state)
    assert [line.text for line in tail][-1] == "epoch 29" and len(tail) == 20
    assert _show(capsys, path, run.run_id, True) == _show(capsys, path, run.run_id, False)
    with pytest.raises(mltrail.errors.NotFoundError, match="no run id starts with 'zz'"):
        lite_run(path, "zz", 20)
    # a run with an artifact: the artifact store answers (full path)
    with mltrail.init(project="p", store=path, capture=False) as other:
        (tmp_path / "m.txt").write_text("weights")
        other.log_artifact(tmp_path / "m.txt", name="model")
    mltrail.Api(path)
    assert lite_run(path, other.run_id, 20) is None


def test_runs_show_carries_the_checklist_with_reproduction_verdicts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(tmp_path / "store")
    original = mltrail.init(project="p", store=path, capture=False)
    original.finish()
    other = mltrail.init(project="q", store=path, capture=False, tags={"reproduction-of": "x"})
    other.finish()  # another project's run: never counted
    again = mltrail.init(
        project="p",
        store=path,
        capture=False,
        tags={"reproduction-of": original.run_id, "mltrail.verdict": "identical"},
    )
    again.finish()
    mltrail.Api(path)
    for light in (True, False):
        doc = json.loads(_show(capsys, path, original.run_id, light))
        checks = {c["name"]: c for c in doc["checklist"]["checks"]}
        assert checks["verdict"]["result"] == "pass", light
        assert checks["verdict"]["reason"] == "reproduced: identical"
    plain = json.loads(_show(capsys, path, again.run_id, True))
    assert {c["name"]: c["result"] for c in plain["checklist"]["checks"]}["verdict"] == "warn"
    printed = cli_text(path, original.run_id)
    assert "reproducibility checklist  score" in printed and "✓ verdict" in printed


def cli_text(store: str, run_id: str) -> str:
    from clihelp import cli

    done = cli("runs", "show", run_id, "--store", store, env={"COLUMNS": "120"})
    assert done.exit_code == 0, done.output
    return done.stdout
