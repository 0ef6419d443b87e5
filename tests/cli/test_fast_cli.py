"""The console script's fast path (``runs list``, ``runs show``, ``metrics``) and wide runs.

The fast path must print exactly what the Typer app prints, import neither Typer, Click nor
pydantic (nor Rich for ``--json`` and ``metrics``), and leave every command line it does not
fully understand to Typer. ``runs show`` of a run with many metric keys prints a page of
them and a line that counts keys and points and says how to see the others.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from clihelp import cli, strict_json

import mltrail
from mltrail.cli._fast import run_fast
from mltrail.cli.runs_view import DEFAULT_MAX_KEYS, select_keys

N_WIDE = 120  # > DEFAULT_MAX_KEYS: enough to page, quick to log


@dataclass(frozen=True)
class Stores:
    path: str
    small: str  # a run with two keys
    wide: str  # a run with N_WIDE keys


def _wide_key(i: int) -> str:
    return f"{'enc' if i % 2 else 'dec'}/layer{i:03d}"


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Stores:
    """One store: a small run with a param and two keys, and a run with N_WIDE keys."""
    path = str(tmp_path_factory.mktemp("fast") / "store")
    small = mltrail.init(project="p", name="small", store=path, config={"lr": 0.5})
    for step in range(3):
        small.log({"loss": 1.0 / (step + 1), "acc": step / 4}, step=step)
    small.finish()
    wide = mltrail.init(project="p", name="wide", store=path)
    for step in range(2):
        wide.log({_wide_key(i): float(i * step) for i in range(N_WIDE)}, step=step)
    wide.finish()
    return Stores(path, small.run_id, wide.run_id)


def _fast(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int | None, str, str]:
    capsys.readouterr()
    code = run_fast(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def _same_as_typer(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code, out, err = _fast(capsys, *args)
    typer = cli(*args)
    assert code == typer.exit_code, (err, typer.stderr)
    assert (out, err) == (typer.stdout, typer.stderr)
    return out


# -- the fast path prints what Typer prints ---------------------------------------------------


def test_runs_list_same_as_typer(stores: Stores, capsys: pytest.CaptureFixture[str]) -> None:
    """runs list: table, JSON, project, filter, order and limit print what Typer prints."""
    s = ["--store", stores.path]
    assert "wide" in _same_as_typer(capsys, "runs", "list", *s)
    _same_as_typer(capsys, "runs", "list", "--json", *s)
    _same_as_typer(capsys, "runs", "list", "-n", "1", *s)
    _same_as_typer(capsys, "runs", "list", "--limit=1", "--json", *s)
    _same_as_typer(capsys, "runs", "list", "-p", "nope", *s)
    _same_as_typer(capsys, "runs", "list", "-f", "params.lr > 0.1", "-o", "name asc", *s)


def test_runs_show_same_as_typer(stores: Stores, capsys: pytest.CaptureFixture[str]) -> None:
    """runs show: table, JSON, --keys, --max-keys and --page print what Typer prints."""
    s = ["--store", stores.path]
    assert "lr" in _same_as_typer(capsys, "runs", "show", stores.small, *s)
    _same_as_typer(capsys, "runs", "show", stores.small[:6], "--json", *s)
    _same_as_typer(capsys, "runs", "show", stores.wide, *s)
    _same_as_typer(capsys, "runs", "show", stores.wide, "--keys", "enc/*", "--page", "2", *s)
    _same_as_typer(capsys, "runs", "show", stores.wide, "-k", "dec/*", "--json", *s)
    _same_as_typer(capsys, "runs", "show", stores.wide, "--max-keys=7", "--page=3", *s)


def test_metrics_same_as_typer(
    stores: Stores, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """metrics: CSV, JSON (any case), chosen keys and -o FILE write what Typer writes."""
    s = ["--store", stores.path]
    assert "loss" in _same_as_typer(capsys, "metrics", stores.small, *s)
    _same_as_typer(capsys, "metrics", stores.small, "acc", "--format", "JSON", *s)
    fast_file, typer_file = tmp_path / "fast.csv", tmp_path / "typer.csv"
    code, _, _ = _fast(capsys, "metrics", stores.small, "-o", str(fast_file), *s)
    assert code == 0
    assert cli("metrics", stores.small, "--output", str(typer_file), *s).exit_code == 0
    assert fast_file.read_text() == typer_file.read_text() != ""


def test_errors_same_as_typer(stores: Stores, capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown run, key, store or filter, a page past the end: the same one-line error."""
    s = ["--store", stores.path]
    for args in (
        ["runs", "show", "qqq", *s],
        ["runs", "show", stores.wide, "--page", "9", *s],
        ["runs", "list", "--filter", "metrics.loss <<< 1", *s],
        ["runs", "list", "--store", str(Path(stores.path).parent / "nothing")],
        ["metrics", stores.small, "nokey", *s],
    ):
        code, out, err = _fast(capsys, *args)
        assert code == 1 and out == "" and err.startswith("error: "), (args, err)
        assert err.count("\n") == 1 and "Traceback" not in err
        _same_as_typer(capsys, *args)


