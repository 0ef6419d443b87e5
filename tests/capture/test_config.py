"""Config capture: dicts, dataclasses, real argparse, OmegaConf, pydantic and a real Hydra app."""

from __future__ import annotations

import argparse
import dataclasses
import enum
import json
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

from mltrail.capture.base import Capturer
from mltrail.capture.config import (
    ConfigCapturer,
    capture_config,
    config_source,
    config_to_dict,
    hydra_context,
)
from mltrail.errors import InvalidArgumentError


class Activation(enum.Enum):
    """An enum leaf, as configs often carry."""

    RELU = "relu"


@dataclasses.dataclass
class Optim:
    """A nested dataclass config."""

    lr: float = 0.1
    betas: tuple[float, float] = (0.9, 0.999)


@dataclasses.dataclass
class TrainConfig:
    """A top-level dataclass config."""

    epochs: int = 3
    optim: Optim = dataclasses.field(default_factory=Optim)
    act: Activation = Activation.RELU
    out: Path = Path("/tmp/out")


def test_nested_mappings_become_plain_dicts() -> None:
    """Any Mapping, at any depth, becomes a dict; tuples become lists, paths become str."""
    config = types.MappingProxyType(
        {"model": types.MappingProxyType({"depth": 4, "dims": (1, 2)}), "data": Path("/d")}
    )
    result = config_to_dict(config)
    assert result == {"model": {"depth": 4, "dims": [1, 2]}, "data": "/d"}
    assert type(result["model"]) is dict
    assert config_source(config) == "dict"


def test_dataclass_is_converted_recursively() -> None:
    """A dataclass instance converts with its nested dataclass, enum and path fields."""
    assert config_to_dict(TrainConfig()) == {
        "epochs": 3,
        "optim": {"lr": 0.1, "betas": [0.9, 0.999]},
        "act": "relu",
        "out": "/tmp/out",
    }
    assert config_source(TrainConfig()) == "dataclass"


def test_real_argparse_namespace() -> None:
    """A Namespace from a real parser converts to its arguments."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--layers", type=int, nargs="+")
    parser.add_argument("--amp", action="store_true")
    args = parser.parse_args(["--lr", "0.3", "--layers", "64", "32", "--amp"])
    assert config_to_dict(args) == {"lr": 0.3, "layers": [64, 32], "amp": True}
    captured = capture_config(args)
    assert captured.data["source"] == "argparse"


def test_omegaconf_is_resolved() -> None:
    """DictConfig interpolations are resolved; a top-level ListConfig gets index keys."""
    omegaconf = pytest.importorskip("omegaconf")
    cfg = omegaconf.OmegaConf.create({"width": 8, "model": {"hidden": "${width}", "n": [1, 2]}})
    assert config_to_dict(cfg) == {"width": 8, "model": {"hidden": 8, "n": [1, 2]}}
    assert config_source(cfg) == "omegaconf"
    assert config_to_dict(omegaconf.OmegaConf.create([{"a": 1}, 2])) == {"0": {"a": 1}, "1": 2}
    assert capture_config(cfg).data["source"] == "omegaconf"


def test_omegaconf_nested_inside_a_dict() -> None:
    """An OmegaConf node inside a plain dict is resolved too."""
    omegaconf = pytest.importorskip("omegaconf")
    inner = omegaconf.OmegaConf.create({"a": 1, "b": "${a}"})
    assert config_to_dict({"inner": inner}) == {"inner": {"a": 1, "b": 1}}


def test_unresolvable_interpolation_is_an_invalid_argument() -> None:
    """An interpolation that points nowhere raises InvalidArgumentError."""
    omegaconf = pytest.importorskip("omegaconf")
    cfg = omegaconf.OmegaConf.create({"a": "${missing.key}"})
    with pytest.raises(InvalidArgumentError, match="does not resolve"):
        config_to_dict(cfg)


def test_pydantic_model() -> None:
    """A pydantic model converts through model_dump."""
    pydantic = pytest.importorskip("pydantic")

    class Model(pydantic.BaseModel):
        lr: float = 0.5
        tags: list[str] = ["a"]

    assert config_to_dict(Model()) == {"lr": 0.5, "tags": ["a"]}
    assert config_source(Model()) == "pydantic"


@pytest.mark.parametrize("bad", [42, "lr=0.1", [1, 2], object(), TrainConfig])
def test_unsupported_types_name_the_type(bad: object) -> None:
    """Anything else raises InvalidArgumentError naming the type."""
    with pytest.raises(InvalidArgumentError, match=type(bad).__qualname__):
        config_to_dict(bad)
    with pytest.raises(InvalidArgumentError):
        ConfigCapturer(bad)


def test_capture_without_config_records_argv() -> None:
    """With no config, argv is still captured and the source is None."""
    captured = capture_config()
    assert captured.kind == "config"
    assert captured.data == {"config": None, "argv": sys.argv, "source": None, "hydra": None}


def test_hydra_imported_but_not_running_is_none() -> None:
    """Hydra imported but not running gives no Hydra context."""
    pytest.importorskip("hydra")
    assert hydra_context() is None


def test_config_capturer_satisfies_the_protocol() -> None:
    """ConfigCapturer is a Capturer whose capture() holds the converted config."""
    capturer = ConfigCapturer({"a": 1})
    assert isinstance(capturer, Capturer)
    assert capturer.available() is True
    assert capturer.capture().data["config"] == {"a": 1}


HYDRA_APP = """
import json

