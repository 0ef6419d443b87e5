"""Bad input at the SDK edge (the SDK rows of the bad-input table in TESTS.md)."""

from __future__ import annotations

import math
import struct
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import mltrail
from mltrail import _validation as v
from mltrail.errors import InvalidArgumentError, ParamConflictError


@pytest.fixture
def run(tmp_path: Path):
    """A run on a fresh embedded store, finished after the test."""
    r = mltrail.init(project="p", store=str(tmp_path / "s"))
    yield r
    r.finish()


def _history(run, key):
    run.flush()
    return mltrail.Api(run.location.display).history(run.run_id, key)


@pytest.mark.parametrize(
    "value", [math.nan, math.inf, -math.inf, -0.0, 1e308, 5e-324, 1.7976931348623157e308]
)
def test_special_values_round_trip(run, value):
    """Rows 1-5: NaN, ±inf, -0.0 and extreme floats are stored bit for bit."""
    run.log({"m": value}, step=0)
    got = _history(run, "m").values[0]
    assert struct.pack("<d", got) == struct.pack("<d", value)


@pytest.mark.parametrize("value", ["0.5", {}, None, [1.0], b"1", True, False, np.bool_(True)])
def test_non_numbers_rejected_naming_key(run, value):
    """Rows 6-7: str, dict, None, list, bytes and bools are rejected naming the key."""
    with pytest.raises(InvalidArgumentError, match="'my_metric'"):
        run.log({"my_metric": value})


def test_numpy_and_python_scalars_accepted(run):
    """numpy float32/int64/0-d arrays and Python ints are accepted as float64."""
    run.log({"a": np.float32(0.5), "b": np.int64(3), "c": np.array(2.5), "d": 7}, step=0)
    assert _history(run, "a").values[0] == 0.5
    assert _history(run, "b").values[0] == 3.0
    assert _history(run, "c").values[0] == 2.5


def test_torch_scalar_accepted(run):
    """A zero-dimensional torch tensor is accepted (when torch is installed)."""
    torch = pytest.importorskip("torch")
    run.log({"t": torch.tensor(1.5)}, step=0)
    assert _history(run, "t").values[0] == 1.5


def test_multi_element_array_rejected(run):
    """A vector is not a metric value."""
    with pytest.raises(InvalidArgumentError, match="'v'"):
        run.log({"v": np.array([1.0, 2.0])})


@pytest.mark.parametrize(
    ("step", "ok"),
    [
        (2**63 - 1, True),
        (0, True),
        (2**63, False),
        (-1, False),
        (True, False),
        (1.0, False),
        ("3", False),
    ],
)
def test_step_limits(run, step, ok):
    """Rows 8-9: steps are ints in 0..2**63-1; 2**63, -1, bools, floats, strs are rejected."""
    if ok:
        run.log({"m": 1.0}, step=step)
        assert _history(run, "m").steps[-1] == step
    else:
        with pytest.raises(InvalidArgumentError, match="step"):
            run.log({"m": 1.0}, step=step)


def test_numpy_int_step_accepted(run):
    """numpy integer steps are accepted."""
    run.log({"m": 1.0}, step=np.int64(5))
    assert list(_history(run, "m").steps) == [5]


def test_non_monotonic_and_duplicate_steps_kept(run):
    """Row 10: steps 5,3,4 and a duplicate are all stored, read in (step, time) order."""
    for step, val in [(5, 1.0), (3, 2.0), (4, 3.0), (4, 4.0)]:
        run.log({"m": val}, step=step)
    h = _history(run, "m")
    assert list(h.steps) == [3, 4, 4, 5] and list(h.values) == [2.0, 3.0, 4.0, 1.0]


def test_auto_step_increments(run):
    """Without step, steps count up from the previous one."""
    run.log({"m": 1.0})
    run.log({"m": 1.0})
    run.log({"m": 1.0}, step=10)
    run.log({"m": 1.0})
    assert list(_history(run, "m").steps) == [0, 1, 10, 11]


