"""The web UI in a real browser: Debian's Chromium driven by Playwright over a live server.

Every test runs on a page whose console is watched: a CSP violation, a script error or a
dialog (an ``alert`` from user text) fails it (see ``conftest.watched``).
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from uihelp import LiveServer, Watched, screenshot
from uiseed import RTL, SCRIPT, T0, Seeded

if TYPE_CHECKING:
    from playwright.sync_api import Page


def _run_ids(page: Page) -> list[str]:
    ids: list[str] = page.locator("#runs tbody tr[data-run]").evaluate_all(
        "rows => rows.map(r => r.dataset.run)"
    )
    return ids


def _wait_charts(page: Page) -> None:
    page.wait_for_function(
        "() => { const c = document.querySelectorAll('.chart');"
        " return c.length > 0 && [...c].every(e => e.dataset.state === 'drawn'); }"
    )


def test_projects_page_lists_projects(watched: Watched, shots: Path) -> None:
    """The home page lists each project with its run count, linking to its runs."""
    page = watched.page
    page.goto("/")
    rows = page.locator("#projects tbody tr")
    assert rows.count() == 2
    assert "130" in page.locator("#projects tr", has_text="bulk").inner_text()
    screenshot(page, shots, "projects")
    page.click("text=vision")
    page.wait_for_url(re.compile(r"/p/vision$"))
    assert page.locator("h1").inner_text() == "vision"


def test_runs_table_status_filter_and_errors(watched: Watched, seeded: Seeded, shots: Path) -> None:
    """Badges show crashed runs; the filter narrows the table; a bad filter names the spot."""
    page = watched.page
    page.goto("/p/vision")
    assert set(_run_ids(page)) == {seeded.a, seeded.b, seeded.c, seeded.repro}
    crashed = page.locator(f"tr[data-run='{seeded.b}'] .badge")
    assert crashed.inner_text() == "crashed"
    assert "st-crashed" in (crashed.get_attribute("class") or "")
    screenshot(page, shots, "runs-table")

    page.fill("#filter", "params.lr > 0.05 and metrics.loss < 10")
    page.press("#filter", "Enter")
    page.wait_for_url(re.compile(r"filter="))
    assert _run_ids(page) == [seeded.b]

    page.fill("#filter", "params.lr >> 0.05")
    page.press("#filter", "Enter")
    error = page.locator("#filter-error")
    error.wait_for()
    assert error.get_attribute("data-position") == "11"
    assert "position 11" in error.inner_text()
    assert page.locator(".caret").inner_text().splitlines()[1] == " " * 11 + "^"
    assert _run_ids(page) == []


def test_sort_choose_columns_and_group(watched: Watched, seeded: Seeded) -> None:
    """Sorting by a param column orders the rows; the chooser adds a tag column; grouping."""
    page = watched.page
    page.goto("/p/vision")
    page.click("th[data-col='params.lr'] a")
    page.wait_for_url(re.compile(r"order_by=params.lr"))
    asc = _run_ids(page)
    assert asc[0] == seeded.c and asc[-1] == seeded.b  # lr 0.003 first, 0.1 last
    page.click("th[data-col='params.lr'] a")
    page.wait_for_url(re.compile(r"order_by=params.lr\+desc"))
    assert _run_ids(page)[0] == seeded.b
    assert "sorted-desc" in (page.locator("th[data-col='params.lr']").get_attribute("class") or "")

    page.click("#columns summary")
    page.check("#columns-form input[value='tags.model']")
    page.click("#columns-form button[type=submit]")
    page.wait_for_url(re.compile(r"cols=tags.model"))
    assert page.locator("th[data-col='tags.model']").count() == 1
    assert page.locator(f"tr[data-run='{seeded.c}'] td").last.inner_text() == "vit"
    assert _run_ids(page)[0] == seeded.b  # the sort survived

    page.select_option("#group", "tags.model")
    page.wait_for_url(re.compile(r"group=tags.model"))
    heads = page.locator("tr.group-head").all_inner_texts()
    assert heads == ["tags.model = resnet (3)", "tags.model = vit (1)"]


def test_pages_through_many_runs(watched: Watched, seeded: Seeded) -> None:
    """The first 100 runs are rendered by the server; the rest come from /api/v1/runs."""
    page = watched.page
    page.goto("/p/bulk")
    assert len(_run_ids(page)) == 100
    page.click("#load-more")
    page.wait_for_function("() => document.querySelectorAll('#runs tr[data-run]').length === 130")
    assert any("/api/v1/runs?" in u and "page_token=" in u for u in watched.requests)
    assert sorted(_run_ids(page)) == sorted(seeded.bulk)
    assert page.locator("#load-more").is_hidden()


def test_run_page_draws_charts_and_zoom_refetches(
    watched: Watched, seeded: Seeded, shots: Path
) -> None:
    """Every metric key gets a plotly chart; zooming asks the server for a finer step range."""
    page = watched.page
    page.goto(f"/runs/{seeded.a}")
    _wait_charts(page)
    keys = page.locator(".chart").evaluate_all("els => els.map(e => e.dataset.key)")
    assert keys == ["acc", "loss", "system/cpu_percent"]
    assert page.locator("#system .chart").count() == 1
    loss = page.locator(".chart[data-key='loss']")
    assert loss.locator(".main-svg").count() >= 1
    assert loss.locator(".scatterlayer .trace").count() >= 3  # min, max band and the line
    assert int(loss.get_attribute("data-points") or 0) <= 2000
    page.locator("#metrics h2").scroll_into_view_if_needed()
    page.evaluate("() => document.getElementById('metrics').scrollIntoView()")
    screenshot(page, shots, "run-charts")

    loss.scroll_into_view_if_needed()
    box = loss.locator(".nsewdrag").bounding_box()
    assert box is not None
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.2, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.3, y, steps=5)
    page.mouse.up()
    page.wait_for_function(
        "() => { const e = document.querySelector(\".chart[data-key='loss']\");"
        " return e.dataset.zoomed && e.dataset.state === 'drawn' && e.dataset.requests === '2'; }"
    )
    zoom = [u for u in watched.requests if "key=loss" in u and "step_min=" in u]
    assert len(zoom) == 1
    lo, hi = (int(x) for x in (loss.get_attribute("data-zoomed") or "").split("-"))
    assert 0 < lo < hi < 2000
    assert int(loss.get_attribute("data-points") or 0) == hi - lo + 1  # raw points: finer

    page.check("#metrics .ctl-log")
    page.wait_for_function(
        "() => document.querySelector(\".chart[data-key='acc']\").layout.yaxis.type === 'log'"
    )
    page.locator("#metrics .ctl-smooth").fill("0.9")
    page.wait_for_function(
        "() => document.querySelector(\".chart[data-key='acc']\").data.length === 4"
    )


def test_run_page_sections(watched: Watched, seeded: Seeded) -> None:
    """Overview, params, code with the coloured diff, environment, hardware, console."""
    page = watched.page
    page.goto(f"/runs/{seeded.a}")
    overview = page.locator("#overview").inner_text()
    for text in ("finished", "alice", "gpu-box", "python train.py", "3m 20s"):
        assert text in overview
    assert "0.01" in page.locator("#params-table").inner_text()
    code = page.locator("#code")
    assert "3f3f3f3f" in code.inner_text() and "main" in code.inner_text()
    assert code.locator(".d-add").inner_text() == "+lr = 0.1"
    assert code.locator(".d-del").inner_text() == "-lr = 0.01"
    env = page.locator("#environment").inner_text()
    assert "3.11.9" in env and "uv.lock" in env and "EPYC" in env and "64.0 GiB" in env
    assert page.locator("#console-lines .ln").count() == 200


def test_console_search(watched: Watched, seeded: Seeded) -> None:
    """The console search asks the server and highlights the matches."""
    page = watched.page
    page.goto(f"/runs/{seeded.a}")
    page.fill("#console-q", "overflow")
    page.click("#console-form button[type=submit]")
    page.wait_for_function("() => document.getElementById('console-lines').dataset.query")
    lines = page.locator("#console-lines .ln")
    assert lines.count() == 1
    assert page.locator("#console-lines mark").inner_text() == "overflow"
    assert "s-stderr" in (lines.first.get_attribute("class") or "")
    assert any("/console?" in u and "q=overflow" in u for u in watched.requests)


def test_files_are_listed(watched: Watched, seeded: Seeded, server: LiveServer) -> None:
    """A file uploaded through the REST API shows in the run's files, with a download link."""
    data = b"final accuracy 0.93\n"
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with httpx.Client(base_url=server.url) as client:
        r = client.put(
            f"/api/v1/runs/{seeded.c}/files",
            params={"path": "logs/summary.txt"},
            content=data,
            headers={"X-Content-Digest": digest, "Content-Type": "application/octet-stream"},
        )
        assert r.status_code == 201, r.text
    page = watched.page
    page.goto(f"/runs/{seeded.c}")
    link = page.locator("#files-table a", has_text="logs/summary.txt")
    link.wait_for()
    assert "files/content?path=logs%2Fsummary.txt" in (link.get_attribute("href") or "")


