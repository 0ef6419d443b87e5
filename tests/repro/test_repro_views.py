"""The verdict of a reproduction in `mltrail runs show` and on the web UI's run page."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import mltrail
from mltrail.cli.main import app

runner = CliRunner()


def _runs(store: Path) -> tuple[str, str]:
    opts = {"store": store, "capture": False, "system_metrics_s": 0, "console": False}
    with mltrail.init(project="p", name="orig", **opts) as run:
        run.log({"loss": 1.0}, step=0)
        original = run.run_id
    tags = {"reproduction-of": original, "mltrail.verdict": "diverged"}
    with mltrail.init(project="p", name="repro", tags=tags, **opts) as run:
        run.log({"loss": 2.0}, step=0)
        doc = {
            "verdict": "diverged",
            "summary": "diverged: loss at step 0: 1.0 vs 2.0 (gap 1.0)",
            "of": original,
            "rtol": 1e-5,
            "atol": 1e-8,
            "causes": ["the seed was not set: <b>no</b> seed_everything"],
            "not_restored": [{"subject": "untracked files", "detail": "notes.txt"}],
        }
        run.recorder.state("verdict", doc)
        new = run.run_id
    return original, new


def test_runs_show_prints_the_verdict(tmp_path: Path) -> None:
    original, new = _runs(tmp_path / "store")
    done = runner.invoke(app, ["runs", "show", new, "--store", str(tmp_path / "store")])
    assert done.exit_code == 0, done.output
    text = " ".join(done.output.split())
    assert "reproduction verdict verdict diverged" in text
    assert f"of run {original}" in text
    assert "cause the seed was not set" in text
    assert "not restored untracked files: notes.txt" in text


def test_run_page_shows_verdict_and_links_both_ways(tmp_path: Path) -> None:
    pytest.importorskip("fastapi")
    import httpx

    from mltrail.testing.server import ThreadedServer

    original, new = _runs(tmp_path / "store")
    server = ThreadedServer(str(tmp_path / "store"), str(tmp_path / "objects"), auth=False)
    with server as srv, httpx.Client(base_url=srv.url) as client:
        page = client.get(f"/runs/{new}")
        assert page.status_code == 200
        html = page.text
        assert f'href="/runs/{original}"' in html
        assert '<span class="badge vd-diverged" id="verdict">diverged</span>' in html
        assert "cause: the seed was not set: &lt;b&gt;no&lt;/b&gt; seed_everything" in html
        back = client.get(f"/runs/{original}").text
        assert f'href="/runs/{new}"' in back
        assert '<span class="badge vd-diverged">diverged</span>' in back
