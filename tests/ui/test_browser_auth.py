"""Team login in a real browser: Chromium against ``mltrail server`` (tokens on).

The form is posted by Chromium itself, so the request carries the ``Origin`` (and
``Sec-Fetch-Site``) the browser derives from the page and the server's ``Referrer-Policy``:
an HTTP client posting without an ``Origin`` would not see what a user sees.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from uihelp import LiveServer, make_app, screenshot
from uiseed import Seeded

if TYPE_CHECKING:
    from pathlib import Path

    from playwright.sync_api import Browser, BrowserContext, Page

EVIL = "http://evil.test"


class _Answers:
    """ASGI wrapper noting each request's method, path, ``Origin`` and answer status: what
    the server decided, even where the browser hides the answer (a refused frame)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: list[tuple[str, str, str | None, int]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", ()))
        origin = headers.get(b"origin")

        async def noting_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                self.seen.append(
                    (
                        scope["method"],
                        scope["path"],
                        origin.decode() if origin is not None else None,
                        message["status"],
                    )
                )
            await send(message)

        await self.app(scope, receive, noting_send)


@pytest.fixture(scope="module")
def answers(seeded: Seeded) -> _Answers:
    return _Answers(make_app(seeded.root, auth=True))


@pytest.fixture(scope="module")
def auth_server(answers: _Answers) -> Iterator[LiveServer]:
    """The app in ``mltrail server`` mode: every page needs a token."""
    with LiveServer(answers) as live:  # type: ignore[arg-type]
        yield live


def _token(server: LiveServer, scope: str, expires_ms: int | None = None) -> str:
    store: Any = server.server.config.app.app.state.store
    return str(store.tokens().create(scope, expires_ms=expires_ms)[1])


@pytest.fixture
def problems() -> list[str]:
    """CSP reports and script errors seen by the browser (the test ends with none)."""
    return []


@pytest.fixture
def context(
    browser: Browser, auth_server: LiveServer, problems: list[str]
) -> Iterator[BrowserContext]:
    """A fresh browser profile (no cookie); fails the test on script errors or CSP reports."""
    ctx = browser.new_context(base_url=auth_server.url, viewport={"width": 1280, "height": 800})
    ctx.set_default_timeout(10_000)
    ctx.on(
        "console",
        lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None,
    )
    ctx.on("weberror", lambda e: problems.append(str(e.error)))
    yield ctx
    ctx.close()
    assert problems == []


def _log_in(page: Page, token: str) -> None:
    page.fill("#token", token)
    with page.expect_navigation():
        page.click("form.login button[type=submit]")


def _cookie(ctx: BrowserContext) -> str | None:
    for c in ctx.cookies():
        if c["name"] == "mltrail_token":
            return c["value"]
    return None


def _styled(page: Page) -> bool:
    """The app's stylesheet applies (the top bar has its background and border)."""
    styled: bool = page.evaluate(
        "() => { const h = document.querySelector('header.top');"
        " const s = h && getComputedStyle(h);"
        " return !!s && s.borderBottomStyle === 'solid' && s.display === 'flex'; }"
    )
    return styled


def test_login_and_logout_with_a_write_token(
    context: BrowserContext, auth_server: LiveServer, shots: Path
) -> None:
    """A page without a token shows the styled login form; the token opens the page asked
    for; writes from the page pass the same-origin check; logging out forgets the cookie."""
    page = context.new_page()
    first = page.goto("/p/vision")
    assert first is not None and first.status == 401
    assert page.locator("form.login #token").count() == 1
    assert _styled(page)
    screenshot(page, shots, "login")

    _log_in(page, _token(auth_server, "write"))
    assert re.search(r"/p/vision$", page.url), page.url
    assert page.locator("h1").inner_text() == "vision"
    assert _cookie(context) is not None
    status = page.evaluate(
        "async () => (await fetch('/api/v1/runs', {method: 'POST',"
        " headers: {'Content-Type': 'application/json'},"
        " body: JSON.stringify({project: 'from-browser'})})).status"
    )
    assert status == 201

    with page.expect_navigation():
        page.click("form.logout button")
    assert page.url.endswith("/login")
    assert _cookie(context) is None
    again = page.goto("/p/vision")
    assert again is not None and again.status == 401
    assert page.locator("form.login #token").count() == 1


def test_read_only_token_can_log_in_and_out_but_not_write(
    context: BrowserContext, auth_server: LiveServer, seeded: Seeded
) -> None:
    """A read token logs in (a POST that needs only read), browses, is refused a write with
    ``permission_denied`` (not ``cross_origin``), and logs out."""
    page = context.new_page()
    page.goto("/login")
    assert _styled(page)
    _log_in(page, _token(auth_server, "read"))
    assert page.url.rstrip("/") == auth_server.url
    assert page.locator("#projects tr", has_text="vision").count() == 1
    page.goto(f"/runs/{seeded.a}")
    assert page.locator("h1").inner_text().startswith("resnet-a")
    refused = page.evaluate(
        "async () => { const r = await fetch('/api/v1/runs', {method: 'POST',"
        " headers: {'Content-Type': 'application/json'}, body: JSON.stringify({project: 'x'})});"
        " return [r.status, (await r.json()).error.code]; }"
    )
    assert refused == [403, "permission_denied"]
    with page.expect_navigation():
        page.click("form.logout button")
    assert _cookie(context) is None
    assert page.locator("form.login #token").count() == 1


def test_expired_token_is_refused_and_ends_the_session(
    context: BrowserContext, auth_server: LiveServer
) -> None:
    """A token that expires while logged in sends the next page to the login form; logging
    in again with it says the token is not valid and sets no cookie."""
    expires_ms = time.time_ns() // 10**6 + 6000  # time to log in on a busy machine
    token = _token(auth_server, "read", expires_ms=expires_ms)
    page = context.new_page()
    page.goto("/login")
    _log_in(page, token)
    assert page.locator("#projects").count() == 1
    # past expiry and the verifier's 0.5 s cache
    page.wait_for_timeout(max(0, expires_ms + 700 - time.time_ns() // 10**6))
    later = page.reload()
    assert later is not None and later.status == 401
    assert page.locator("form.login #token").count() == 1

    context.clear_cookies()
    page.goto("/login")
    _log_in(page, token)
    assert "not valid" in page.locator(".error").inner_text()
    assert _cookie(context) is None
    assert _styled(page)


def _evil_page(context: BrowserContext, body: str) -> Page:
    """A page on a public site elsewhere (served by the browser's router)."""
    context.route(
        f"{EVIL}/",
        lambda route: route.fulfill(status=200, content_type="text/html", body=body),
    )
    return context.new_page()


class _OtherLocalSite:
    """A real server on another loopback port serving one page: a local page of another
    origin (Chromium lets no public page's frame reach a loopback server at all)."""

    def __init__(self, body: str) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        data = body.encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> _OtherLocalSite:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_a_foreign_origin_cannot_post_a_login(
    context: BrowserContext, auth_server: LiveServer
) -> None:
    """Login CSRF: a form on another site posting a (valid) token is refused."""
    token = _token(auth_server, "write")
    form = (
        f'<form id="f" method="post" action="{auth_server.url}/login">'
        f'<input name="token" value="{token}"></form>'
        '<script>document.getElementById("f").submit()</script>'
    )
    page = _evil_page(context, form)
    with page.expect_response(lambda r: r.url.endswith("/login")) as info:
        page.goto(f"{EVIL}/")
    response = info.value
    assert response.request.header_value("origin") == EVIL
    assert response.status == 403 and response.json()["error"]["code"] == "cross_origin"
    assert _cookie(context) is None


def test_a_null_origin_is_not_trusted(
    context: BrowserContext, auth_server: LiveServer, answers: _Answers, problems: list[str]
) -> None:
    """A sandboxed frame (an opaque origin: Chromium sends ``Origin: null``) posting a valid
    token is refused with 403 (and the refusal, like every answer, may not be framed)."""
    token = _token(auth_server, "write")
    inner = (
        f"<form id='f' method='post' action='{auth_server.url}/login'>"
        f"<input name='token' value='{token}'></form>"
        "<script>document.getElementById('f').submit()</script>"
    )
    frame = f'<iframe sandbox="allow-forms allow-scripts" srcdoc="{inner}"></iframe>'
    answers.seen.clear()
    with _OtherLocalSite(frame) as other:
        page = context.new_page()
        page.goto(f"{other.url}/")
        deadline = time.monotonic() + 10
        while not answers.seen and time.monotonic() < deadline:
            page.wait_for_timeout(50)
    # a write token: 403 on /login can only be the cross-origin refusal
    assert answers.seen == [("POST", "/login", "null", 403)]
    assert _cookie(context) is None
    page.wait_for_timeout(200)
    framing = [p for p in problems if "frame-ancestors" in p]
    problems[:] = [p for p in problems if p not in framing]
