"""Fixtures of the UI tests: a seeded SQLite store served by a real uvicorn on 127.0.0.1.

One server (``mltrail ui`` mode: no tokens) and one browser per module keep the browser
tests fast; each test gets a fresh page whose console is watched for CSP violations and
script errors, and whose dialogs are recorded (a ``<script>`` in user text must never run).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from uihelp import LiveServer, Watched, make_app
from uiseed import Seeded, seed_store

if TYPE_CHECKING:
    from playwright.sync_api import Browser

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    """A store with projects ``vision`` (4 runs, full state) and ``bulk`` (130 runs)."""
    root = tmp_path_factory.mktemp("ui-store")
    return seed_store(root)


@pytest.fixture(scope="module")
def server(seeded: Seeded) -> Iterator[LiveServer]:
    """The app in ``mltrail ui`` mode (no tokens) on a live port."""
    with LiveServer(make_app(seeded.root)) as live:
        yield live


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Debian Chromium per module."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def watched(browser: Browser, server: LiveServer) -> Iterator[Watched]:
    """A fresh page on the live server; fails the test on CSP violations or script errors."""
    context = browser.new_context(base_url=server.url, viewport={"width": 1400, "height": 900})
    page = context.new_page()
    w = Watched(page)

    def on_console(msg: Any) -> None:
        if msg.type in ("error", "warning"):
            w.console.append(f"{msg.type}: {msg.text}")

    def on_dialog(dialog: Any) -> None:
        w.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("console", on_console)
    page.on("pageerror", lambda exc: w.errors.append(str(exc)))
    page.on("dialog", on_dialog)
    page.on("request", lambda req: w.requests.append(req.url))
    page.set_default_timeout(10_000)
    yield w
    context.close()
    assert w.csp_violations() == [], w.console
    assert w.errors == [], w.errors
    assert w.dialogs == [], w.dialogs


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go (``MLTRAIL_UI_SCREENSHOTS`` names a folder to copy them to)."""
    return tmp_path_factory.mktemp("screenshots")
