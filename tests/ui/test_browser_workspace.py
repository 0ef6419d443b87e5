"""The project workspace in a real browser: panels over the runs table, state in the URL,
saved views, the run palette and legends, parallel coordinates.

One seeded server and one Chromium per module (``conftest``); every page is watched for CSP
violations, script errors and dialogs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import httpx
from uihelp import LiveServer, Watched, screenshot
from uiseed import Seeded

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page


def _ready(page: Page) -> None:
    page.wait_for_function(
        "() => { const w = document.getElementById('workspace');"
        " if (!w || w.dataset.ready !== '1') return false;"
        " return [...document.querySelectorAll('.ws-panel .chart')]"
        ".every(e => ['drawn', 'empty', 'error'].includes(e.dataset.state)); }",
        timeout=30_000,
    )


def _panels(page: Page) -> list[dict[str, Any]]:
    """Each panel's title, state and the run ids of its traces (from plotly's own data)."""
    out: list[dict[str, Any]] = page.evaluate(
        "() => [...document.querySelectorAll('.ws-panel')].map(f => {"
        " const c = f.querySelector('.chart');"
        " return {title: f.querySelector('.ws-title').textContent, state: c.dataset.state,"
        "  kind: f.dataset.kind, runs: (c.data || []).map(t => t.meta),"
        "  traces: (c.data || []).length,"
        "  colors: (c.data || []).map(t => t.line && t.line.color),"
        "  legend: !!(c._fullLayout && c._fullLayout.showlegend),"
        "  ytype: c._fullLayout ? c._fullLayout.yaxis && c._fullLayout.yaxis.type : null,"
        "  xtype: c._fullLayout ? c._fullLayout.xaxis && c._fullLayout.xaxis.type : null}; })"
    )
    return out


def _state(page: Page) -> dict[str, Any]:
    m = re.search(r"#ws=(.*)$", page.url)
    assert m, page.url
    state: dict[str, Any] = json.loads(unquote(m.group(1)))
    return state


def _wait_redraw(page: Page) -> None:
    page.wait_for_timeout(50)
    _ready(page)


def test_workspace_overlays_visible_runs_and_hides_everywhere(
    watched: Watched, seeded: Seeded, server: LiveServer, shots: Path
) -> None:
    """Default panels (user metrics) overlay every run of the table; the eye toggle hides a
    run in every chart; the link restores the same state in a fresh page."""
    page = watched.page
    page.goto("/p/vision")
    _ready(page)
    panels = _panels(page)
    assert [p["title"] for p in panels] == ["acc", "loss"]  # system/* not by default
    everyone = {seeded.a, seeded.b, seeded.c, seeded.repro}
    for p in panels:
        assert p["state"] == "drawn" and set(p["runs"]) == everyone and p["legend"]
    # series came downsampled from the panel route, one request per key (4 runs a chunk)
    series = [u for u in watched.requests if "/api/v1/ui/projects/vision/series?" in u]
    assert len(series) == 2 and all("points=" in u for u in series)
    per_run = re.compile(r"/api/v1/runs/[0-9a-f]+/(metrics|series)")
    assert not any(per_run.search(u) for u in watched.requests)
    screenshot(page, shots, "workspace")

    page.click(f"tr[data-run='{seeded.b}'] button.eye")
    _wait_redraw(page)
    for p in _panels(page):
        assert set(p["runs"]) == everyone - {seeded.b}
    assert _state(page)["hidden"] == [seeded.b]
    assert page.locator(f"tr[data-run='{seeded.b}']").get_attribute("class") == "run-hidden"
    assert "3 of 4 runs" in page.locator("#ws-count").inner_text()

    # the same link in a fresh page shows the same thing
    other = page.context.new_page()
    other.goto(page.url)
    _ready(other)
    assert [set(p["runs"]) for p in _panels(other)] == [everyone - {seeded.b}] * 2
    other.close()

    # clicking a legend entry hides the run everywhere too; the eye shows it again
    legend = page.locator(".ws-panel").first.locator("g.traces", has_text="vit-c")
    legend.locator(".legendtoggle").click()
    _wait_redraw(page)
    assert all(set(p["runs"]) == everyone - {seeded.b, seeded.c} for p in _panels(page))
    page.click(f"tr[data-run='{seeded.b}'] button.eye")
    page.click(f"tr[data-run='{seeded.c}'] button.eye")
    _wait_redraw(page)
    assert all(set(p["runs"]) == everyone for p in _panels(page))
    assert "#" not in page.url  # the default workspace again: a plain link


def test_panels_added_configured_removed_and_linked(watched: Watched, seeded: Seeded) -> None:
    """A panel is added, set to a regex of metrics, relative time, smoothing and log scale,
    then another removed; the URL carries it all, and the table's links keep it."""
    page = watched.page
    page.goto("/p/vision")
    _ready(page)
    page.click("#ws-add-line")
    _ready(page)
    new = page.locator(".ws-panel").nth(2)
    assert new.locator(".ws-config").is_visible()
    new.locator(".cfg-regex").fill("^(acc|loss)$")
    new.locator(".cfg-regex").press("Tab")  # change event
    _wait_redraw(page)
    new.locator(".cfg-x").select_option("rel")
    _wait_redraw(page)
    new.locator(".cfg-log").check()
    _wait_redraw(page)
    new.locator(".cfg-smooth").fill("0.6")
    _wait_redraw(page)
    p = _panels(page)[2]
    assert p["title"] == "/^(acc|loss)$/ \u00b7 relative time (s)"
    assert p["traces"] == 8 and p["ytype"] == "log" and p["xtype"] == "linear"
    # one colour per run: a run's two keys share it, and every run has its own
    colors = dict(zip(p["runs"], p["colors"], strict=True))
    assert len(set(colors.values())) == 4
    # relative time starts at 0 for every run
    xs0 = page.evaluate(
        "() => document.querySelectorAll('.ws-panel .chart')[2].data.map(t => t.x[0])"
    )
    assert xs0 == [0] * 8

    page.locator(".ws-panel").first.locator(".ws-remove").click()
    assert page.locator(".ws-panel").count() == 2
    state = _state(page)
    assert [q.get("re") or q["m"] for q in state["panels"]] == ["loss", "^(acc|loss)$"]
    assert state["panels"][1]["x"] == "rel" and state["panels"][1]["log"] is True
    assert state["panels"][1]["s"] == 0.6

    # the table's links and forms (server round trips) carry the workspace along
    sort_link = page.locator("th[data-col='params.lr'] a").get_attribute("href") or ""
    assert sort_link.startswith("?order_by=params.lr")
    assert sort_link.endswith(page.url[page.url.index("#") :])
    page.fill("#filter", "params.lr < 0.05")
    page.press("#filter", "Enter")
    page.wait_for_url(re.compile(r"filter="))
    _ready(page)
    panels = _panels(page)
    assert [q["title"] for q in panels] == ["loss", "/^(acc|loss)$/ \u00b7 relative time (s)"]
    assert set(panels[0]["runs"]) == {seeded.a, seeded.c, seeded.repro}


