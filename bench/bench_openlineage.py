"""What live OpenLineage events cost a run: init() + log + finish() with the events off and
on (a local HTTP collector), and how long the events take to arrive after the runs end.

Usage: ``python bench/bench_openlineage.py [--runs N]``; prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def _collector() -> tuple[ThreadingHTTPServer, list[bytes]]:
    got: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            got.append(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            self.send_response(201)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, got


def _runs(store: str, n: int) -> list[float]:
    import mltrail

    times = []
    for i in range(n):
        t = time.perf_counter()
        run = mltrail.init(
            project="bench", store=store, capture=False, system_metrics_s=0, console=False
        )
        run.log({"loss": 1.0 / (i + 1)}, step=0)
        run.finish()
        times.append(time.perf_counter() - t)
    return times


def _settle(timeout: float) -> None:
    """Runs finishing in the background, then the events they queued."""
    from mltrail.lineage_export import live

    finisher = sys.modules.get("mltrail.events.finisher")
    if finisher is not None:
        finisher.wait(timeout=timeout)
    live.flush(timeout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    out: dict[str, object] = {"runs": args.runs, "load_1min": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as tmp:
        store = str(Path(tmp) / "store")
        os.environ.pop("MLTRAIL_OPENLINEAGE_URL", None)
        _runs(store, 3)  # warm: imports, the store's schema
        off = _runs(store, args.runs)
        server, got = _collector()
        os.environ["MLTRAIL_OPENLINEAGE_URL"] = f"http://127.0.0.1:{server.server_address[1]}"
        _runs(store, 2)
        _settle(60)
        before = len(got)
        on = _runs(store, args.runs)
        t = time.perf_counter()
        _settle(120)
        settle = time.perf_counter() - t
        server.shutdown()
    out.update(
        run_ms_off_median=round(statistics.median(off) * 1000, 2),
        run_ms_on_median=round(statistics.median(on) * 1000, 2),
        events_sent=len(got) - before,
        events_expected=2 * args.runs,
        settle_after_last_run_s=round(settle, 3),
    )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