@pytest.mark.parametrize("name", ["", "x" * 251, "é" * 126, "a\x00b", "\ud800"])
def test_bad_metric_names(run, name):
    """Rows 11, 15, 16: empty, over 250 bytes, NUL and lone surrogates are rejected."""
    with pytest.raises(InvalidArgumentError, match="metric name"):
        run.log({name: 1.0})


def test_path_like_names_are_logical(run, tmp_path):
    """Row 12: names like ../x, a/b and .. are logical names; no file appears."""
    before = set(tmp_path.rglob("*"))
    run.log({"../x": 1.0, "a/b": 2.0, "..": 3.0}, step=0)
    run.flush()
    rec = mltrail.Api(run.location.display).run(run.run_id)
    assert {k for k in rec.metrics if not k.startswith("system/")} == {"../x", "a/b", ".."}
    created = {p.name for p in set(tmp_path.rglob("*")) - before}
    assert not created & {"x", "b", ".."}


def test_nfc_and_nfd_map_to_one_key(run):
    """Row 13: é typed as NFC or NFD is one key."""
    nfc, nfd = "caf\u00e9", unicodedata.normalize("NFD", "caf\u00e9")
    run.log({nfc: 1.0}, step=0)
    run.log({nfd: 2.0}, step=1)
    run.log_params({nfd: 1})
    assert list(_history(run, nfc).values) == [1.0, 2.0]
    assert mltrail.Api(run.location.display).run(run.run_id).params == {nfc: 1}


def test_nfc_collision_in_one_call_rejected(run):
    """Two spellings of one key in the same call are an error, not a silent merge."""
    with pytest.raises(InvalidArgumentError, match="NFC"):
        run.log({"caf\u00e9": 1.0, unicodedata.normalize("NFD", "caf\u00e9"): 2.0})


@pytest.mark.parametrize("bad", ["a\x00b", "\ud800"])
def test_nul_and_surrogate_in_values_rejected(run, bad):
    """Rows 15-16: NUL or lone surrogates in param/tag values are rejected."""
    with pytest.raises(InvalidArgumentError):
        run.log_params({"k": bad})
    with pytest.raises(InvalidArgumentError):
        run.set_tags({"k": bad})


def test_script_tag_stored_raw(run):
    """Row 17: markup in a tag value is stored exactly as given."""
    run.set_tags({"t": "<script>alert(1)</script>"})
    run.flush()
    assert (
        mltrail.Api(run.location.display).run(run.run_id).tags["t"] == "<script>alert(1)</script>"
    )


def test_value_size_limit_names_limit(run):
    """Row 18: a value over 64 KB is rejected with the limit in the message."""
    with pytest.raises(InvalidArgumentError, match="65536"):
        run.log_params({"big": "x" * (1 << 20)})
    with pytest.raises(InvalidArgumentError, match="65536"):
        run.set_tags({"big": "x" * 65537})
    run.log_params({"ok": "x" * 65536})


def test_params_immutable(run):
    """Row 20: same param value again is fine; a different value names key and both values."""
    run.log_params({"lr": 0.01})
    run.log_params({"lr": 0.01})
    with pytest.raises(ParamConflictError, match=r"'lr'.*0\.01.*0\.1"):
        run.log_params({"lr": 0.1})
    with pytest.raises(ParamConflictError):
        run.log_params({"lr": "0.01"})


def test_case_distinct_keys(run):
    """Row 21: lr and LR are two keys."""
    run.log_params({"lr": 1, "LR": 2})
    run.flush()
    assert mltrail.Api(run.location.display).run(run.run_id).params == {"lr": 1, "LR": 2}


def test_config_flattened_and_kept_nested(tmp_path):
    """Config is stored flattened as params and kept nested."""
    cfg = {"lr": 0.01, "model": {"depth": 4, "act": "relu"}, "layers": [64, 32]}
    with mltrail.init(project="p", store=str(tmp_path / "s"), config=cfg) as run:
        pass
    rec = mltrail.Api(str(tmp_path / "s")).run(run.run_id)
    assert rec.config == cfg
    assert rec.params == {"lr": 0.01, "model.depth": 4, "model.act": "relu", "layers": "[64, 32]"}