def test_saved_views_round_trip(watched: Watched, seeded: Seeded, server: LiveServer) -> None:
    """A layout saved under a name (server-side) reopens with its table query and panels."""
    page = watched.page
    page.goto("/p/vision?filter=tags.model+%3D+%27resnet%27")
    _ready(page)
    page.click(f"tr[data-run='{seeded.a}'] button.eye")
    _wait_redraw(page)
    page.locator(".ws-panel").nth(1).locator(".ws-remove").click()
    page.fill("#ws-view-name", "resnets")
    page.click("#ws-save")
    page.wait_for_function("() => document.getElementById('workspace').dataset.views === '1'")
    assert "saved" in page.locator("#ws-view-note").inner_text()
    stored = httpx.get(f"{server.url}/api/v1/ui/projects/vision/views/resnets").json()
    assert stored["spec"]["ws"]["hidden"] == [seeded.a]
    assert "resnet" in stored["spec"]["query"]

    # a fresh workspace of the whole project (no reload: the fragment changes)
    page.evaluate("() => { history.replaceState(null, '', location.pathname + '#x'); }")
    page.evaluate("() => { location.hash = ''; }")
    _ready(page)
    page.wait_for_function("() => document.querySelectorAll('.ws-panel').length === 2")
    page.select_option("#ws-views", "resnets")
    page.wait_for_url(re.compile(r"filter=.*#ws="))
    _ready(page)
    panels = _panels(page)
    assert [p["title"] for p in panels] == ["acc"]
    assert set(panels[0]["runs"]) == {seeded.b, seeded.repro}  # resnets, a hidden

    page.select_option("#ws-views", "resnets")
    page.click("#ws-delete")
    page.wait_for_function("() => document.getElementById('workspace').dataset.views === '0'")
    assert httpx.get(f"{server.url}/api/v1/ui/projects/vision/views/resnets").status_code == 404


