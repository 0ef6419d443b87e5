"""Helpers of the UI tests: a live uvicorn server, a watched page, screenshots."""

from __future__ import annotations

import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI
    from playwright.sync_api import Page


class LiveServer:
    """uvicorn serving ``app`` on an ephemeral 127.0.0.1 port in a background thread."""

    def __init__(self, app: FastAPI) -> None:
        import uvicorn

        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="ui-test-server", daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        return self

    @property
    def url(self) -> str:
        sock = self.server.servers[0].sockets[0]
        return f"http://127.0.0.1:{sock.getsockname()[1]}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


def make_app(store_dir: Path, *, auth: bool = False) -> FastAPI:
    """The real app (``create_app``) over the store in ``store_dir``."""
    from mltrail.server.app import ServerConfig, create_app

    store, artifacts = str(store_dir / "store"), str(store_dir / "artifacts")
    return create_app(ServerConfig(store=store, artifacts=artifacts, auth=auth))


@dataclass
class Watched:
    """A page with what its console and dialogs said."""

    page: Page
    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def csp_violations(self) -> list[str]:
        return [m for m in self.console if "Content Security Policy" in m or "CSP" in m]


def screenshot(page: Page, shots: Path, name: str) -> Path:
    """Save a full-page screenshot; copy it where ``MLTRAIL_UI_SCREENSHOTS`` says, if set."""
    path = shots / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    target = os.environ.get("MLTRAIL_UI_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, Path(target) / path.name)
    return path