@pytest.mark.parametrize(
    "argv",
    [
        ["runs", "list", "--help"],
        ["runs", "list", "--limit", "0"],
        ["runs", "list", "-n", "x"],
        ["runs", "list", "-n5"],
        ["runs", "list", "--store"],
        ["runs", "list", "--store", "--json"],
        ["runs", "list", "--json=1"],
        ["runs", "list", "extra"],
        ["runs", "show"],
        ["runs", "show", "a", "b"],
        ["runs", "show", "a", "--page", "0"],
        ["runs", "show", "a", "--max-keys", "-1"],
        ["runs", "show", "a", "--", "b"],
        ["runs", "projects"],
        ["metrics"],
        ["metrics", "r", "--format", "xml"],
        ["metrics", "r", "-o", "."],
        ["metrics", "r", "--json"],
        ["projects", "list"],
        ["runs"],
    ],
)
def test_anything_unusual_goes_to_typer(argv: list[str]) -> None:
    """Help, malformed or unknown options, extra arguments, other commands: left to Typer."""
    assert run_fast(argv) is None


# -- in a real process ------------------------------------------------------------------------


def _console_script(*args: str, importtime: bool = False) -> subprocess.CompletedProcess[str]:
    flags = ["-X", "importtime"] if importtime else []
    return subprocess.run(
        [sys.executable, *flags, "-m", "mltrail", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _imported(stderr: str) -> set[str]:
    """Top-level names of the modules ``-X importtime`` says were imported."""
    lines = (line for line in stderr.splitlines() if line.startswith("import time:"))
    return {line.rsplit("|", 1)[-1].strip() for line in lines}


@pytest.mark.parametrize(
    ("args", "absent"),
    [
        (["runs", "list"], {"typer", "click", "pydantic"}),
        (["runs", "list", "--json"], {"typer", "click", "pydantic", "rich"}),
        (["runs", "show", "SMALL"], {"typer", "click", "pydantic"}),
        (["metrics", "SMALL"], {"typer", "click", "pydantic", "rich"}),
    ],
)
def test_fast_commands_import_no_typer(stores: Stores, args: list[str], absent: set[str]) -> None:
    """``mltrail runs list|show`` and ``metrics`` never import Typer, Click or pydantic."""
    args = [stores.small if a == "SMALL" else a for a in args]
    done = _console_script(*args, "--store", stores.path, importtime=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout
    imported = _imported(done.stderr)
    assert "mltrail.cli._fast" in imported  # the probe sees our modules
    assert not absent & imported


def test_typer_still_handles_help_and_bad_options(stores: Stores) -> None:
    """--help and bad values reach Typer: usage, the option named, exit 2, no traceback."""
    shown = _console_script("runs", "show", "--help")
    assert shown.returncode == 0 and "--keys" in shown.stdout and "--max-keys" in shown.stdout
    for args, option in (
        (["runs", "show", stores.wide, "--page", "0"], "--page"),
        (["runs", "show", stores.wide, "--max-keys", "many"], "--max-keys"),
        (["runs", "list", "--limit", "0"], "--limit"),
    ):
        bad = _console_script(*args, "--store", stores.path)
        assert bad.returncode == 2, bad.stderr
        assert option in bad.stderr and "Traceback" not in bad.stderr


def test_page_past_the_end_names_the_option(stores: Stores) -> None:
    """A page past the last is one error line naming --page and the page count."""
    done = _console_script("runs", "show", stores.wide, "--page", "4", "--store", stores.path)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == "error: --page 4 is past the last page: 120 keys make 3 pages of 50\n"


# -- a run with many metric keys --------------------------------------------------------------


def _metric_rows(out: str) -> list[str]:
    """The keys in the metrics table of ``runs show`` output."""
    section = out.split("\nmetrics\n", 1)[1].split("\n\n", 1)[0].splitlines()
    return [line.split()[0] for line in section[1:] if "/layer" in line.split()[0]]


def test_wide_run_is_summarised(stores: Stores) -> None:
    """The first DEFAULT_MAX_KEYS keys by name, then counts and how to see the rest."""
    result = cli("runs", "show", stores.wide, "--store", stores.path)
    assert result.exit_code == 0, result.stderr
    everything = sorted(_wide_key(i) for i in range(N_WIDE))
    assert _metric_rows(result.stdout) == everything[:DEFAULT_MAX_KEYS]
    hidden = N_WIDE - DEFAULT_MAX_KEYS
    assert (
        f"keys 1-{DEFAULT_MAX_KEYS} shown: {N_WIDE} keys, {2 * N_WIDE} points; {hidden} hidden: "
        "--page 2 shows the next, --keys PATTERN selects (a glob), --max-keys 0 shows all, "
        "--json gives everything"
    ) in result.stdout


def test_wide_run_pages_and_selects(stores: Stores) -> None:
    """--page, --max-keys and --keys pick which keys; --max-keys 0 prints them all."""
    s = ["--store", stores.path]
    everything = sorted(_wide_key(i) for i in range(N_WIDE))
    third = cli("runs", "show", stores.wide, "--page", "3", *s).stdout
    assert _metric_rows(third) == everything[100:]
    assert "keys 101-120 shown" in third and "hidden" in third and "--page 4" not in third
    assert _metric_rows(cli("runs", "show", stores.wide, "--max-keys", "0", *s).stdout) == (
        everything
    )
    enc = cli("runs", "show", stores.wide, "--keys", "enc/layer0[0-2]?", *s).stdout
    assert _metric_rows(enc) == [k for k in everything if k.startswith("enc/layer0")][:15]
    assert f"15 of {N_WIDE} keys, {2 * N_WIDE} points match --keys 'enc/layer0[0-2]?'" in enc
    none = cli("runs", "show", stores.wide, "--keys", "nothing*", *s)
    assert none.exit_code == 0
    assert f"no keys shown: 0 of {N_WIDE} keys" in none.stdout


def test_wide_run_json_has_everything(stores: Stores) -> None:
    """--json gives every key whatever --max-keys and --page say; --keys selects."""
    s = ["--store", stores.path]
    doc = strict_json(
        cli("runs", "show", stores.wide, "--json", "--max-keys", "1", "--page", "2", *s).stdout
    )
    assert len(doc["metrics"]) == N_WIDE
    some = strict_json(cli("runs", "show", stores.wide, "--json", "--keys", "dec/*", *s).stdout)
    assert sorted(some["metrics"]) == sorted(_wide_key(i) for i in range(0, N_WIDE, 2))


def test_small_run_has_no_summary_line(stores: Stores) -> None:
    """A run with few keys prints them all, with no summary line (output as before)."""
    out = cli("runs", "show", stores.small, "--store", stores.path).stdout
    assert _metric_rows(out) == [] and "loss" in out and "acc" in out
    assert "shown" not in out and "hidden" not in out


def test_select_keys_is_a_whole_key_glob() -> None:
    """A glob over the whole key, case-sensitive, NFC-normalised; None keeps every key."""
    keys = ["b", "a/x", "a/y", "A/z", "loss", "val/loss", "caf\u00e9"]
    assert select_keys(keys, None) == sorted(keys)
    assert select_keys(keys, "a/*") == ["a/x", "a/y"]
    assert select_keys(keys, "loss") == ["loss"]
    assert select_keys(keys, "*loss*") == ["loss", "val/loss"]
    assert select_keys(keys, "?") == ["b"]
    assert select_keys(keys, "cafe\u0301") == ["caf\u00e9"]