def test_palette_legend_and_parallel_coordinates_past_ten_runs(
    watched: Watched, seeded: Seeded, shots: Path
) -> None:
    """100 runs get 100 distinct colours (swatch and trace alike) and a legend; a parallel
    coordinates panel maps the params that vary to the chosen metric."""
    page = watched.page
    state = {"panels": [{"t": "line", "m": "acc"}, {"t": "pc", "m": "acc"}], "hidden": []}
    page.goto("/p/bulk#ws=" + json.dumps(state))
    _ready(page)
    line, pc = _panels(page)
    assert line["title"] == "acc"  # a link's partial spec gets the defaults
    rows = page.locator("#runs tbody tr[data-run]")
    shown = rows.evaluate_all("rs => rs.map(r => r.dataset.run)")
    # past 30 lines the table's swatches are the legend (hover names each line)
    assert len(shown) == 100 and line["runs"] == shown and not line["legend"]
    assert len(set(line["colors"])) == 100
    assert page.locator(".ws-panel .no-webgl").count() == 0
    swatches = page.locator("#runs tbody tr[data-run] button.eye .swatch").evaluate_all(
        "ss => ss.map(s => getComputedStyle(s).backgroundColor)"
    )
    assert len(set(swatches)) == 100
    # the same colour for a run in the table and in the chart
    first = page.evaluate(
        "() => { const s = document.querySelector('#runs tbody button.eye .swatch');"
        " const c = document.createElement('canvas').getContext('2d');"
        " c.fillStyle = document.querySelector('.ws-panel .chart').data[0].line.color;"
        " return [getComputedStyle(s).backgroundColor, c.fillStyle]; }"
    )
    assert first[1] == "#2563eb" and first[0] == "rgb(37, 99, 235)"

    assert pc["kind"] == "pc" and pc["state"] == "drawn"
    chart = page.locator(".ws-panel[data-kind=pc] .chart")
    assert json.loads(chart.get_attribute("data-dims") or "") == ["lr", "seed", "acc"]
    assert json.loads(chart.get_attribute("data-runs") or "") == shown
    lines = chart.locator("svg.parcoords polyline")
    assert lines.count() == 100
    # each line crosses the three axes; its title names the run and its metric value
    points = lines.evaluate_all("ls => ls.map(l => l.getAttribute('points'))")
    assert all(len(p.split()) == 3 for p in points)
    assert lines.first.locator("title").text_content().startswith("name-")
    labels = chart.locator(".pc-label").all_text_contents()
    assert labels == ["lr", "seed", "acc"]
    # the best and the worst run are the two ends of the colour scale
    strokes = set(lines.evaluate_all("ls => ls.map(l => l.getAttribute('stroke'))"))
    assert {"rgb(68,1,84)", "rgb(253,231,37)"} <= strokes
    screenshot(page, shots, "workspace-bulk")


def test_compare_has_a_legend_and_distinct_colours_past_ten(
    watched: Watched, seeded: Seeded
) -> None:
    """Compare of 12 runs: every chart has a legend, 12 distinct colours, swatches alike."""
    page = watched.page
    ids = seeded.bulk[:12]
    page.goto("/compare?" + "&".join(f"runs={i}" for i in ids))
    page.wait_for_function(
        "() => { const c = document.querySelectorAll('.chart');"
        " return c.length > 0 && [...c].every(e => e.dataset.state === 'drawn'); }",
        timeout=30_000,
    )
    chart = page.evaluate(
        "() => { const c = document.querySelector('.chart');"
        " const lines = c.data.filter(t => t.meta);"
        " return {legend: c._fullLayout.showlegend, colors: lines.map(t => t.line.color),"
        " runs: lines.map(t => t.meta)}; }"
    )
    assert chart["legend"] is True and chart["runs"] == ids
    assert len(set(chart["colors"])) == 12
    swatches = page.locator("#compared-runs .swatch").evaluate_all(
        "ss => ss.map(s => getComputedStyle(s).backgroundColor)"
    )
    assert len(set(swatches)) == 12


