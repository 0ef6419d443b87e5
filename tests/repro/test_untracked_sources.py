"""`reproduce` writes back the untracked source files a run was recorded with."""

from __future__ import annotations

import json
from pathlib import Path

from reprohelp import child_env, mltrail_cli, python

from mltrail.testing.repos import init_repo

TRAIN = """
import mltrail
import helper

with mltrail.init(project="u", system_metrics_s=0) as run:
    for step in range(3):
        mltrail.log({"loss": helper.SCALE / (step + 1)}, step=step)
print("logged run", run.run_id)
"""


def test_untracked_helper_is_restored_and_the_verdict_is_identical(tmp_path: Path) -> None:
    """A script importing an uncommitted module runs (no refusal) and reproduces identically:
    the module comes back from its blob; left-behind outputs do not count as code."""
    repo = init_repo(tmp_path / "repo", {"train.py": TRAIN, ".gitignore": ".mltrail/\n"})
    (repo / "helper.py").write_text("SCALE = 0.5\n")
    (repo / "model.pt").write_bytes(b"\0" * 64)  # an earlier run's output
    env = child_env(MLTRAIL_ALLOW_DIRTY="0")
    original = python(repo, "train.py", env=env)
    done = mltrail_cli(repo, "reproduce", original, "--json", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    doc = json.loads(done.stdout)
    assert doc["outcome"]["verdict"] == "identical", doc["outcome"]
    items = {(i["kind"], i["subject"]): i for i in doc["plan"]["items"]}
    assert items[("code", "untracked source files")]["status"] == "restore"
    assert "model.pt" in items[("code", "outputs")]["detail"]
