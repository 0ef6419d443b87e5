"""The ``mltrail`` command line: every command against a real store, outputs parsed back."""

from __future__ import annotations

import csv
import io
import math
import os
import signal
import struct
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
from clihelp import cli, strict_json
from typer.testing import Result

import mltrail
from mltrail.api import Api
from mltrail.events.codec import FRAME_HEADER
from mltrail.sdk import init as sdk_init
from mltrail.testing import user_tags

ID_A = "abcd00000001"
ID_B = "abcd00000002"
ID_C = "zz0000000003"
NAN, INF = float("nan"), float("inf")
SPECIAL = [
    0.1,
    1 / 3,
    5e-324,
    -0.0,
    1.7976931348623157e308,
    NAN,
    INF,
    -INF,
    1e-300,
    123456789.123,
    2.0**53 + 1,
]
ACC = [0.5, 0.75, NAN]
LOSS_A = [1.0 / (i + 1) for i in range(10)]


@dataclass(frozen=True)
class Store:
    path: str


def _bits(x: float) -> bytes:
    return struct.pack("<d", x)


def assert_error(result: Result, *fragments: str) -> None:
    """An expected error: exit 1, one red line on stderr, no traceback, nothing on stdout."""
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.stdout == ""
    assert result.stderr.startswith("error: ")
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """Three finished runs (two sharing an id prefix) in a fresh embedded store."""
    path = str(tmp_path_factory.mktemp("cli") / "store")
    ids = iter([ID_A, ID_B, ID_C])
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sdk_init, "new_run_id", lambda: next(ids))
        a = mltrail.init(
            project="vision",
            name="resnet-a",
            store=path,
            config={"lr": 0.01, "model": {"depth": 4, "name": "resnet"}},
            tags={"team": "core"},
        )
        for step, loss in enumerate(LOSS_A):
            a.log({"loss": loss}, step=step)
        for step, acc in enumerate(ACC):
            a.log({"acc": acc}, step=step)
        for step, x in enumerate(SPECIAL):
            a.log({"special": x}, step=step)
        a.finish()
        b = mltrail.init(project="vision", name="resnet-b", store=path, config={"lr": 0.1})
        b.log({"loss": 2.5})
        b.finish("failed")
        c = mltrail.init(project="nlp", name="bert", store=path)
        c.log({"acc": 0.9})
        c.finish("killed")
    return Store(path)


# -- basics -----------------------------------------------------------------------------------


