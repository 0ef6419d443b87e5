"""Fixtures of the provenance tests: a local OpenLineage collector, a git repository with a
tracked table, signing keys."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest


class Collector:
    """An HTTP server on 127.0.0.1 that records the JSON body of every POST."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.headers: list[dict[str, str]] = []
        self._cond = threading.Condition()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with collector._cond:
                    collector.events.append(json.loads(body))
                    collector.paths.append(self.path)
                    collector.headers.append(dict(self.headers))
                    collector._cond.notify_all()
                self.send_response(201)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def wait_for(self, n: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        """The first ``n`` events, once they have arrived."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.events) < n:
                left = deadline - time.monotonic()
                assert left > 0, f"{len(self.events)} of {n} events arrived: {self.events}"
                self._cond.wait(left)
            return list(self.events)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def collector() -> Iterator[Collector]:
    c = Collector()
    yield c
    c.close()


def git(repo: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    )
    return out.stdout.strip()


@pytest.fixture
def code_repo(tmp_path: Path, capture_isolation: None) -> Path:
    """A committed git repository with ``train.py`` and a tracked table ``data/train.csv``."""
    from mltrail.data.ops import add
    from mltrail.data.repo import DataRepo

    repo = tmp_path / "proj"
    (repo / "data").mkdir(parents=True)
    (repo / "train.py").write_text("print('training')\n")
    (repo / "data" / "train.csv").write_text("age,income,label\n31,1000,0\n45,2000,1\n")
    git(repo, "init", "-q")
    git(repo, "config", "user.email", "t@example.com")
    git(repo, "config", "user.name", "t")
    add(DataRepo.discover(repo), [repo / "data" / "train.csv"], progress=False)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "init")
    git(repo, "remote", "add", "origin", "https://git.example.com/team/proj.git")
    return repo


def invocation(repo: Path) -> dict[str, Any]:
    """What ``python train.py --epochs 2`` run from ``repo`` records."""
    return {
        "argv": [sys.executable, str(repo / "train.py"), "--epochs", "2"],
        "cwd": str(repo),
        "executable": sys.executable,
        "wrapped": False,
    }


@pytest.fixture
def new_run() -> Any:
    """``new_run(store_uri, repo, **init_options)``: a live run of ``train.py`` in ``repo``
    (project ``fraud``), started through the SDK with explicit options."""
    from mltrail.sdk.init import resolve_options, start_run

    def start(store_uri: str, repo: Path, **kwargs: Any) -> Any:
        opts = resolve_options(
            project="fraud",
            store=store_uri,
            entry=repo,
            invocation=invocation(repo),
            attach=False,
            system_metrics_s=0,
            console=False,
            **kwargs,
        )
        return start_run(opts)

    return start


@pytest.fixture(autouse=True)
def _close_shared_stores() -> Iterator[None]:
    """Events still queued are sent, then the stores this process shares are closed (a
    PostgreSQL connection left to the garbage collector warns)."""
    yield
    from mltrail.lineage_export import live
    from mltrail.store.registry import forget_open_stores

    finisher = sys.modules.get("mltrail.events.finisher")
    if finisher is not None:
        finisher.wait(timeout=60)
    live.flush(30)
    forget_open_stores()