def test_user_text_is_inert_and_marked(watched: Watched, seeded: Seeded, shots: Path) -> None:
    """A ``<script>`` tag value shows as text and never runs; RTL/zero-width are marked."""
    page = watched.page
    for url in (f"/runs/{seeded.a}", "/p/vision?cols=tags.note&cols=tags.rtl"):
        page.goto(url)
        assert page.get_by_text(SCRIPT).count() >= 1
        assert page.locator("script:not([src])").count() == 0
        marks = page.locator(".cc").all_inner_texts()
        assert "U+202E" in marks and "U+200B" in marks
        assert RTL not in page.locator("body").inner_text()
    page.wait_for_timeout(200)
    assert watched.dialogs == []
    screenshot(page, shots, "escaped-text")


def test_reproduction_links_to_original(watched: Watched, seeded: Seeded) -> None:
    """A reproduction links to the run it reproduces, and the original lists it."""
    page = watched.page
    page.goto(f"/runs/{seeded.repro}")
    page.click("#reproduction-of a >> nth=0")
    page.wait_for_url(re.compile(seeded.a))
    assert page.locator(f"#reproductions a[href='/runs/{seeded.repro}']").count() == 1


def test_compare_two_runs(watched: Watched, seeded: Seeded, shots: Path) -> None:
    """Pick two runs in the table → overlaid charts and a params table marking differences."""
    page = watched.page
    page.goto("/p/vision")
    assert page.locator("#compare-btn").is_disabled()
    page.check(f"tr[data-run='{seeded.a}'] input.pick")
    page.check(f"tr[data-run='{seeded.b}'] input.pick")
    assert page.locator("#selected-count").inner_text() == "2 selected"
    page.click("#compare-btn")
    page.wait_for_url(re.compile(r"/compare\?"))
    _wait_charts(page)
    names = page.locator(".chart[data-key='loss']").evaluate(
        "e => e.data.filter(t => t.hoverinfo !== 'skip').map(t => t.name)"
    )
    assert sorted(names) == ["resnet-a", "resnet-b"]
    assert "differs" in (
        page.locator("#params-compare tr[data-key='lr']").get_attribute("class") or ""
    )
    assert "same" in (
        page.locator("#params-compare tr[data-key='model']").get_attribute("class") or ""
    )
    screenshot(page, shots, "compare")


