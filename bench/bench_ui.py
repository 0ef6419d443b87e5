"""Benchmark the web UI in Chromium (Playwright), over a live ``mltrail ui`` app on SQLite.

Two pages, each loaded ``--repeat`` times in a fresh browser context (empty HTTP cache, the
worst case) and once more as a reload of a warm page:

- the runs table of a project with 10,000 runs (10 params, 5 metric summaries, 3 tags each):
  first meaningful paint = the table's first rows visible (target <= 1 s); the browser's
  first-contentful-paint is reported too;
- the page of a run with 20 metric keys x 100,000 points each: every chart drawn (target
  <= 1 s), timed from navigation start: ``charts_visible_ms`` when every chart shows its
  data (the static SVG drawn before plotly.js has loaded, or the plotly chart), and
  ``interactive_ms`` when every plotly chart is drawn (zoom, hover).

The 10,000 runs are written as rows the SQL store writes (like ``bench_search.py``), the
metric run through ``apply_batch``. Prints JSON::

    .venv/bin/python bench/bench_ui.py [--runs 10000] [--keys 20] [--points 100000] [--repeat 5]
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
        if key.endswith("_ms") and value is not None:
            times = [c[key] for c in cold]
            out[key] = {
                "fresh_context_median": statistics.median(times),
                "fresh_context_max": max(times),
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
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store = open_store(str(root / "store"), shared=False)
        t = time.perf_counter()
        seed_runs(store, args.runs)
        run_id = seed_curves(store, args.keys, args.points)
        seed_s = time.perf_counter() - t
        store.close()
        with _Server(root) as url, sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
            )
            table = _measure(browser, f"{url}/p/table", _table, args.repeat)
            charts = _measure(browser, f"{url}/runs/{run_id}", _charts, args.repeat)
            browser.close()
    out = {
        "benchmark": "ui",
        "browser": "chromium (headless, Debian)",
        "seed_s": round(seed_s, 2),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "runs_table": {"runs": args.runs, "target_ms": 1000, **table},
        "run_page": {
            "keys": args.keys,
            "points_per_key": args.points,
            "target_ms": 1000,
            **charts,
        },
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