import hydra

from mltrail.capture.config import capture_config


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg):
    print("CAPTURED=" + json.dumps(capture_config(cfg).data))


if __name__ == "__main__":
    main()
"""


def test_real_hydra_app_records_overrides_and_sources(tmp_path: Path) -> None:
    """A real Hydra app run with overrides records the resolved config and Hydra's context."""
    pytest.importorskip("hydra")
    conf = tmp_path / "conf"
    (conf / "model").mkdir(parents=True)
    (conf / "config.yaml").write_text(
        textwrap.dedent(
            """\
            defaults:
              - model: small
              - _self_
            lr: 0.1
            run_name: depth-${model.depth}
            """
        )
    )
    (conf / "model" / "small.yaml").write_text("depth: 4\nwidth: 32\n")
    (tmp_path / "app.py").write_text(HYDRA_APP)
    done = subprocess.run(
        [sys.executable, "app.py", "model.depth=8", "+extra=1", "+db.password=hunter2"]
        + ["hydra.run.dir=out"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("CAPTURED="))
    data = json.loads(line.removeprefix("CAPTURED="))
    assert data["source"] == "hydra"
    assert data["config"] == {
        "model": {"depth": 8, "width": 32},
        "lr": 0.1,
        "run_name": "depth-8",
        "extra": 1,
        "db": {"password": "hunter2"},
    }
    assert data["argv"][1:] == [
        "model.depth=8",
        "+extra=1",
        "+db.password=***",
        "hydra.run.dir=out",
    ]
    hydra = data["hydra"]
    assert hydra["overrides"] == ["model.depth=8", "+extra=1", "+db.password=***"]
    assert hydra["config_name"] == "config"
    assert hydra["choices"]["model"] == "small"
    assert hydra["job_name"] == "app"
    assert Path(hydra["runtime_cwd"]) == tmp_path
    assert Path(hydra["output_dir"]) == tmp_path / "out"
    main = [s for s in hydra["config_sources"] if s["provider"] == "main"]
    assert main == [{"path": str(conf), "provider": "main", "schema": "file"}]
    assert {"path", "provider", "schema"} == set(hydra["config_sources"][0])


def test_secret_looking_arguments_are_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    """Values of secret-named options leave argv; look-alikes such as --tokenizer stay."""
    argv = ["train.py", "--api-key=abc", "--password", "pw", "--tokenizer", "gpt2"]
    argv += ["max_tokens=5", "db.password=x", "+hf_token=t", "--lr", "0.1"]
    monkeypatch.setattr(sys, "argv", argv)
    assert capture_config().data["argv"] == [
        "train.py",
        "--api-key=***",
        "--password",
        "***",
        "--tokenizer",
        "gpt2",
        "max_tokens=5",
        "db.password=***",
        "+hf_token=***",
        "--lr",
        "0.1",
    ]
