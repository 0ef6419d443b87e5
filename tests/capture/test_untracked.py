"""Untracked files sorted into code (kept with the run) and outputs (never code)."""

from __future__ import annotations

import json
from pathlib import Path

from mltrail.capture.policy import run_policy
from mltrail.capture.untracked import (
    SOURCE_MAX_BYTES,
    classify_untracked,
    known_outputs,
    read_sources,
)
from mltrail.testing.repos import init_repo


def test_sources_outputs_and_noise(tmp_path: Path) -> None:
    """Source-like small files are code; framework folders, binaries, big files, files a
    tracked run wrote are outputs; __pycache__ is neither."""
    root = init_repo(tmp_path / "repo", {"train.py": "x = 1\n"})
    (root / "conf" / "model").mkdir(parents=True)
    (root / "conf" / "model" / "mlp.yaml").write_text("width: 8\n")
    (root / "conf" / "model" / "notes.md").write_text("hi\n")
    for folder in ("outputs/2024-01-01/12-00-00/.hydra", "lightning_logs/v0", "wandb", "plots"):
        (root / folder).mkdir(parents=True)
    (root / "outputs/2024-01-01/12-00-00/.hydra/config.yaml").write_text("a: 1\n")
    (root / "plots" / "loss.png").write_bytes(b"\x89PNG")
    (root / "big.json").write_text("[" + "1," * SOURCE_MAX_BYTES + "1]")
    (root / "model.pt").write_bytes(b"\0\1")
    (root / "metrics.json").write_text("{}")
    (root / "__pycache__").mkdir()
    (root / "__pycache__" / "train.cpython-311.pyc").write_bytes(b"\0")
    untracked = [
        "__pycache__/",
        "big.json",
        "conf/",
        "lightning_logs/",
        "metrics.json",
        "model.pt",
        "outputs/",
        "plots/",
        "wandb/",
    ]
    got = classify_untracked(root, untracked, written=frozenset({"metrics.json"}))
    assert got.sources == ["conf/model/mlp.yaml"]
    assert got.outputs == [
        "big.json",
        "conf/model/notes.md",
        "lightning_logs/",
        "metrics.json",
        "model.pt",
        "outputs/",
        "plots/",
        "wandb/",
    ]
    files, blobs = read_sources(root, got.sources)
    assert files[0]["path"] == "conf/model/mlp.yaml" and files[0]["size"] == 9
    assert blobs[files[0]["digest"]] == b"width: 8\n"


def test_known_outputs_are_read_from_the_git_folder(tmp_path: Path) -> None:
    """What `mltrail run` saw a run write is read back from .git/mltrail/outputs.json."""
    root = init_repo(tmp_path / "repo", {"train.py": "x = 1\n"})
    assert known_outputs(root) == frozenset()
    (root / ".git" / "mltrail").mkdir()
    (root / ".git" / "mltrail" / "outputs.json").write_text(json.dumps({"paths": ["a.json"]}))
    (root / "a.json").write_text("{}")
    assert known_outputs(root) == {"a.json"}
    assert classify_untracked(root, ["a.json"]).outputs == ["a.json"]


def test_run_policy(tmp_path: Path) -> None:
    """require_clean at the top level or under [run]; metrics under [run]; a broken file is
    no policy, with the reason."""
    assert run_policy(None).require_clean is False
    (tmp_path / ".mltrail").mkdir()
    cfg = tmp_path / ".mltrail" / "config.toml"
    cfg.write_text("require_clean = true\n")
    assert run_policy(tmp_path).require_clean is True
    cfg.write_text("[run]\nrequire_clean = true\nmetrics = ['loss=([0-9.]+)']\n")
    policy = run_policy(tmp_path)
    assert policy.require_clean and policy.metrics == ("loss=([0-9.]+)",)
    cfg.write_text("[check]\nmin_score = 0.8\nrequire = ['code', 'seed']\n")
    policy = run_policy(tmp_path)
    assert policy.check_min_score == 0.8 and policy.check_require == ("code", "seed")
    cfg.write_text("require_clean = \n")
    broken = run_policy(tmp_path)
    assert not broken.require_clean and broken.error is not None and "config.toml" in broken.error
