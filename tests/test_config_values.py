"""Config and params that would be stored misleadingly are refused at the SDK edge.

Flatten collisions, cycles and values without a stable JSON form (objects, lambdas, bytes)
raise InvalidArgumentError naming the key; the documented kinds convert the same way every run.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import enum
import unicodedata
from pathlib import Path, PurePosixPath

import numpy as np
import pytest

import mltrail
from mltrail import _validation as v
from mltrail.capture.config import config_to_dict
from mltrail.errors import InvalidArgumentError


class Act(enum.Enum):
    """An enum leaf."""

    RELU = "relu"


@dataclasses.dataclass
class Opt:
    """A dataclass leaf."""

    lr: float = 0.1
    betas: tuple[float, float] = (0.9, 0.999)


def train() -> None:
    """A named function, as ``argparse`` ``set_defaults(func=...)`` stores."""


class Blob:
    """An object with no JSON form (its repr holds a memory address)."""


@pytest.fixture
def run(tmp_path: Path):
    """A run on a fresh embedded store, finished after the test."""
    r = mltrail.init(project="p", store=str(tmp_path / "s"), capture=False)
    yield r
    r.finish()


def _init(tmp_path: Path, config: object) -> mltrail.Run:
    return mltrail.init(project="p", store=str(tmp_path / "s"), config=config, capture=False)


# -- flatten collisions ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        {"a.b": 1, "a": {"b": 2}},
        {"a": {"b": 2}, "a.b": 1},
        {"a": {"b.c": 1, "b": {"c": 2}}},
    ],
)
def test_flatten_collision_in_config_names_both_keys(tmp_path, config):
    """A dotted key and a nested key that flatten to the same param are an error naming both."""
    with pytest.raises(InvalidArgumentError, match=r"twice") as err:
        _init(tmp_path, config)
    assert "['a.b']" in str(err.value) or "['b.c']" in str(err.value)
    assert "['a']['b']" in str(err.value)
    assert mltrail.active_run() is None


def test_flatten_collision_in_log_params(run):
    """log_params refuses a collision too, and logs nothing of the call."""
    with pytest.raises(InvalidArgumentError, match=r"\['x.y'\].*\['x'\]\['y'\]"):
        run.log_params({"x.y": 1, "x": {"y": 2}})
    assert run.params == {}


def test_nfc_collision_in_params_and_tags(run):
    """Two spellings of one key (NFC and NFD) in one mapping are an error, not a silent merge."""
    nfc, nfd = "caf\u00e9", unicodedata.normalize("NFD", "caf\u00e9")
    with pytest.raises(InvalidArgumentError, match="NFC"):
        run.log_params({nfc: 1, nfd: 2})
    with pytest.raises(InvalidArgumentError, match="NFC"):
        run.set_tags({nfc: "a", nfd: "b"})


def test_flatten_helper_names_both_keys():
    """The one flatten rule (used by REST too) reports the collision with both paths."""
    with pytest.raises(InvalidArgumentError, match=r"\['a.b'\].*\['a'\]\['b'\]"):
        v.flatten({"a.b": 1, "a": {"b": 2}})
    assert v.flatten({"a": {"b": 1, "c": {}}, "d": 2}) == {"a.b": 1, "a.c": {}, "d": 2}


# -- cycles and depth ------------------------------------------------------------------------


def _cyclic_dict() -> dict[str, object]:
    d: dict[str, object] = {"lr": 0.1}
    d["self"] = d
    return d


def _cyclic_list() -> dict[str, object]:
    items: list[object] = [1]
    items.append(items)
    return {"layers": items}


def _cyclic_dataclass() -> object:
    @dataclasses.dataclass
    class Node:
        child: object = None

    n = Node()
    n.child = n
    return n


@pytest.mark.parametrize("make", [_cyclic_dict, _cyclic_list, _cyclic_dataclass])
def test_cyclic_config_is_invalid_argument(tmp_path, make):
    """A config that contains itself is an InvalidArgumentError naming where, not RecursionError."""
    with pytest.raises(InvalidArgumentError, match="contains itself"):
        _init(tmp_path, make())


def test_cyclic_params_are_invalid_argument(run):
    """log_params with a cyclic mapping is an InvalidArgumentError too."""
    with pytest.raises(InvalidArgumentError, match=r"param 'self' contains itself"):
        run.log_params(_cyclic_dict())


def test_shared_subconfig_is_not_a_cycle():
    """The same dict reached twice (not through itself) is fine."""
    shared = {"width": 8}
    assert config_to_dict({"enc": shared, "dec": shared}) == {
        "enc": {"width": 8},
        "dec": {"width": 8},
    }


def test_too_deep_config_names_the_limit():
    """Nesting past the limit (the same as REST's) is refused with the limit in the message."""
    deep: dict[str, object] = {}
    node = deep
    for _ in range(v.MAX_CONFIG_DEPTH + 5):
        node["n"] = {}
        node = node["n"]  # type: ignore[assignment]
    with pytest.raises(InvalidArgumentError, match=str(v.MAX_CONFIG_DEPTH)):
        config_to_dict(deep)


# -- values without a stable JSON form -------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (Blob(), "Blob"),
        (lambda x: x, "lambda"),
        (b"\x00raw", "bytes"),
        (bytearray(b"x"), "bytearray"),
        (1 + 2j, "complex"),
        (object(), "object"),
        ([1, Blob()], "Blob"),
        ({"deeper": {Blob()}}, "Blob"),
    ],
)
def test_values_without_stable_json_are_refused_naming_the_key(tmp_path, run, value, kind):
    """Objects, lambdas, bytes (anywhere in the tree) are refused, naming the key and type."""
    with pytest.raises(InvalidArgumentError, match=rf"model\.act.*{kind}"):
        _init(tmp_path, {"model": {"act": value}})
    with pytest.raises(InvalidArgumentError, match=rf"model\.act.*{kind}"):
        run.log_params({"model": {"act": value}})
    assert run.params == {}