def test_diff_page(watched: Watched, seeded: Seeded, shots: Path) -> None:
    """The diff of two runs as a page: changed config, identical code, outcome table."""
    page = watched.page
    page.goto("/p/vision")
    page.check(f"tr[data-run='{seeded.a}'] input.pick")
    page.check(f"tr[data-run='{seeded.c}'] input.pick")
    page.click("#diff-btn")
    page.wait_for_url(re.compile(r"/diff\?"))
    config = page.locator("#kind-config")
    assert "changed" in (config.get_attribute("class") or "")
    assert "lr" in config.inner_text() and "0.003" in config.inner_text()
    assert "identical" in (page.locator("#kind-code").get_attribute("class") or "")
    assert page.locator("#kind-outcome .metrics-diff tr.differs").count() >= 2
    screenshot(page, shots, "diff")


def _line_pitch(page: Page, selector: str) -> tuple[float, float]:
    """(distance between the tops of the first two lines, height of one line) in pixels."""
    pitch: list[float] = page.locator(selector).evaluate_all(
        "els => [els[1].getBoundingClientRect().top - els[0].getBoundingClientRect().top,"
        " els[0].getBoundingClientRect().height]"
    )
    return pitch[0], pitch[1]


def test_console_and_diff_are_single_spaced(watched: Watched, seeded: Seeded) -> None:
    """One console line (or diff line) below the next, no blank line between (server-rendered
    and after a search), and copying the text gives one line per line."""
    page = watched.page
    page.goto(f"/runs/{seeded.a}")
    for selector in ("#console-lines .ln", "#code pre.diff > span"):
        step, height = _line_pitch(page, selector)
        assert height > 0 and abs(step - height) < 1.0, (selector, step, height)
    text = page.locator("#console-lines").inner_text()
    assert "\n\n" not in text and len(text.splitlines()) == 200
    diff = page.locator("#code pre.diff").inner_text()
    assert "\n\n" not in diff and "-lr = 0.01\n+lr = 0.1" in diff
    page.fill("#console-q", "epoch")
    page.click("#console-form button[type=submit]")
    page.wait_for_function("() => document.getElementById('console-lines').dataset.query")
    step, height = _line_pitch(page, "#console-lines .ln")
    assert abs(step - height) < 1.0, (step, height)


