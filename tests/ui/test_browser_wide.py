"""The run page of a run with 10^4 metric keys (Chromium): key search, groups, lazy panels.

The run is written with one ``apply_batch`` (one batch of 10^4 ``MetricSeries``). The page
must stay usable: a capped number of chart panels on load, each fetching its series only
when near the viewport, keys grouped by prefix with their counts, and a search that finds
any key and draws its chart.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from uihelp import LiveServer, Watched, make_app

from mltrail.entities import RunStatus
from mltrail.store.batch import Batch, MetricSeries, RunCreate, StatusChange
from mltrail.store.registry import open_store

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

KEYS = 10_000
STEPS = 100
CAP = 12  # _run_view.CHART_CAP
T0 = 1_700_000_000_000


def wide_key(i: int) -> str:
    """``train/`` for odd i, ``val/`` for i % 4 == 0, ``grad/`` for the rest (as bench_ui)."""
    prefix = "train" if i % 2 else ("val" if i % 4 == 0 else "grad")
    return f"{prefix}/k{i:04d}"


@pytest.fixture(scope="module")
def wide_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("ui-wide")
    store = open_store(str(root / "store"), shared=False)
    run_id = uuid.uuid4().hex
    steps = np.arange(STEPS, dtype=np.int64)
    stamps = T0 + steps * 1000
    base = 1.0 / (1.0 + steps / 10.0)
    metrics = {wide_key(i): MetricSeries(steps, stamps, base * (1 + i % 7)) for i in range(KEYS)}
    metrics["loss"] = MetricSeries(steps, stamps, base)  # a key without a prefix
    create = RunCreate("wide", "wide-run", T0, 5.0, "t", "h", "python train.py")
    store.apply_batch(Batch(run_id, create=create, metrics=metrics))
    store.apply_batch(Batch(run_id, status=StatusChange(RunStatus.FINISHED, T0 + STEPS * 1000)))
    store.close()
    return root, run_id


@pytest.fixture(scope="module")
def server(wide_run: tuple[Path, str]) -> Iterator[LiveServer]:
    """Overrides conftest's: the app over the wide run's store."""
    with LiveServer(make_app(wide_run[0])) as live:
        yield live


def _open(w: Watched, run_id: str) -> None:
    w.page.goto(f"/runs/{run_id}#metrics", timeout=30_000)
    w.page.wait_for_function("() => document.body.dataset.firstPanelsMs", timeout=30_000)


def _series_requests(w: Watched) -> list[str]:
    return [u for u in w.requests if "/series?" in u]


def test_wide_run_page_loads_capped_lazy_panels(
    watched: Watched, wide_run: tuple[Path, str]
) -> None:
    page = watched.page
    _open(watched, wide_run[1])
    panels = page.locator("#metric-charts .chart")
    assert panels.count() == CAP
    # nothing drew a chart per key: at most the capped panels asked for their series
    assert 1 <= len(_series_requests(watched)) <= CAP
    assert page.locator("#metrics .chart[data-state='drawn'] .main-svg").count() >= 1
    assert page.locator("#metric-match").inner_text() == f"{KEYS + 1} keys"
    # the summary table lists a page of keys, not 10^4 rows
    assert page.locator("#metric-summary tbody tr").count() == 50
    assert "more keys match" in page.locator("#metric-rows-more").inner_text()
    groups = {
        li.locator(".key-group, .muted").first.inner_text(): li.locator(".count").inner_text()
        for li in page.locator("#metric-groups li").all()
    }
    assert groups == {"grad/": "2500", "train/": "5000", "val/": "2500", "(no prefix)": "1"}
    assert (
        page.locator("#metric-more").inner_text() == f"show {CAP} more ({KEYS + 1 - CAP} not shown)"
    )


def test_wide_search_finds_a_key_and_draws_it(watched: Watched, wide_run: tuple[Path, str]) -> None:
    page = watched.page
    _open(watched, wide_run[1])
    page.fill("#metric-search", "train/k9999")
    chart = page.locator("#metric-charts .chart").first
    page.wait_for_selector("#metric-charts .chart[data-key='train/k9999'][data-state='drawn']")
    assert page.locator("#metric-charts .chart").count() == 1
    assert chart.get_attribute("data-points") == str(STEPS)
    assert page.locator("#metric-match").inner_text() == f"1 of {KEYS + 1} keys match"
    rows = page.locator("#metric-summary tbody tr")
    assert rows.count() == 1
    assert rows.first.locator("td").first.inner_text() == "train/k9999"
    assert rows.first.locator("td").last.inner_text() == str(STEPS)
    assert page.locator("#metric-more").is_hidden()
    # a substring, any case
    page.fill("#metric-search", "VAL/k000")
    page.wait_for_function(
        "() => document.getElementById('metric-browser').dataset.query === 'VAL/k000'"
    )
    assert page.locator("#metric-browser").get_attribute("data-matches") == "3"  # 0, 4, 8
    # a glob: grad/k00?2 -> 0002, 0012 ... 0092 (i % 4 == 2)
    page.fill("#metric-search", "grad/k00?2")
    page.wait_for_function(
        "() => document.getElementById('metric-browser').dataset.query === 'grad/k00?2'"
    )
    keys = [e.get_attribute("data-key") for e in page.locator("#metric-charts .chart").all()]
    assert keys == ["grad/k0002", "grad/k0022", "grad/k0042", "grad/k0062", "grad/k0082"]
    # no match: a message, no panel
    page.fill("#metric-search", "nope/none")
    page.wait_for_selector("#metric-charts p.empty")
    assert page.locator("#metric-charts .chart").count() == 0


def test_wide_group_and_more(watched: Watched, wide_run: tuple[Path, str]) -> None:
    page = watched.page
    _open(watched, wide_run[1])
    page.locator("#metric-groups button.key-group", has_text="val/").click()
    assert page.locator("#metric-search").input_value() == "val/*"
    assert page.locator("#metric-browser").get_attribute("data-matches") == "2500"
    assert page.locator("#metric-charts .chart").count() == CAP
    more = page.locator("#metric-more")
    assert more.inner_text() == f"show {CAP} more ({2500 - CAP} not shown)"
    before = len(_series_requests(watched))
    more.click()
    assert page.locator("#metric-charts .chart").count() == 2 * CAP
    keys = [e.get_attribute("data-key") for e in page.locator("#metric-charts .chart").all()]
    assert all(k is not None and k.startswith("val/") for k in keys)
    # lazy: the panels below the viewport have not fetched their series
    last = page.locator("#metric-charts .chart").last
    assert last.get_attribute("data-state") is None
    assert len(_series_requests(watched)) - before < 2 * CAP
    last.scroll_into_view_if_needed()
    page.wait_for_selector(f"#metric-charts .chart[data-key='{keys[-1]}'][data-state='drawn']")


def test_ui_series_route_answers_like_the_api(
    server: LiveServer, wide_run: tuple[Path, str]
) -> None:
    import json
    import urllib.error
    import urllib.request

    def get(path: str) -> tuple[int, object]:
        try:
            with urllib.request.urlopen(server.url + path) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, None

    run_id = wide_run[1]
    q = "/series?key=train%2Fk0001&points=50"
    status, ui = get(f"/api/v1/ui/runs/{run_id}{q}")
    assert status == 200
    assert ui == get(f"/api/v1/runs/{run_id}{q}")[1]
    assert isinstance(ui, dict) and len(ui["values"]) == 50
    assert get(f"/api/v1/ui/runs/{run_id}/series?key=nope%2Fmissing")[0] == 404
    assert get("/api/v1/ui/runs/0123456789abcdef0123456789abcdef/series?key=loss")[0] == 404
    assert get(f"/api/v1/ui/runs/{run_id}/series?key=loss&points=0")[0] == 422