def test_non_str_key_without_stable_form_is_refused():
    """A key that is an arbitrary object is refused rather than stored as its repr."""
    with pytest.raises(InvalidArgumentError, match="key"):
        config_to_dict({Blob(): 1})


def _accepted() -> dict[str, object]:
    return {
        "act": Act.RELU,
        "opt": Opt(),
        "out": Path("/tmp/out"),
        "pure": PurePosixPath("a/b"),
        "n": np.int64(3),
        "x": np.float32(0.5),
        "flag": np.bool_(True),
        "arr": np.arange(3),
        "grid": np.array([[1.5, 2.0]]),
        "when": dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.UTC),
        "day": dt.date(2024, 5, 1),
        "choices": {"b", "a", "c"},
        "dims": (1, 2),
        "fn": train,
        "cls": Blob,
    }


_EXPECTED = {
    "act": "relu",
    "opt": {"lr": 0.1, "betas": [0.9, 0.999]},
    "out": "/tmp/out",
    "pure": "a/b",
    "n": 3,
    "x": 0.5,
    "flag": True,
    "arr": [0, 1, 2],
    "grid": [[1.5, 2.0]],
    "when": "2024-05-01T12:30:00+00:00",
    "day": "2024-05-01",
    "choices": ["a", "b", "c"],
    "dims": [1, 2],
    "fn": f"{__name__}.train",
    "cls": f"{__name__}.Blob",
}


def test_documented_kinds_convert_to_stable_json():
    """Documented kinds (enums, numpy, paths, dates, sets, functions...) become plain JSON."""
    got = config_to_dict(_accepted())
    assert got == _EXPECTED
    assert type(got["n"]) is int and type(got["x"]) is float and type(got["flag"]) is bool


def test_identical_configs_give_identical_runs(tmp_path):
    """Two runs from equal configs store equal config and params (nothing run-specific)."""
    runs = []
    for _ in range(2):
        with _init(tmp_path, _accepted()) as r:
            runs.append(r)
    api = mltrail.Api(str(tmp_path / "s"))
    a, b = (api.run(r.run_id) for r in runs)
    assert a.config == b.config == _EXPECTED
    assert a.params == b.params
    assert a.params["opt.betas"] == "[0.9, 0.999]" and a.params["choices"] == '["a", "b", "c"]'


def test_log_params_converts_like_config(run):
    """log_params stores an enum, numpy scalar, set or path exactly as config would."""
    run.log_params({"act": Act.RELU, "n": np.int64(3), "s": {"b", "a"}, "p": Path("/d")})
    assert run.params == {"act": "relu", "n": 3, "s": '["a", "b"]', "p": "/d"}


def test_argparse_namespace_with_subcommand_func_keeps_working(tmp_path):
    """A real parser's Namespace with set_defaults(func=...) converts (func by its name)."""
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    cmd = sub.add_parser("train")
    cmd.add_argument("--lr", type=float, default=0.1)
    cmd.set_defaults(func=train)
    with _init(tmp_path, parser.parse_args(["train", "--lr", "0.3"])) as r:
        assert r.params == {"lr": 0.3, "func": f"{__name__}.train"}


def test_omegaconf_config_keeps_working(tmp_path):
    """A resolved OmegaConf DictConfig (the Hydra kind) converts and flattens as before."""
    omegaconf = pytest.importorskip("omegaconf")
    cfg = omegaconf.OmegaConf.create({"width": 8, "model": {"hidden": "${width}"}})
    with _init(tmp_path, cfg) as r:
        assert r.params == {"width": 8, "model.hidden": 8}


# -- the CLI edge: `mltrail run --config FILE` ----------------------------------------------


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ('{"lr": 0.1, "lr": 0.2}', "duplicate key 'lr'"),
        ('{"opt": {"eps": 1e999}}', "config.opt.eps"),
        ('{"a.b": 1, "a": {"b": 2}}', "twice"),
    ],
)
def test_run_config_file_is_parsed_strictly(tmp_path, capsys, text, what):
    """A JSON --config with a repeated key, 1e999 or a flatten collision fails naming it."""
    import typer

    from mltrail.cli.run_cmd import _load_config

    cfg = tmp_path / "cfg.json"
    cfg.write_text(text)
    with pytest.raises((typer.Exit, InvalidArgumentError)) as err:
        v.flatten_params(_load_config(cfg) or {})
    shown = capsys.readouterr().err if isinstance(err.value, typer.Exit) else str(err.value)
    assert what in shown