def test_version() -> None:
    """``--version`` prints the package version and exits 0."""
    result = cli("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"mltrail {mltrail.__version__}"


def test_help_lists_every_command() -> None:
    """``--help`` names every command group."""
    result = cli("--help")
    assert result.exit_code == 0
    for name in ("runs", "metrics", "projects", "sync"):
        assert name in result.stdout


def test_import_is_light() -> None:
    """Importing the CLI loads neither Rich tables, the store, SQLAlchemy nor NumPy."""
    code = (
        "import sys, mltrail.cli.main\n"
        "heavy = ['rich.table', 'sqlalchemy', 'numpy', 'mltrail.api', 'mltrail.store.sql']\n"
        "print([m for m in heavy if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


# -- runs list ------------------------------------------------------------------------------


def test_runs_list_table(store: Store) -> None:
    """The table shows every run's id, project, name, status and last metric values."""
    result = cli("runs", "list", "--store", store.path)
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    for text in (ID_A, ID_B, ID_C, "vision", "nlp", "resnet-a", "resnet-b", "bert"):
        assert text in out
    for status in ("finished", "failed", "killed"):
        assert status in out
    header = out.splitlines()[0].split()
    assert header[:6] == ["id", "project", "name", "status", "created", "duration"]
    assert {"loss", "acc"} <= set(header[6:])
    row_a = next(line for line in out.splitlines() if line.startswith(ID_A))
    assert "0.1" in row_a.split()  # loss at the last step: 1/10
    assert "nan" in row_a.split()  # acc ends with NaN


def test_runs_list_json(store: Store) -> None:
    """``--json`` prints only strict JSON: every run as RunRecord.to_dict()."""
    result = cli("runs", "list", "--json", "--store", store.path)
    assert result.exit_code == 0, result.stderr
    runs = strict_json(result.stdout)
    assert isinstance(runs, list)
    by_id = {r["run_id"]: r for r in runs}
    assert set(by_id) == {ID_A, ID_B, ID_C}
    a = by_id[ID_A]
    assert a["status"] == "finished"
    assert a["project"] == "vision"
    assert a["params"] == {"lr": 0.01, "model.depth": 4, "model.name": "resnet"}
    assert a["metrics"]["acc"]["last"] == "NaN"
    assert a["metrics"]["special"]["max"] == "Infinity"
    assert by_id[ID_B]["status"] == "failed"
    assert by_id[ID_C]["status"] == "killed"


def test_runs_list_project_and_limit(store: Store) -> None:
    """``--project`` restricts to one project; ``--limit`` caps the rows and says so."""
    only = strict_json(cli("runs", "list", "-p", "nlp", "--json", "--store", store.path).stdout)
    assert [r["run_id"] for r in only] == [ID_C]
    capped = cli("runs", "list", "--limit", "1", "--store", store.path)
    assert capped.exit_code == 0
    assert sum(i in capped.stdout for i in (ID_A, ID_B, ID_C)) == 1
    assert "showing the first 1 runs" in capped.stdout
    capped_json = cli("runs", "list", "--limit", "1", "--json", "--store", store.path)
    assert len(strict_json(capped_json.stdout)) == 1
    assert cli("runs", "list", "--limit", "0", "--store", store.path).exit_code == 2


def test_runs_list_filter_and_order(store: Store) -> None:
    """``--filter`` and ``--order-by`` reach the store's search."""
    result = cli("runs", "list", "--filter", "params.lr > 0.05", "--json", "--store", store.path)
    assert result.exit_code == 0, result.stderr
    assert [r["run_id"] for r in strict_json(result.stdout)] == [ID_B]
    ordered = cli("runs", "list", "--order-by", "name asc", "--json", "--store", store.path)
    assert ordered.exit_code == 0, ordered.stderr
    names = [r["name"] for r in strict_json(ordered.stdout)]
    assert names == ["bert", "resnet-a", "resnet-b"]


def test_runs_list_bad_filter(store: Store) -> None:
    """A filter that does not parse is one error line naming the position, exit 1."""
    result = cli("runs", "list", "--filter", "metrics.loss <<< 1", "--store", store.path)
    assert_error(result, "position")


def test_runs_list_empty_project(store: Store) -> None:
    """A project with no runs prints "no runs" (and [] with --json)."""
    assert "no runs" in cli("runs", "list", "-p", "nope", "--store", store.path).stdout
    result = cli("runs", "list", "-p", "nope", "--json", "--store", store.path)
    assert strict_json(result.stdout) == []


# -- runs show ------------------------------------------------------------------------------


def test_runs_show_sections(store: Store) -> None:
    """``runs show`` prints overview, sorted params, nested config, tags and summaries."""
    result = cli("runs", "show", ID_A, "--store", store.path)
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    for section in ("overview", "params", "config", "tags", "metrics"):
        assert f"\n{section}\n" in out
    for text in (ID_A, "vision", "resnet-a", "finished", "user", "host", "command"):
        assert text in out
    params = [out.index(k) for k in ("lr ", "model.depth", "model.name")]
    assert params == sorted(params)
    assert '"model": {' in out
    assert '"depth": 4' in out
    assert "team" in out
    assert "core" in out
    special = next(line for line in out.splitlines() if line.startswith("special"))
    # key, last, step, min, max, count; min/max ignore NaN and include ±inf
    assert special.split() == ["special", "9.0072e+15", "10", "-inf", "inf", str(len(SPECIAL))]
    acc = next(line for line in out.splitlines() if line.startswith("acc"))
    assert acc.split() == ["acc", "nan", "2", "0.5", "0.75", "3"]


def test_runs_show_by_prefix(store: Store) -> None:
    """An unambiguous id prefix resolves to its run."""
    result = cli("runs", "show", "zz", "--store", store.path)
    assert result.exit_code == 0, result.stderr
    assert ID_C in result.stdout
    assert "killed" in result.stdout


def test_runs_show_json(store: Store) -> None:
    """``runs show --json`` is strict JSON of RunRecord.to_dict(), loadable by from_dict."""
    result = cli("runs", "show", "abcd00000001", "--json", "--store", store.path)
    assert result.exit_code == 0, result.stderr
    data = strict_json(result.stdout)
    assert isinstance(data, dict)
    record = mltrail.RunRecord.from_dict(data)
    assert record.run_id == ID_A
    assert record.config == {"lr": 0.01, "model": {"depth": 4, "name": "resnet"}}
    assert user_tags(record.tags) == {"team": "core"}
    assert math.isnan(record.metrics["acc"].last)
    assert record.metrics["special"].min == -INF
    assert record.metrics["loss"].count == len(LOSS_A)


def test_runs_show_nonfinite_param_is_strict_json(tmp_path: Path) -> None:
    """A NaN/inf param or config value still yields strict JSON (as "NaN"/"Infinity")."""
    path = str(tmp_path / "store")
    run = mltrail.init(project="p", store=path, config={"eps": NAN, "cap": {"hi": INF}})
    run.finish()
    result = cli("runs", "show", run.run_id, "--json", "--store", path)
    assert result.exit_code == 0, result.stderr
    data = strict_json(result.stdout)
    assert data["params"] == {"eps": "NaN", "cap.hi": "Infinity"}
    assert data["config"] == {"eps": "NaN", "cap": {"hi": "Infinity"}}
    table = cli("runs", "show", run.run_id, "--store", path).stdout
    assert "eps" in table
    assert "nan" in table


def test_markup_in_names_is_printed_literally(tmp_path: Path) -> None:
    """Names, keys and tags that look like Rich markup are shown as typed, never parsed."""
    path = str(tmp_path / "store")
    run = mltrail.init(
        project="p[1]", name="[bold]odd[/]", store=path, config={"[x]": 1}, tags={"t": "[red]x"}
    )
    run.log({"acc[top1]": 0.5})
    run.finish()
    listed = cli("runs", "list", "--store", path)
    assert listed.exit_code == 0, listed.stderr
    for text in ("p[1]", "[bold]odd[/]", "acc[top1]"):
        assert text in listed.stdout
    shown = cli("runs", "show", run.run_id, "--store", path)
    assert shown.exit_code == 0, shown.stderr
    for text in ("p[1]", "[bold]odd[/]", "acc[top1]", "[red]x", "[x]"):
        assert text in shown.stdout


def test_runs_show_ambiguous_prefix(store: Store) -> None:
    """A prefix shared by two runs is an error saying so, exit 1."""
    assert_error(cli("runs", "show", "abcd", "--store", store.path), "abcd", "several runs")


def test_runs_show_unknown_id(store: Store) -> None:
    """An id no run has is a not-found error, exit 1."""
    assert_error(cli("runs", "show", "qqq", "--store", store.path), "qqq")


# -- stores and settings --------------------------------------------------------------------


def test_missing_store_is_an_error_and_not_created(tmp_path: Path) -> None:
    """Reading a folder that holds no store fails clearly and creates nothing."""
    where = tmp_path / "typo"
    assert_error(cli("runs", "list", "--store", str(where)), "no mltrail store", str(where))
    assert not where.exists()


def test_bad_store_uri() -> None:
    """An unknown store scheme is one error line, exit 1."""
    assert_error(cli("projects", "list", "--store", "ftp://host/x"), "unknown scheme")


def test_store_from_environment(store: Store) -> None:
    """Without --store, MLTRAIL_STORE names the store."""
    result = cli("projects", "list", "--json", env={"MLTRAIL_STORE": store.path})
    assert result.exit_code == 0, result.stderr
    assert {p["name"] for p in strict_json(result.stdout)} == {"nlp", "vision"}


def test_bad_setting_in_environment(store: Store) -> None:
    """A malformed MLTRAIL_* setting is one error line naming it, not a traceback."""
    env = {"MLTRAIL_STORE": store.path, "MLTRAIL_HEARTBEAT_S": "soon"}
    result = cli("runs", "list", env=env)
    assert_error(result, "MLTRAIL_HEARTBEAT_S")


# -- metrics export -------------------------------------------------------------------------


def _parse_csv(text: str) -> dict[str, list[tuple[int, int, float]]]:
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["key", "step", "timestamp_ms", "value"]
    out: dict[str, list[tuple[int, int, float]]] = {}
    for key, step, ts, value in rows[1:]:
        out.setdefault(key, []).append((int(step), int(ts), float(value)))
    return out


def _assert_series_equal(
    store_path: str, key: str, steps: list[int], stamps: list[int], values: list[float]
) -> None:
    series = Api(store_path).history(ID_A, key)
    assert steps == series.steps.tolist()
    assert stamps == series.timestamps.tolist()
    assert [_bits(v) for v in values] == [_bits(v) for v in series.values.tolist()]


def test_metrics_csv_round_trips_bit_for_bit(store: Store) -> None:
    """CSV export parses back (float()) to the exact stored and logged bits, NaN/±inf too."""
    result = cli("metrics", ID_A, "special", "--store", store.path)
    assert result.exit_code == 0, result.stderr
    rows = _parse_csv(result.stdout)["special"]
    values = [v for _, _, v in rows]
    assert [_bits(v) for v in values] == [_bits(v) for v in SPECIAL]
    assert [s for s, _, _ in rows] == list(range(len(SPECIAL)))
    _assert_series_equal(
        store.path, "special", [s for s, _, _ in rows], [t for _, t, _ in rows], values
    )
    assert ",NaN\n" in result.stdout
    assert ",inf\n" in result.stdout
    assert ",-inf\n" in result.stdout


def test_metrics_csv_all_keys_by_default(store: Store) -> None:
    """With no KEY, every metric of the run is exported, keys in order."""
    result = cli("metrics", "abcd00000001", "--store", store.path)
    assert result.exit_code == 0, result.stderr
    series = _parse_csv(result.stdout)
    assert list(series) == ["acc", "loss", "special"]
    assert [v for _, _, v in series["loss"]] == LOSS_A


def test_metrics_json_round_trips_bit_for_bit(store: Store) -> None:
    """JSON export is strict JSON whose values (strings for NaN/±inf) read back exactly."""
    result = cli("metrics", ID_A, "special", "acc", "--format", "json", "--store", store.path)
    assert result.exit_code == 0, result.stderr
    data = strict_json(result.stdout)
    assert isinstance(data, dict)
    assert data["run_id"] == ID_A
    assert list(data["series"]) == ["special", "acc"]
    special = data["series"]["special"]
    assert special["values"][5:8] == ["NaN", "Infinity", "-Infinity"]
    values = [float(v) for v in special["values"]]
    assert [_bits(v) for v in values] == [_bits(v) for v in SPECIAL]
    _assert_series_equal(store.path, "special", special["steps"], special["timestamps_ms"], values)


def test_metrics_to_file(store: Store, tmp_path: Path) -> None:
    """``--output`` writes the file (and nothing to stdout), leaving no temporary file."""
    target = tmp_path / "out.json"
    result = cli(
        "metrics", ID_A, "loss", "--format", "json", "-o", str(target), "--store", store.path
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    data = strict_json(target.read_text())
    assert data["series"]["loss"]["values"] == LOSS_A
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_metrics_unknown_key(store: Store, tmp_path: Path) -> None:
    """An unknown key is an error naming it and the keys there are; no file is written."""
    target = tmp_path / "out.csv"
    result = cli("metrics", ID_A, "nope", "-o", str(target), "--store", store.path)
    assert_error(result, "'nope'", "acc, loss, special")
    assert not target.exists()


def test_metrics_ambiguous_run(store: Store) -> None:
    """``metrics`` resolves RUN like ``runs show``: an ambiguous prefix is an error."""
    assert_error(cli("metrics", "abcd", "--store", store.path), "several runs")


def test_metrics_long_series_spans_slices(tmp_path: Path) -> None:
    """A series longer than one write slice exports whole and in order, in both formats."""
    from mltrail.cli.metrics import SLICE

    path = str(tmp_path / "store")
    n = 2 * SLICE + 7
    run = mltrail.init(project="big", store=path)
    for i in range(n):
        run.log({"x": i * 0.5}, step=i)
    run.finish()
    as_csv = cli("metrics", run.run_id, "--store", path)
    assert as_csv.exit_code == 0, as_csv.stderr
    rows = _parse_csv(as_csv.stdout)["x"]
    assert [(s, v) for s, _, v in rows] == [(i, i * 0.5) for i in range(n)]
    as_json = cli("metrics", run.run_id, "--format", "json", "--store", path)
    data = strict_json(as_json.stdout)
    assert data["series"]["x"]["steps"] == list(range(n))
    assert data["series"]["x"]["values"] == [i * 0.5 for i in range(n)]


# -- projects ---------------------------------------------------------------------------------


def test_projects_list(store: Store) -> None:
    """``projects list`` shows each project with its run count, as a table and as JSON."""
    result = cli("projects", "list", "--store", store.path)
    assert result.exit_code == 0, result.stderr
    rows = {line.split()[0]: line.split()[1] for line in result.stdout.splitlines()[1:]}
    assert rows == {"nlp": "1", "vision": "2"}
    data = strict_json(cli("projects", "list", "--json", "--store", store.path).stdout)
    assert {p["name"]: p["run_count"] for p in data} == {"nlp": 1, "vision": 2}
    assert all(isinstance(p["created_ms"], int) for p in data)


# -- sync -------------------------------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import os, signal, sys, time
    import mltrail

    run = mltrail.init(project="crashy", store=sys.argv[1])
    for i in range(100):
        run.log({"x": float(i)})
    run.flush()
    time.sleep(0.3)  # let the writer go back to sleep (it wakes again in 1000 s)
    for i in range(100, 150):  # these stay in the spool only
        run.log({"x": float(i)})
    print(run.run_id, "READY", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def _spawn_and_kill(store_path: str) -> str:
    """Run CHILD to its SIGKILL; return its run id."""
    env = {**os.environ, "MLTRAIL_FLUSH_INTERVAL_S": "1000", "MLTRAIL_HEARTBEAT_S": "1000"}
    env.pop("MLTRAIL_STORE", None)
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, store_path],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    run_id, ready = proc.stdout.split()
    assert ready == "READY"
    return run_id


def test_sync_recovers_a_killed_process(tmp_path: Path) -> None:
    """``sync`` applies the spool of a SIGKILLed run, which then shows as crashed."""
    path = str(tmp_path / "store")
    run_id = _spawn_and_kill(path)
    result = cli("sync", "--store", path)
    assert result.exit_code == 0, result.stderr
    assert "recovered 1 spool" in result.stdout
    row = next(line for line in result.stdout.splitlines() if line.startswith(run_id))
    batches, points = row.split()[1:3]
    assert int(batches) >= 1
    assert int(points) == 50
    shown = strict_json(cli("runs", "show", run_id[:6], "--json", "--store", path).stdout)
    assert shown["status"] == "crashed"
    assert shown["metrics"]["x"]["count"] == 150
    assert "crashed" in cli("runs", "show", run_id, "--store", path).stdout
    again = cli("sync", "--store", path)
    assert "nothing to sync" in again.stdout


def test_sync_reports_a_corrupt_tail(tmp_path: Path) -> None:
    """A spool ending in a frame with a bad checksum is recovered up to it, and says where."""
    path = str(tmp_path / "store")
    run_id = _spawn_and_kill(path)
    (spool,) = (tmp_path / "store" / "spool").glob("*.spool")
    at = spool.stat().st_size
    with spool.open("ab") as f:
        f.write(FRAME_HEADER.pack(4, 0) + b"junk")
    data = strict_json(cli("sync", "--json", "--store", path).stdout)
    assert isinstance(data, dict)
    (got,) = data["recovered"]
    assert got["run_id"] == run_id
    assert got["points"] == 50
    assert got["corrupt_at"] == at
    assert data["skipped"] == 0


def test_sync_corrupt_tail_in_table(tmp_path: Path) -> None:
    """The human-readable sync report names the damaged byte range and where the spool is."""
    path = str(tmp_path / "store")
    _spawn_and_kill(path)
    (spool,) = (tmp_path / "store" / "spool").glob("*.spool")
    at = spool.stat().st_size
    with spool.open("ab") as f:
        f.write(FRAME_HEADER.pack(4, 0) + b"junk")
    result = cli("sync", "--store", path)
    assert result.exit_code == 0, result.stderr
    assert f"bytes {at}-{at + 12} (crc mismatch): 1 frame, 0 points" in result.stdout
    assert ".spool.damaged" in result.stdout


def test_sync_skips_live_spools(tmp_path: Path) -> None:
    """A spool locked by a live run is left alone and counted as skipped."""
    path = str(tmp_path / "store")
    run = mltrail.init(project="live", store=path)
    try:
        run.log({"x": 1.0})
        assert run.flush(timeout=30)
        result = cli("sync", "--store", path)
        assert result.exit_code == 0, result.stderr
        assert "nothing to sync" in result.stdout
        assert "skipped 1 spool still held by a running process" in result.stdout
        data = strict_json(cli("sync", "--json", "--store", path).stdout)
        assert data["store"] == str(Path(path).resolve())
        assert (data["recovered"], data["skipped"]) == ([], 1)
    finally:
        run.finish()
    assert run.status == "finished"


def test_sync_on_empty_store(tmp_path: Path) -> None:
    """``sync`` where nothing was ever logged says so, and creates no store."""
    where = tmp_path / "empty"
    result = cli("sync", "--store", str(where))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "nothing to sync"
    assert not where.exists()


# -- the installed script -------------------------------------------------------------------


def test_installed_script_end_to_end(store: Store) -> None:
    """The ``mltrail`` console script works: JSON on stdout, expected errors without traces."""
    exe = Path(sys.executable).with_name("mltrail")
    ok = subprocess.run(
        [str(exe), "runs", "list", "--json", "--store", store.path],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stderr
    assert {r["run_id"] for r in strict_json(ok.stdout)} == {ID_A, ID_B, ID_C}
    bad = subprocess.run(
        [str(exe), "runs", "show", "abcd", "--store", store.path],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 1
    assert bad.stdout == ""
    assert bad.stderr.startswith("error: ")
    assert "Traceback" not in bad.stderr
    usage = subprocess.run([str(exe), "runs", "list", "--limit", "x"], capture_output=True)
    assert usage.returncode == 2
