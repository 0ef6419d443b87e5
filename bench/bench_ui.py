"""Benchmark the web UI in Chromium (Playwright), over a live ``mltrail ui`` app on SQLite.

Two pages, each loaded ``--repeat`` times in a fresh browser context (empty HTTP cache, the
worst case) and once more as a reload of a warm page:

- the runs table of a project with 10,000 runs (10 params, 5 metric summaries, 3 tags each):
  first meaningful paint = the table's first rows visible (target <= 1 s); the browser's
  first-contentful-paint is reported too;
- the page of a run with 20 metric keys x 100,000 points each: every chart drawn (target
  <= 1 s), timed from navigation start: ``charts_visible_ms`` when every chart shows its
  data (the static SVG drawn before plotly.js has loaded, or the plotly chart), and
  ``interactive_ms`` when every plotly chart is drawn (zoom, hover);
- the page of a wide run, 10,000 metric keys x 100 steps (``--wide-keys``, ``--wide-steps``):
  ``fcp_ms`` (first paint), ``interactive_ms`` (the key search box is wired and the first
  panels are drawn by plotly; target <= 1 s), ``panels_visible_ms`` (the search box is
  wired and the first panels show their data, as SVG previews before plotly.js is in),
  ``search_ms`` (typing ``train/k9999`` in the search box until its chart is drawn, timed
  from the keystroke), the charts drawn and series requests made on load. A page without
  the key search (before it existed) reports ``interactive_ms`` as when its first chart was
  drawn, or null past ``BENCH_UI_WIDE_TIMEOUT_MS`` (default 60000).

The 10,000 runs are written as rows the SQL store writes (like ``bench_search.py``), the
metric run through ``apply_batch``. Prints JSON::

    .venv/bin/python bench/bench_ui.py [--runs 10000] [--keys 20] [--points 100000] [--repeat 5]
        [--wide-keys 10000] [--wide-steps 100] [--only wide]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import threading
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
LRS = [0.1, 0.03, 0.01, 0.003, 0.001]
OPTS = ["adam", "sgd", "adamw", "rmsprop"]
METRICS = ["acc", "loss", "val_acc", "val_loss", "f1"]


def _create(project: str, name: str, created_ms: int) -> RunCreate:
    return RunCreate(project, name, created_ms, 5.0, "bench", "bench-host", "python train.py")


def _param_row(run_id: str, key: str, value: Any) -> dict[str, Any]:
    row = {"run_id": run_id, "key": key, "value": value, "vtype": "s", "value_num": None}
    if not isinstance(value, str):
        row["value"] = json.dumps(value)
        row["vtype"] = "i" if isinstance(value, int) else "f"
        row["value_num"] = float(value)
    return row


def seed_runs(store: Any, n_runs: int) -> None:
    """``n_runs`` finished runs in project ``table``, written as bulk rows."""
    import sqlalchemy as sa

    from mltrail.store.sql import schema

    first = uuid.uuid4().hex
    store.apply_batch(Batch(first, create=_create("table", "run-0", T0)))
    rnd = random.Random(0)
    engine = store._engine
    with engine.begin() as conn:
        pid = conn.execute(
            sa.select(schema.projects.c.project_id).where(schema.projects.c.name == "table")
        ).scalar_one()
        runs, params, summaries, tags = [], [], [], []
        for i in range(1, n_runs):
            run_id, created = uuid.uuid4().hex, T0 + i * 1000
            runs.append(
                {
                    "run_id": run_id,
                    "project_id": pid,
                    "name": f"run-{i}",
                    "status": "finished" if i % 17 else "crashed",
                    "created_ms": created,
                    "end_ms": created + 600_000,
                    "heartbeat_ms": created + 600_000,
                    "heartbeat_s": 5.0,
                    "user_name": "bench",
                    "host": "bench-host",
                    "command": "python train.py",
                    "config": "{}",
                }
            )
            values = {"lr": rnd.choice(LRS), "opt": rnd.choice(OPTS), "seed": i}
            values |= {f"p{k}": rnd.randint(0, 100) for k in range(7)}
            params += [_param_row(run_id, k, v) for k, v in values.items()]
            for key in METRICS:
                x = rnd.random()
                summaries.append(
                    {
                        "run_id": run_id,
                        "key": key,
                        "last_value": x,
                        "last_step": 100,
                        "last_ms": created,
                        "min_value": x / 2,
                        "max_value": x,
                        "count": 100,
                        "open_seq": 0,
                        "open_n": 100,
                    }
                )
            tags += [
                {"run_id": run_id, "key": k, "value": v}
                for k, v in (("team", f"t{i % 5}"), ("model", f"m{i % 3}"), ("stage", "dev"))
            ]
        for table, rows in (
            (schema.runs, runs),
            (schema.params, params),
            (schema.metric_summaries, summaries),
            (schema.tags, tags),
        ):
            conn.execute(sa.insert(table), rows)


def seed_curves(store: Any, keys: int, points: int) -> str:
    """One run in project ``curves`` with ``keys`` metric keys of ``points`` points each."""
    run_id = uuid.uuid4().hex
    rng = np.random.default_rng(0)
    steps = np.arange(points, dtype=np.int64)
    stamps = T0 + steps * 50
    store.apply_batch(Batch(run_id, create=_create("curves", "long-run", T0)))
    for k in range(keys):
        values = 1.0 / (1.0 + steps / 1000.0) + rng.normal(0, 0.05, points)
        cols = MetricSeries(steps, stamps, values.astype(np.float64))
        store.apply_batch(Batch(run_id, metrics={f"metric_{k:02d}": cols}))
    store.apply_batch(Batch(run_id, status=StatusChange(RunStatus.FINISHED, T0 + points * 50)))
    return run_id


def wide_key(i: int) -> str:
    """The ``i``-th key of the wide run: ``train/`` (odd i), ``val/`` (i % 4 == 0), ``grad/``."""
    prefix = "train" if i % 2 else ("val" if i % 4 == 0 else "grad")
    return f"{prefix}/k{i:04d}"


def seed_wide(store: Any, keys: int, steps: int) -> str:
    """One run in project ``wide`` with ``keys`` metric keys x ``steps`` steps, one batch."""
    run_id = uuid.uuid4().hex
    rng = np.random.default_rng(1)
    st = np.arange(steps, dtype=np.int64)
    stamps = T0 + st * 1000
    base = 1.0 / (1.0 + st / 10.0)
    metrics = {
        wide_key(i): MetricSeries(st, stamps, base * (1 + i % 7) + rng.normal(0, 0.01, steps))
        for i in range(keys)
    }
    store.apply_batch(Batch(run_id, create=_create("wide", "wide-run", T0), metrics=metrics))
    store.apply_batch(Batch(run_id, status=StatusChange(RunStatus.FINISHED, T0 + steps * 1000)))
    return run_id


class _Server:
    def __init__(self, root: Path) -> None:
        import uvicorn

        from mltrail.server.app import ServerConfig, create_app

        app = create_app(ServerConfig(str(root / "store"), str(root / "artifacts"), auth=False))
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join()


def _paint_ms(page: Any) -> float | None:
    fcp = page.evaluate(
        "() => (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime"
    )
    return None if fcp is None else round(float(fcp), 1)


def _table(page: Any, url: str) -> dict[str, Any]:
    page.goto(url, wait_until="commit")
    page.wait_for_selector("#runs tbody tr", state="visible")
    shown = page.evaluate(
        "() => new Promise(r => requestAnimationFrame(() => setTimeout(() =>"
        " r(performance.now()), 0)))"
    )
    rows = page.locator("#runs tbody tr").count()
    return {"rows_visible_ms": round(float(shown), 1), "fcp_ms": _paint_ms(page), "rows": rows}


def _charts(page: Any, url: str) -> dict[str, Any]:
    page.goto(url, wait_until="commit")
    page.wait_for_function(
        "() => document.body && document.body.dataset.charts === 'drawn'", timeout=60_000
    )
    drawn = float(page.evaluate("() => Number(document.body.dataset.chartsMs)"))
    visible = float(page.evaluate("() => Number(document.body.dataset.chartsVisibleMs)"))
    charts = page.locator(".chart[data-state='drawn'] .main-svg").count()
    points = page.evaluate(
        "() => [...document.querySelectorAll('.chart')]"
        ".reduce((n, e) => n + Number(e.dataset.points || 0), 0)"
    )
    return {
        "charts_visible_ms": round(visible, 1),
        "interactive_ms": round(drawn, 1),
        "charts": charts,
        "points_drawn": points,
    }


_FIRST_DRAWN = "() => document.querySelector(\".chart[data-state='drawn']\") !== null"
_SERIES_REQUESTS = (
    "() => performance.getEntriesByType('resource').filter(e => e.name.includes('/series?')).length"
)


def _wide_timeout_ms() -> int:
    return int(os.environ.get("BENCH_UI_WIDE_TIMEOUT_MS", "60000"))


def _wide(page: Any, url: str) -> dict[str, Any]:
    """First paint, interactive (search wired + first panels drawn) and a key search.

    ``url`` ends in ``#metrics`` (the page opens at its charts); the blank page first makes
    the warm reload a real navigation, not a jump to the fragment.
    """
    page.goto("about:blank")
    out: dict[str, Any] = {}
    try:
        page.goto(url, wait_until="commit", timeout=_wide_timeout_ms())
        page.wait_for_selector("#metrics", state="attached", timeout=_wide_timeout_ms())
        has_search = page.locator("#metric-search").count() > 0
        if has_search:
            page.wait_for_function(
                "() => document.body.dataset.firstPanelsMs", timeout=_wide_timeout_ms()
            )
            interactive = page.evaluate(
                "() => Math.max(Number(document.body.dataset.keysReadyMs),"
                " Number(document.body.dataset.firstPanelsMs))"
            )
        else:
            page.wait_for_function(_FIRST_DRAWN, timeout=_wide_timeout_ms(), polling=20)
            interactive = page.evaluate("() => performance.now()")
    except Exception:  # past the timeout: the page never became interactive
        return {"interactive_ms": None, "timed_out_after_ms": _wide_timeout_ms()}
    out["has_key_search"] = has_search
    out["interactive_ms"] = round(float(interactive), 1)
    if has_search:
        out["panels_visible_ms"] = round(
            float(
                page.evaluate(
                    "() => Math.max(Number(document.body.dataset.keysReadyMs),"
                    " Number(document.body.dataset.firstPanelsVisibleMs))"
                )
            ),
            1,
        )
    out["fcp_ms"] = _paint_ms(page)
    out["dom_content_loaded_ms"] = round(
        float(
            page.evaluate(
                "() => performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd"
            )
        ),
        1,
    )
    out["html_bytes"] = int(
        page.evaluate("() => performance.getEntriesByType('navigation')[0].transferSize")
    )
    out["charts_drawn_on_load"] = page.locator(".chart[data-state='drawn']").count()
    out["chart_panels_on_load"] = page.locator("#metrics .chart").count()
    out["series_requests_on_load"] = int(page.evaluate(_SERIES_REQUESTS))
    if has_search:
        t = time.perf_counter()
        page.fill("#metric-search", "train/k9999")
        page.wait_for_selector(
            "#metrics .chart[data-key='train/k9999'][data-state='drawn']",
            timeout=_wide_timeout_ms(),
        )
        out["search_ms"] = round((time.perf_counter() - t) * 1000, 1)
    return out


def _measure(browser: Any, url: str, fn: Any, repeat: int) -> dict[str, Any]:
    cold = []
    for _ in range(repeat):
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        cold.append(fn(context.new_page(), url))
        context.close()
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    fn(page, url)
    warm = fn(page, url)
    context.close()
    out: dict[str, Any] = {}
    for key, value in cold[0].items():
        times = [c[key] for c in cold if c.get(key) is not None]
        if key.endswith("_ms") and times:
            out[key] = {
                "fresh_context_median": statistics.median(times),
                "fresh_context_max": max(times),
                "fresh_context_runs": f"{len(times)} of {len(cold)}",
                "warm_reload": warm[key],
            }
        else:
            out[key] = value
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--keys", type=int, default=20)
    ap.add_argument("--points", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--wide-keys", type=int, default=10_000)
    ap.add_argument("--wide-steps", type=int, default=100)
    ap.add_argument("--only", choices=["table", "charts", "wide"], default=None)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store = open_store(str(root / "store"), shared=False)
        t = time.perf_counter()
        want = {args.only} if args.only else {"table", "charts", "wide"}
        if "table" in want:
            seed_runs(store, args.runs)
        run_id = seed_curves(store, args.keys, args.points) if "charts" in want else ""
        wide_id = seed_wide(store, args.wide_keys, args.wide_steps) if "wide" in want else ""
        seed_s = time.perf_counter() - t
        store.close()
        load_before = os.getloadavg()[0]
        results: dict[str, Any] = {}
        with _Server(root) as url, sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
            )
            if "table" in want:
                results["table"] = _measure(browser, f"{url}/p/table", _table, args.repeat)
            if "charts" in want:
                results["charts"] = _measure(browser, f"{url}/runs/{run_id}", _charts, args.repeat)
            if "wide" in want:
                results["wide"] = _measure(
                    browser, f"{url}/runs/{wide_id}#metrics", _wide, args.repeat
                )
            browser.close()
    out: dict[str, Any] = {
        "benchmark": "ui",
        "browser": "chromium (headless, Debian)",
        "seed_s": round(seed_s, 2),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "load_average_1min_at_start": round(load_before, 2),
    }
    if "table" in results:
        out["runs_table"] = {"runs": args.runs, "target_ms": 1000, **results["table"]}
    if "charts" in results:
        out["run_page"] = {
            "keys": args.keys,
            "points_per_key": args.points,
            "target_ms": 1000,
            **results["charts"],
        }
    if "wide" in results:
        out["wide_run_page"] = {
            "keys": args.wide_keys,
            "steps_per_key": args.wide_steps,
            "target_ms": 1000,
            **results["wide"],
        }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
