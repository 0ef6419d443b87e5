"""Benchmark the project workspace in Chromium (Playwright) over a live ``mltrail ui`` app.

A project of ``--runs`` runs (default 1,000), each with 6 user metrics of ``--steps`` points
(and 2 params), written with ``apply_batch``. The workspace opens with one line panel per
user metric (6 panels), every run of the table's first page (100 rows) overlaid in each:

- ``interactive_ms``: from navigation start until every panel is drawn by plotly.js (hover,
  zoom, legend), in a fresh browser context (empty cache: plotly.js is downloaded and
  compiled), median of ``--repeat``; ``warm_interactive_ms``: the same page reloaded in a
  warm context (plotly.js from the HTTP cache);
- ``panels_without_webgl``: panels showing plotly's "no WebGL" notice (must be 0: the
  lines are SVG);
- ``series_requests``: requests to the panel series route on load (one per panel key and
  chunk of 100 runs), ``series_ms``: the slowest of them (server time under the load);
- ``all_runs_ms``: every run of the project shown (the table's pages loaded), from the first
  "load more" until the 6 panels are redrawn with all of them.

Prints JSON (with the 1-minute load average: the machine is shared)::

    .venv/bin/python bench/bench_ui_workspace.py [--runs 1000] [--steps 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from mltrail.entities import RunStatus
from mltrail.store.batch import Batch, MetricSeries, RunCreate, StatusChange
from mltrail.store.registry import open_store

T0 = 1_700_000_000_000
CHROMIUM = "/usr/bin/chromium"
METRICS = ["loss", "acc", "val_loss", "val_acc", "lr_scale", "grad_norm"]
READY = (
    "() => { const w = document.getElementById('workspace');"
    " return w && w.dataset.ready === '1' && document.body.dataset.wsInteractiveMs; }"
)


def seed(root: Path, n_runs: int, steps: int) -> None:
    """``n_runs`` finished runs in project ``ws``, 6 metrics of ``steps`` points each."""
    store = open_store(str(root / "store"), shared=False)
    rng = np.random.default_rng(0)
    try:
        for i in range(n_runs):
            created = T0 + i * 1000
            batch = Batch(
                uuid.uuid4().hex,
                create=RunCreate("ws", f"run-{i}", created, 5.0, "bench", "host", "train.py"),
            )
            batch.params = {"lr": float(rng.choice([0.1, 0.01, 0.001])), "seed": i}
            s = np.arange(steps, dtype=np.int64)
            for k, key in enumerate(METRICS):
                values = (1 + k) / (1.0 + s / 50.0) + rng.normal(0, 0.01, steps)
                batch.metrics[key] = MetricSeries(s, created + s * 100, values)
            batch.status = StatusChange(RunStatus.FINISHED, created + steps * 100)
            store.apply_batch(batch)
    finally:
        store.close()


def _load(page: Any, url: str) -> dict[str, Any]:
    page.goto(url)
    page.wait_for_function(READY, timeout=120_000)
    return dict(
        page.evaluate(
            "() => { const s = performance.getEntriesByType('resource')"
            ".filter(r => r.name.includes('/series?'));"
            " return {interactive_ms: Number(document.body.dataset.wsInteractiveMs),"
            " panels: document.querySelectorAll('.ws-panel .chart[data-state=drawn]').length,"
            " runs_per_panel: Number(document.querySelector('.ws-panel .chart').dataset.traces),"
            " no_webgl: document.querySelectorAll('.ws-panel .no-webgl').length,"
            " series_requests: s.length,"
            " series_ms: Math.round(Math.max(0, ...s.map(r => r.duration)))}; }"
        )
    )


def measure(url: str, repeat: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    cold: list[dict[str, Any]] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        viewport = {"width": 1600, "height": 1000}
        for _ in range(repeat):
            context = browser.new_context(viewport=viewport)
            cold.append(_load(context.new_page(), url + "/p/ws"))
            context.close()
        context = browser.new_context(viewport=viewport)
        page = context.new_page()
        _load(page, url + "/p/ws")
        warm = _load(page, url + "/p/ws")
        # every run of the project: load the table's pages, then wait for the redraw
        t0 = time.perf_counter()
        page.evaluate(
            "async () => { const more = document.getElementById('load-more');"
            " while (!more.hidden) { more.click();"
            "  await new Promise(r => setTimeout(r, 50)); } }"
        )
        page.wait_for_function(
            "() => [...document.querySelectorAll('.ws-panel .chart')].every(e =>"
            " e.dataset.state === 'drawn' && Number(e.dataset.traces) ==="
            " document.querySelectorAll('#runs tr[data-run]').length)",
            timeout=300_000,
        )
        all_runs_ms = (time.perf_counter() - t0) * 1000
        all_runs = page.evaluate("() => document.querySelectorAll('#runs tr[data-run]').length")
        context.close()
        browser.close()
    return {
        "interactive_ms": statistics.median(c["interactive_ms"] for c in cold),
        "interactive_ms_each": [c["interactive_ms"] for c in cold],
        "warm_interactive_ms": warm["interactive_ms"],
        "panels": cold[0]["panels"],
        "panels_without_webgl": max(c["no_webgl"] for c in cold),
        "runs_per_panel": cold[0]["runs_per_panel"],
        "series_requests": cold[0]["series_requests"],
        "series_ms": statistics.median(c["series_ms"] for c in cold),
        "all_runs": all_runs,
        "all_runs_ms": round(all_runs_ms),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "ui"))
    from uihelp import LiveServer, make_app

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        seed(root, args.runs, args.steps)
        seed_s = time.perf_counter() - t
        with LiveServer(make_app(root)) as live:
            result = measure(live.url, args.repeat)
    result.update(
        runs=args.runs,
        steps=args.steps,
        seed_s=round(seed_s, 1),
        target_interactive_ms=1500,
        load_avg_1m=os.getloadavg()[0],
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