def test_log_after_finish_raises(tmp_path):
    """A finished run refuses more data."""
    run = mltrail.init(project="p", store=str(tmp_path / "s"))
    run.finish()
    with pytest.raises(mltrail.RunFinishedError):
        run.log({"m": 1.0})
    with pytest.raises(mltrail.RunFinishedError):
        run.log_params({"a": 1})


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_metric_value_check_keeps_bits(x):
    """Property: any float passes validation unchanged, bit for bit."""
    assert struct.pack("<d", v.check_metric_value("k", x)) == struct.pack("<d", x)


@given(st.text(max_size=300))
def test_key_check_either_accepts_or_names_problem(text):
    """Property: any string is either a valid NFC key or raises InvalidArgumentError."""
    if text and "\x00" not in text and len(text.encode("utf-8", "surrogatepass")) <= 250:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            pass
        else:
            assert v.check_key(text) == unicodedata.normalize("NFC", text)
            return
    with pytest.raises(InvalidArgumentError, match="metric name"):
        v.check_key(text)


# -- keys in another normal form, on every read path; resume into the wrong project ---------


def test_history_finds_a_key_given_in_nfd(run):
    """Row 13 on reads: Api.history finds a metric whatever normal form the key is typed in."""
    nfc, nfd = "caf\u00e9", unicodedata.normalize("NFD", "caf\u00e9")
    run.log({nfc: 1.0}, step=0)
    assert list(_history(run, nfd).values) == [1.0]


def test_filter_language_matches_keys_in_nfd(run):
    """The filter language normalises params./metrics./tags. keys, bare or quoted, to NFC."""
    nfc, nfd = "caf\u00e9", unicodedata.normalize("NFD", "caf\u00e9")
    run.log({nfc: 1.0}, step=0)
    run.log_params({nfc: 2})
    run.set_tags({nfc: "x"})
    run.flush()
    api = mltrail.Api(run.location.display)
    for text in (
        f"metrics.{nfd} = 1",
        f"params.{nfd} = 2",
        f"tags.{nfd} = 'x'",
        f"metrics.`{nfd}` = 1",
        f'params."{nfd}" = 2',
    ):
        assert [r.run_id for r in api.runs(filter=text)] == [run.run_id], text
    assert [r.run_id for r in api.runs(order_by=f"metrics.{nfd} desc")] == [run.run_id]


def test_cli_metrics_export_finds_a_key_given_in_nfd(run):
    """`mltrail metrics RUN KEY` with the key typed in NFD exports the NFC series."""
    from typer.testing import CliRunner

    from mltrail.cli.main import app

    nfc, nfd = "caf\u00e9", unicodedata.normalize("NFD", "caf\u00e9")
    run.log({nfc: 1.5}, step=3)
    run.flush()
    result = CliRunner().invoke(app, ["metrics", run.run_id, nfd, "--store", run.location.display])
    assert result.exit_code == 0, result.output
    assert f"{nfc},3," in result.output


def test_resume_into_another_project_is_refused(tmp_path):
    """init(project='a', resume=<a run of project b>) names both projects instead of continuing."""
    store = str(tmp_path / "s")
    with mltrail.init(project="b", store=store, capture=False) as first:
        first.log({"m": 1.0})
    with pytest.raises(InvalidArgumentError, match=r"'a'.*'b'|'b'.*'a'"):
        mltrail.init(project="a", store=store, resume=first.run_id, capture=False)
    assert mltrail.active_run() is None
    with mltrail.init(project="b", store=store, resume=first.run_id, capture=False) as again:
        assert again.project == "b"
    with mltrail.init(store=store, resume=first.run_id, capture=False) as again:
        assert again.project == "b"  # no project given: the run's own
    nfd_store = str(tmp_path / "n")
    with mltrail.init(project="caf\u00e9", store=nfd_store, capture=False) as r:
        pass
    nfd = unicodedata.normalize("NFD", "caf\u00e9")
    with mltrail.init(project=nfd, store=nfd_store, resume=r.run_id, capture=False) as again:
        assert again.project == "caf\u00e9"