def test_views_endpoint_limits(server: LiveServer) -> None:
    """Bad names and oversized documents are refused with the field named; a missing
    project answers 404."""
    base = f"{server.url}/api/v1/ui/projects"
    r = httpx.put(f"{base}/vision/views/%20", json={"spec": {}})
    assert r.status_code == 422 and r.json()["error"]["message"].startswith("name:")
    r = httpx.put(f"{base}/vision/views/big", json={"spec": {"x": "y" * 70_000}})
    assert r.status_code == 422 and r.json()["error"]["message"].startswith("spec:")
    assert httpx.get(f"{base}/nowhere/views").status_code == 404
    r = httpx.get(f"{base}/vision/series", params={"key": "loss", "runs": ",".join(["x"] * 201)})
    assert r.status_code == 200  # duplicates count once
    many = ",".join(f"r{i}" for i in range(201))
    r = httpx.get(f"{base}/vision/series", params={"key": "loss", "runs": many})
    assert r.status_code == 422 and "runs:" in r.json()["error"]["message"]


def test_dark_mode_follows_the_os_and_the_toggle_and_shortcuts(
    browser: Browser, server: LiveServer, seeded: Seeded, shots: Path
) -> None:
    """A dark OS preference gives the dark theme (charts included); the toggle overrides it
    and is remembered; "/" focuses the filter, j/k move over the rows, x selects, "?" shows
    the help, Enter opens the run."""
    context = browser.new_context(
        base_url=server.url, viewport={"width": 1400, "height": 900}, color_scheme="dark"
    )
    errors: list[str] = []
    context.on("weberror", lambda e: errors.append(str(e.error)))
    page = context.new_page()
    page.on("console", lambda m: errors.append(m.text) if "Content Security" in m.text else None)
    page.set_default_timeout(30_000)
    page.goto("/p/vision")
    _ready(page)
    bg = "() => getComputedStyle(document.body).backgroundColor"
    assert page.evaluate("() => document.documentElement.dataset.themeEffective") == "dark"
    assert page.evaluate(bg) == "rgb(15, 20, 32)"
    paper = "() => document.querySelector('.ws-panel .chart')._fullLayout.paper_bgcolor"
    assert page.evaluate(paper) == "rgba(0,0,0,0)"
    font = "() => document.querySelector('.ws-panel .chart')._fullLayout.font.color"
    assert page.evaluate(font) == "#e5e7eb"
    screenshot(page, shots, "workspace-dark")

    page.click("#theme-toggle")  # auto (dark here) -> light
    assert page.evaluate(bg) == "rgb(255, 255, 255)"
    page.wait_for_function(
        "() => document.querySelector('.ws-panel .chart')._fullLayout.font.color === '#1d2330'"
    )
    page.reload()
    _ready(page)
    assert page.evaluate(bg) == "rgb(255, 255, 255)"  # remembered
    assert page.locator("#theme-toggle").inner_text() == "Light"

    page.keyboard.press("/")
    assert page.evaluate("() => document.activeElement.id") == "filter"
    page.keyboard.press("Escape")
    ids = page.locator("#runs tbody tr[data-run]").evaluate_all("rs => rs.map(r => r.dataset.run)")
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("k")
    page.keyboard.press("j")
    assert page.locator("tr.kb-current").get_attribute("data-run") == ids[1]
    page.keyboard.press("x")
    assert page.locator("#selected-count").inner_text() == "1 selected"
    page.keyboard.press("?")
    assert page.locator("#shortcuts").is_visible()
    page.keyboard.press("?")
    assert page.locator("#shortcuts").is_hidden()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(f"/runs/{ids[1]}$"))
    context.close()
    assert errors == []