def test_system_charts_plot_against_time(watched: Watched, seeded: Seeded) -> None:
    """System metrics are sampled on a clock: their x axis is time, not the sample index."""
    page = watched.page
    page.goto(f"/runs/{seeded.a}")
    _wait_charts(page)
    assert page.locator("#system .ctl-x").input_value() == "time"
    chart = page.locator("#system .chart[data-key='system/cpu_percent']")
    axis, xs = chart.evaluate(
        "e => [e.layout.xaxis.type, e.data.find(t => t.hoverinfo !== 'skip').x.slice(0, 2)]"
    )
    assert axis == "date"
    assert xs == [T0, T0 + 100]  # the samples' timestamps (ms), not steps 0 and 1
    # the training metrics keep steps, and the system x axis can still be switched
    assert page.locator("#metrics .ctl-x").input_value() == "step"
    page.select_option("#system .ctl-x", "step")
    page.wait_for_function(
        "() => document.querySelector(\"#system .chart\").layout.xaxis.type === 'linear'"
    )


def test_compare_many_runs(watched: Watched, seeded: Seeded) -> None:
    """Selecting every run of a page (100, past the old limit of 20) compares them all."""
    page = watched.page
    page.goto("/p/bulk")
    page.check("#select-all")
    assert page.locator("#selected-count").inner_text() == "100 selected"
    page.click("#compare-btn")
    page.wait_for_url(re.compile(r"/compare\?"))
    assert page.locator("h1").inner_text() == "Compare 100 runs"
    assert page.locator("#compared-runs tbody tr").count() == 100
    _wait_charts(page)
    names = page.locator(".chart[data-key='acc']").evaluate(
        "e => e.data.filter(t => t.hoverinfo !== 'skip').length"
    )
    assert names == 100


def test_compare_past_the_limit_says_so_in_the_table(watched: Watched, seeded: Seeded) -> None:
    """More runs than a compare takes: the button is disabled with the limit named."""
    page = watched.page
    page.goto("/p/bulk")
    limit = int(page.locator("#compare-btn").get_attribute("data-max") or 0)
    assert limit >= 100
    page.evaluate(
        "n => { const t = document.querySelector('#runs tbody');"
        " const row = t.querySelector('tr[data-run]');"
        " for (let i = 0; i < n; i++) { const c = row.cloneNode(true);"
        " c.querySelector('input.pick').value = 'x' + i; t.appendChild(c); } }",
        limit,
    )
    page.check("#select-all")
    assert page.locator("#compare-btn").is_disabled()
    assert f"at most {limit}" in page.locator("#selected-count").inner_text()


def _failed_sdk_run(store: Path) -> str:
    """A run whose ``with mltrail.init(...)`` block raised, made by the real SDK."""
    script = (
        "import mltrail, sys\n"
        "try:\n"
        "    with mltrail.init(project='failing', name='boom', store=sys.argv[1],"
        " capture=False) as run:\n"
        "        print(run.run_id, flush=True)\n"
        "        run.log({'x': 1.0})\n"
        "        1 / 0\n"
        "except ZeroDivisionError:\n"
        "    pass\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(MLTRAIL_ALLOW_DIRTY="1", MLTRAIL_CAPTURE="0")
    done = subprocess.run(
        [sys.executable, "-c", script, str(store)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout.split()[0]


def test_a_failed_run_shows_its_error(watched: Watched, seeded: Seeded) -> None:
    """The SDK's recorded error: at the top of the run page, on hover in the runs table."""
    run_id = _failed_sdk_run(seeded.root / "store")
    page = watched.page
    page.goto(f"/runs/{run_id}")
    error = page.locator("#run-error")
    assert error.is_visible()
    assert "ZeroDivisionError: division by zero" in error.inner_text()
    top = error.bounding_box()
    overview = page.locator("#overview").bounding_box()
    assert top is not None and overview is not None and top["y"] < overview["y"]
    assert top["y"] < 200  # at the top, without scrolling
    page.click("#run-error summary")
    assert "Traceback (most recent call last)" in page.locator("#run-error pre").inner_text()

    page.goto("/p/failing")
    badge = page.locator(f"tr[data-run='{run_id}'] .badge")
    assert badge.inner_text() == "failed"
    badge.hover()
    tip = badge.evaluate("e => e.closest('[title]') && e.closest('[title]').title")
    assert tip is not None and tip.startswith("ZeroDivisionError: division by zero")
