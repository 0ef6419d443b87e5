"""A failed run keeps what failed it: type, message, where, traceback (issue item 14).

Recorded inside ``with mltrail.init(...)``, at the interpreter's top level (no ``with``), and
by ``mltrail run`` from the traceback a plain Python script printed; shown by ``runs show``,
``mltrail diff`` (outcome), the run page and the runs table.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import mltrail
from mltrail.entities import RunStatus
from mltrail.store.registry import forget_open_stores

MLTRAIL = str(Path(sys.executable).with_name("mltrail"))
sys.path.insert(0, str(Path(__file__).parent / "cli"))
from clihelp import cli, strict_json  # noqa: E402


@pytest.fixture(autouse=True)
def _close_stores():
    yield
    forget_open_stores()


def _env(store: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(MLTRAIL_STORE=str(store), MLTRAIL_ALLOW_DIRTY="1", MLTRAIL_CAPTURE="0")
    return env


def _fail_in_with(store: Path, project: str, exc: BaseException) -> str:
    """A run whose `with` block logs one point and raises ``exc``; its id."""
    started: list[str] = []
    with pytest.raises(type(exc)):
        _raise_in_run(store, project, exc, started)
    return started[0]


def _raise_in_run(store: Path, project: str, exc: BaseException, started: list[str]) -> None:
    with mltrail.init(project=project, store=store, capture=False) as run:
        started.append(run.run_id)
        run.log({"x": 1.0})
        raise exc


def _only_run(store: Path) -> str:
    [rec] = mltrail.Api(store).runs()
    return rec.run_id


def test_exception_in_with_block_is_recorded(tmp_path: Path) -> None:
    """An exception leaving `with init()`: failed, with type, message, line and traceback."""
    store = tmp_path / "store"
    run_id = _fail_in_with(store, "e", ValueError("bad shape (3, 4)"))
    api = mltrail.Api(store)
    record = api.run(run_id)
    assert record.status is RunStatus.FAILED
    err = api.state(run_id)["error"]
    assert err["type"] == "ValueError"
    assert err["message"] == "bad shape (3, 4)"
    assert err["where"].startswith(f"{__file__}:")
    assert "_raise_in_run" in err["where"]
    assert "Traceback (most recent call last)" in err["traceback"]
    assert record.tags["mltrail.error"].startswith("ValueError: bad shape (3, 4) (")


def test_uncaught_exception_at_top_level_is_recorded(tmp_path: Path) -> None:
    """No `with`: the excepthook keeps the error and the atexit hook marks the run failed."""
    store = tmp_path / "store"
    script = tmp_path / "train.py"
    script.write_text(
        "import mltrail\n"
        "run = mltrail.init(project='top')\n"
        "run.log({'x': 1.0})\n"
        "def step():\n"
        "    raise KeyError('missing column')\n"
        "step()\n"
    )
    out = subprocess.run(
        [sys.executable, str(script)],
        env=_env(store),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert out.returncode == 1
    assert "KeyError" in out.stderr  # the usual traceback is still printed
    api = mltrail.Api(store)
    run_id = _only_run(store)
    assert api.run(run_id).status is RunStatus.FAILED
    err = api.state(run_id)["error"]
    assert (err["type"], err["message"]) == ("KeyError", "'missing column'")
    assert err["where"] == f"{script}:5 in step"


def test_wrapped_script_traceback_is_recorded(tmp_path: Path) -> None:
    """`mltrail run -- python script.py` keeps a plain script's traceback as the run's error."""
    store = tmp_path / "store"
    script = tmp_path / "plain.py"
    script.write_text("print('training')\nimport json\njson.loads('{oops')\n")
    out = subprocess.run(
        [MLTRAIL, "run", "--project", "w", "--", sys.executable, str(script)],
        env=_env(store),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert out.returncode != 0
    api = mltrail.Api(store)
    run_id = _only_run(store)
    assert api.run(run_id).status is RunStatus.FAILED
    err = api.state(run_id)["error"]
    assert err["type"] == "json.decoder.JSONDecodeError"
    assert err["message"].startswith("Expecting property name")
    assert err["source"] == "stderr"
    assert "json/decoder.py" in err["where"] or "plain.py" in err["traceback"]


def test_runs_show_and_diff_report_the_error(tmp_path: Path) -> None:
    """`runs show` prints the error at the top; `diff` lists status and error under outcome."""
    store = tmp_path / "store"
    with mltrail.init(project="d", store=store, capture=False) as ok:
        ok.log({"x": 1.0})
    bad = _fail_in_with(store, "d", RuntimeError("CUDA out of memory"))
    shown = cli("runs", "show", bad, "--store", str(store))
    assert shown.exit_code == 0, shown.output
    assert "RuntimeError: CUDA out of memory" in shown.output
    as_json = strict_json(cli("runs", "show", bad, "--json", "--store", str(store)).output)
    assert as_json["state"]["error"]["type"] == "RuntimeError"
    diff = strict_json(cli("diff", ok.run_id, bad, "--json", "--store", str(store)).output)
    changes = {c["key"]: c for c in diff["kinds"]["outcome"]["changes"]}
    assert (changes["status"]["a"], changes["status"]["b"]) == ("finished", "failed")
    assert changes["error"]["a"] is None
    assert changes["error"]["b"].startswith("RuntimeError: CUDA out of memory")
    assert diff["kinds"]["outcome"]["identical"] is False


def test_run_page_and_table_show_the_error(tmp_path: Path) -> None:
    """The run page shows the error at the top; the runs table's status carries it on hover."""
    pytest.importorskip("fastapi")
    sys.path.insert(0, str(Path(__file__).parent / "server"))
    from srvhelp import Client

    from mltrail.server.app import ServerConfig, create_app

    store = tmp_path / "store"
    run_id = _fail_in_with(store, "ui", ZeroDivisionError("division by zero"))
    app = create_app(ServerConfig(str(store), str(tmp_path / "art"), auth=False))
    client = Client(app)
    try:
        page = client.get(f"/runs/{run_id}")
        assert page.status_code == 200
        assert 'id="run-error"' in page.text
        assert "ZeroDivisionError: division by zero" in page.text
        table = client.get("/p/ui")
        assert 'title="ZeroDivisionError: division by zero' in table.text
    finally:
        client.close()
        app.state.store.close()


def test_an_error_message_with_nul_and_surrogates_is_stored(tmp_path: Path) -> None:
    """Exception text that no store could hold (NUL, lone surrogate) is escaped, not lost."""
    store = tmp_path / "store"
    run_id = _fail_in_with(store, "e", ValueError("a\x00b\ud800c"))
    err = mltrail.Api(store).state(run_id)["error"]
    assert err["message"] == "a\\x00b\\ud800c"
