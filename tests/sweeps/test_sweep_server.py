"""The server's sweep API and the UI's sweep page: trials, best, best-so-far, scoping."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from sweep_helpers import spec

import mltrail
from mltrail.sweeps.report import describe_sweep

sys.path.insert(0, str(Path(__file__).parents[1] / "server"))
from srvhelp import make_server  # noqa: E402


def _train(p):
    for step in range(3):
        mltrail.log({"loss": (p["x"] - 2.0) ** 2 + 1.0 / (step + 1)}, step=step)
    return None


@pytest.fixture
def swept(tmp_path):
    store = str(tmp_path / "store")
    body = spec(program=None, method="random", run_cap=3, project="p")
    result = mltrail.sweep(body, _train, store=store)
    server = make_server(store, tmp_path / "artifacts")
    yield server, store, result
    for c in server._clients:
        c.close()
    server.store.close()


def test_api_returns_what_sweep_show_prints(swept):
    """GET /api/v1/sweeps/ID is `sweep show --json`; another project's token gets 404 like
    a missing sweep; a malformed id is 422."""
    server, store, result = swept
    got = server.client(server.read_token).get(f"/api/v1/sweeps/{result.sweep_id}")
    assert got.status_code == 200, got.text
    assert got.json() == describe_sweep(result.sweep_id, store=store)
    assert [t["run_id"] for t in got.json()["trials"]] == [t.run_id for t in result.trials]
    other = server.client(server.token("read", project="q"))
    assert other.get(f"/api/v1/sweeps/{result.sweep_id}").status_code == 404
    mine = server.client(server.token("read", project="p"))
    assert mine.get(f"/api/v1/sweeps/{result.sweep_id}").status_code == 200
    assert mine.get("/api/v1/sweeps/sw-0000000000").status_code == 404
    assert mine.get("/api/v1/sweeps/nope").status_code == 422
    assert server.client().get(f"/api/v1/sweeps/{result.sweep_id}").status_code == 401


def test_ui_page_draws_trials_and_best_so_far(swept):
    """/sweeps/ID lists every trial with its run linked, the best, and the curve."""
    server, _, result = swept
    page = server.client(server.read_token).get(f"/sweeps/{result.sweep_id}")
    assert page.status_code == 200, page.text
    html = page.text
    for t in result.trials:
        assert f'data-trial="{t.number}"' in html and f'href="/runs/{t.run_id}"' in html
    assert 'id="best-so-far"' in html and html.count("<circle") == 3
    other = server.client(server.token("read", project="q"))
    assert other.get(f"/sweeps/{result.sweep_id}").status_code == 404


def test_ui_page_draws_importance_and_parallel_coordinates(tmp_path):
    """Past a few finished trials the page ranks the parameters (PED-ANOVA: x drives the
    loss, depth does not) and draws one parallel-coordinates line per finished trial."""
    store = str(tmp_path / "store")
    body = spec(program=None, method="random", run_cap=8, project="p")
    result = mltrail.sweep(body, _train, store=store)
    data = describe_sweep(result.sweep_id, store=store)
    assert set(data["importance"]) == {"x", "depth"}
    assert data["importance"]["x"] > data["importance"]["depth"]
    server = make_server(store, tmp_path / "artifacts")
    try:
        html = server.client(server.read_token).get(f"/sweeps/{result.sweep_id}").text
    finally:
        for c in server._clients:
            c.close()
        server.store.close()
    assert 'id="importance"' in html and 'id="parallel"' in html
    finished = sum(t.state == "finished" for t in result.trials)
    assert html.count('class="trial-line"') == finished >= 2
