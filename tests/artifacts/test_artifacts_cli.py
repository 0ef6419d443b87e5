"""``mltrail artifacts list|show|get``, ``mltrail lineage`` and artifacts in ``runs show``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from art_helpers import write
from typer.testing import CliRunner, Result

import mltrail
from mltrail.cli.main import app

NewRun = Callable[..., mltrail.Run]


def cli(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def _json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture
def chain(new_run: NewRun, tmp_path: Path) -> dict[str, str]:
    """prep → data:v1 → train → model:v1 (best) → eval; returns run ids."""
    prep = new_run("prep")
    prep.log_artifact(write(tmp_path / "raw", {"rows.csv": "1\n2\n"}), name="data")
    prep.finish()
    train = new_run("train")
    train.use_artifact("data")
    model = write(tmp_path, {"m.pt": b"weights"}) / "m.pt"
    train.log_artifact(model, name="model", type="model", aliases=("best",), metadata={"acc": 0.9})
    train.finish()
    ev = new_run("eval")
    ev.use_artifact("model:best")
    ev.finish()
    return {"prep": prep.run_id, "train": train.run_id, "eval": ev.run_id}


def test_artifacts_list(chain: dict[str, str], store_dir: Path) -> None:
    """The table names each artifact; --json gives the records."""
    out = cli("artifacts", "list", "--store", str(store_dir))
    assert out.exit_code == 0, out.output
    assert "data" in out.stdout and "model" in out.stdout and "best→v1" in out.stdout
    rows = _json(cli("artifacts", "list", "--json", "--store", str(store_dir)))
    assert [(r["name"], r["type"], r["latest_version"]) for r in rows] == [
        ("data", "dataset", 1),
        ("model", "model", 1),
    ]
    empty = cli("artifacts", "list", "--project", "none", "--store", str(store_dir))
    assert "no artifacts" in empty.stdout


def test_artifacts_show(chain: dict[str, str], store_dir: Path) -> None:
    """show gives the version, its producer and its users."""
    out = cli("artifacts", "show", "model:best", "--store", str(store_dir))
    assert out.exit_code == 0, out.output
    assert "proj/model:v1" in out.stdout and chain["train"] in out.stdout
    assert chain["eval"] in out.stdout and '"acc": 0.9' in out.stdout
    got = _json(cli("artifacts", "show", "model", "--json", "--store", str(store_dir)))
    assert (got["ref"], got["run_id"], got["used_by"]) == (
        "model:v1",
        chain["train"],
        [chain["eval"]],
    )
    assert got["aliases"] == ["best", "latest"] and len(got["versions"]) == 1
    missing = cli("artifacts", "show", "model:v7", "--store", str(store_dir))
    assert missing.exit_code == 1 and "no version v7" in missing.output
    bad = cli("artifacts", "show", "a b", "--store", str(store_dir))
    assert bad.exit_code == 1 and "error:" in bad.output and "Traceback" not in bad.output


def test_artifacts_get(chain: dict[str, str], store_dir: Path, tmp_path: Path) -> None:
    """get checks the content out into --to."""
    out = cli(
        "artifacts", "get", "data:latest", "--to", str(tmp_path / "got"), "--store", str(store_dir)
    )
    assert out.exit_code == 0, out.output
    assert (tmp_path / "got" / "rows.csv").read_text() == "1\n2\n"
    got = _json(
        cli(
            "artifacts",
            "get",
            "model:v1",
            "--to",
            str(tmp_path / "m"),
            "--json",
            "--store",
            str(store_dir),
        )
    )
    assert Path(got["path"]).read_bytes() == b"weights"


def test_lineage_json_and_tree(chain: dict[str, str], store_dir: Path) -> None:
    """--json is a {nodes, edges} graph; the default output is a tree naming every node."""
    graph = _json(cli("lineage", chain["eval"], "--upstream", "--json", "--store", str(store_dir)))
    ids = {n["id"] for n in graph["nodes"]}
    assert ids == {
        f"run:{chain['eval']}",
        "artifact:proj/model:v1",
        f"run:{chain['train']}",
        "artifact:proj/data:v1",
        f"run:{chain['prep']}",
    }
    assert {
        "source": "artifact:proj/model:v1",
        "target": f"run:{chain['eval']}",
        "relation": "used",
    } in graph["edges"]
    assert graph["direction"] == "upstream" and graph["root"] == f"run:{chain['eval']}"
    tree = cli("lineage", "data:v1", "--downstream", "--store", str(store_dir))
    assert tree.exit_code == 0, tree.output
    for needle in ("proj/data:v1", "used by", chain["train"], "proj/model:v1", chain["eval"]):
        assert needle in tree.stdout
    both = cli("lineage", f"run:{chain['train']}", "--store", str(store_dir))
    assert "(upstream)" in both.stdout and "(downstream)" in both.stdout
    near = _json(
        cli("lineage", chain["train"], "--depth", "1", "--json", "--store", str(store_dir))
    )
    assert len(near["nodes"]) == 3
    clash = cli("lineage", "x", "--upstream", "--downstream", "--store", str(store_dir))
    assert clash.exit_code == 1 and "exclude each other" in clash.output
    nothing = cli("lineage", "ghost", "--store", str(store_dir))
    assert nothing.exit_code == 1 and "neither a run id nor an artifact" in nothing.output


def test_runs_show_lists_inputs_and_outputs(chain: dict[str, str], store_dir: Path) -> None:
    """runs show has inputs and outputs sections, and --json carries them."""
    out = cli("runs", "show", chain["train"], "--store", str(store_dir))
    assert out.exit_code == 0, out.output
    assert "inputs (artifacts used)" in out.stdout and "outputs (artifacts)" in out.stdout
    assert "proj/data:v1" in out.stdout and "proj/model:v1" in out.stdout
    got = _json(cli("runs", "show", chain["train"], "--json", "--store", str(store_dir)))
    assert [v["ref"] for v in got["inputs"]] == ["data:v1"]
    assert [v["ref"] for v in got["outputs"]] == ["model:v1"]
