"""The pieces `mltrail run` adds around a command: console metric patterns, written files,
console normalisation, file-name masking, config redaction, the argparse hook."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mltrail.errors import InvalidArgumentError
from mltrail.repro.autoconfig import HOOK_DIR, hydra_config, redact_config
from mltrail.repro.compare_outputs import _file_key, normalise_line
from mltrail.repro.console_metrics import parse_metric_specs
from mltrail.repro.outputs import _written, snapshot


def test_metric_specs() -> None:
    """NAME=REGEX with at most one group; anything else names the spec."""
    ((name, pattern),) = parse_metric_specs(["loss=loss=([0-9.e+-]+)"])
    assert name == "loss" and pattern.search("epoch 1 loss=0.25").group(1) == "0.25"
    for bad in ("loss", "=x", "a=(", "a=(1)(2)"):
        with pytest.raises(InvalidArgumentError, match="--metric"):
            parse_metric_specs([bad])


def test_snapshot_finds_new_and_changed_files(tmp_path: Path) -> None:
    """Written = new or changed (stat); caches, .git and virtual environments are skipped."""
    (tmp_path / "keep.txt").write_text("a")
    (tmp_path / "same.txt").write_text("b")
    (tmp_path / "venv_x").mkdir()
    (tmp_path / "venv_x" / "pyvenv.cfg").write_text("")
    before = snapshot(tmp_path)
    assert before is not None and "venv_x/pyvenv.cfg" not in before
    (tmp_path / "keep.txt").write_text("changed!")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "m.pt").write_bytes(b"\0")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "x.pyc").write_bytes(b"\0")
    after = snapshot(tmp_path)
    assert after is not None
    assert _written(before, after) == ["keep.txt", "out/m.pt"]


def test_console_lines_are_normalised() -> None:
    """Time stamps, durations, paths and addresses are masked; numbers that matter stay."""
    a = normalise_line(
        "2024-01-02 10:11:12,345 epoch 3 acc 0.91 in 1.52s at /tmp/x/y.py 0x7f3a2b1c"
    )
    b = normalise_line(
        "2025-03-04 09:08:07,001 epoch 3 acc 0.91 in 0.98s at /home/u/y.py 0x7f00aa11"
    )
    assert a == b
    assert normalise_line("epoch 3 acc 0.91") != normalise_line("epoch 3 acc 0.92")


def test_file_names_mask_time_stamped_folders() -> None:
    """Hydra's dated folders and TensorBoard event names compare across runs; .hydra/ is
    config, not an output."""
    assert _file_key("outputs/2024-01-02/10-11-12/result.json") == "outputs/*/*/result.json"
    assert _file_key("runs/x/events.out.tfevents.1700000000.host.1.0") == (
        "runs/x/events.out.tfevents.*"
    )
    assert _file_key("outputs/2024-01-02/10-11-12/.hydra/config.yaml") is None
    assert _file_key("model.pt") == "model.pt"


def test_secret_looking_keys_are_redacted() -> None:
    """password, pass, secret, token, key, credential: values hidden, nesting kept."""
    config = {
        "db": {"password": "x", "host": "h"},
        "api_key": "k",
        "pass": 1,
        "tokenizer": "bpe",
        "lr": 0.1,
    }
    assert redact_config(config) == {
        "db": {"password": "***", "host": "h"},
        "api_key": "***",
        "pass": "***",
        "tokenizer": "bpe",
        "lr": 0.1,
    }


def test_hydra_config_is_read_from_the_first_written_hydra_folder(tmp_path: Path) -> None:
    """The composed config and the overrides (secret values redacted)."""
    hydra = tmp_path / "outputs" / "d" / "t" / ".hydra"
    hydra.mkdir(parents=True)
    (hydra / "config.yaml").write_text("lr: 0.1\nmodel:\n  width: 8\n")
    (hydra / "overrides.yaml").write_text("- lr=0.1\n- api_token=abc\n")
    got = hydra_config(tmp_path, ["outputs/d/t/.hydra/config.yaml", "outputs/d/t/x.log"])
    assert got is not None
    assert got["config"] == {"lr": 0.1, "model": {"width": 8}}
    assert got["overrides"] == ["lr=0.1", "api_token=***"] and got["output_dir"] == "outputs/d/t"
    assert hydra_config(tmp_path, ["x.log"]) is None


def test_the_hook_records_the_outermost_parse_and_chains(tmp_path: Path) -> None:
    """The sitecustomize hook writes the namespace of the outermost parse_args (subparsers
    included) once, and still runs a sitecustomize it shadows."""
    other = tmp_path / "other"
    other.mkdir()
    (other / "sitecustomize.py").write_text("import os\nos.environ['CHAINED'] = '1'\n")
    out = tmp_path / "auto"
    out.mkdir()
    script = (
        "import argparse, os\n"
        "p = argparse.ArgumentParser()\n"
        "p.add_argument('--lr', type=float, default=0.1)\n"
        "sub = p.add_subparsers(dest='cmd')\n"
        "t = sub.add_parser('train')\n"
        "t.add_argument('--epochs', type=int, default=1)\n"
        "p.parse_args(['--lr', '0.5', 'train', '--epochs', '3'])\n"
        "p.parse_args(['--lr', '0.9'])\n"
        "print(os.environ.get('CHAINED'))\n"
    )
    env = {
        **os.environ,
        "MLTRAIL_AUTOCONFIG_DIR": str(out),
        "PYTHONPATH": os.pathsep.join([str(HOOK_DIR), str(other)]),
    }
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"
    doc = json.loads((out / "argparse.json").read_text())
    assert doc["args"] == {"lr": 0.5, "cmd": "train", "epochs": 3}


def test_checklist_score_policy_and_markdown() -> None:
    """Pass 1, warn 1/2, fail 0; a required item must pass; the Markdown block lists all."""
    from mltrail.repro.checklist import Check, Checklist

    result = Checklist(
        "r1",
        (Check("code", "pass", "ok"), Check("seed", "fail", "none"), Check("data", "warn", "x")),
    )
    assert result.score == 0.5
    assert result.failures(None, ()) == []
    assert result.failures(0.6, ("code", "seed")) == [
        "score 0.50 is below 0.60",
        "seed is required to pass: none",
    ]
    md = result.markdown()
    assert "`r1`: 0.50" in md and "| seed | ❌ fail | none |" in md
