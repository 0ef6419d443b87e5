"""The UI's page handlers over HTTP (no browser): status codes, escaping, CSP, login, scope."""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator

import httpx
import pytest
from uihelp import LiveServer, make_app
from uiseed import SCRIPT, Seeded

from mltrail.server.ui import _plotly


@pytest.fixture(scope="module")
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers={"Accept": "text/html"}) as c:
        yield c


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/", 200),
        ("/p/vision", 200),
        ("/p/vision?filter=metrics.acc+>+0.5&order_by=metrics.acc+desc&cols=tags.model", 200),
        ("/p/no-such-project", 404),
        ("/p/vision?filter=params.lr+>>", 400),
        ("/p/vision?order_by=metrics.loss;+--", 400),
        ("/p/vision?cols=bogus", 422),
        ("/p/vision?group=metrics.acc", 422),
        ("/runs/0123456789abcdef0123456789abcdef", 404),
        ("/compare", 422),
        ("/compare?runs=" + ",".join(["x"] * 3), 404),
        ("/diff?a=only-one", 422),
        ("/login", 200),
        ("/ui/plotly-0.0.0.min.js", 404),
        ("/ui/static/ui.css", 200),
        ("/ui/static/../pages.py", 404),
    ],
)
def test_status_codes(client: httpx.Client, path: str, status: int) -> None:
    """Each page answers the documented status, as an HTML page for errors too."""
    r = client.get(path)
    assert r.status_code == status, r.text[:500]
    if path.startswith(("/p/", "/runs/", "/compare", "/diff")):
        assert r.headers["content-type"].startswith("text/html")


def test_compare_past_its_limit_names_the_limit(client: httpx.Client) -> None:
    """More runs than a compare page takes: a 422 page that names the limit (not a crash)."""
    from mltrail.server.ui.pages import MAX_COMPARE

    ids = [f"{i:032x}" for i in range(MAX_COMPARE + 1)]
    r = client.get("/compare", params={"runs": ",".join(ids)})
    assert r.status_code == 422
    assert f"pick 1 to {MAX_COMPARE} runs, got {MAX_COMPARE + 1}" in r.text


def test_filter_error_names_field_and_position(client: httpx.Client) -> None:
    """A bad order_by is reported against order_by, with its position."""
    r = client.get("/p/vision", params={"order_by": "metrics.loss; --"})
    assert 'data-field="order_by"' in r.text and "position 12" in r.text


def test_prefix_redirects_to_full_id(client: httpx.Client, seeded: Seeded) -> None:
    """A unique run id prefix redirects to the run's page."""
    r = client.get(f"/runs/{seeded.a[:10]}")
    assert r.status_code == 307 and r.headers["location"] == f"/runs/{seeded.a}"


def test_user_text_escaped_and_no_inline_code(client: httpx.Client, seeded: Seeded) -> None:
    """User text is escaped, invisible characters marked, and no page has inline code."""
    for path in (
        f"/runs/{seeded.a}",
        "/p/vision?cols=tags.note&cols=tags.rtl",
        f"/compare?runs={seeded.a},{seeded.b}",
        f"/diff?a={seeded.a}&b={seeded.b}",
    ):
        r = client.get(path)
        assert r.status_code == 200
        assert SCRIPT not in r.text
        assert re.search(r"<script(?![^>]*\bsrc=)", r.text) is None, path
        assert re.search(r"\sstyle=|<style|\son[a-z]+=", r.text) is None, path
        assert "script-src 'self'" in r.headers["content-security-policy"]
        assert "'unsafe-inline'" not in r.headers["content-security-policy"]
    page = client.get(f"/runs/{seeded.a}").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "\u202e" not in page and "U+202E" in page and "U+200B" in page


def test_plotly_served_from_the_installed_package(client: httpx.Client) -> None:
    """plotly.js comes byte for byte from the ``plotly`` package, cacheable, gzip if asked."""
    url = f"/ui/plotly-{_plotly.version()}.min.js"
    expected = _plotly.script_path().read_bytes()
    plain = client.get(url, headers={"Accept-Encoding": "identity"})
    assert plain.content == expected
    assert "immutable" in plain.headers["cache-control"]
    raw = client.build_request("GET", url, headers={"Accept-Encoding": "gzip"})
    zipped = client.send(raw, stream=True)
    try:
        assert zipped.headers["content-encoding"] == "gzip"
        assert gzip.decompress(b"".join(zipped.iter_raw())) == expected
    finally:
        zipped.close()
    css = client.get(f"/ui/plotly-{_plotly.version()}.css")
    assert css.status_code == 200 and ".js-plotly-plot .plotly .modebar" in css.text


def test_keys_json(client: httpx.Client) -> None:
    """The column chooser's keys, as JSON; a missing project is a JSON 404."""
    r = client.get("/api/v1/ui/projects/vision/keys", headers={"Accept": "application/json"})
    assert r.json() == {
        "params": ["batch_size", "lr", "model"],
        "metrics": ["acc", "loss", "system/cpu_percent"],
        "tags": ["model", "note", "reproduction-of", "rtl"],
    }
    missing = client.get("/api/v1/ui/projects/nope/keys")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


# -- mltrail server mode: tokens, login cookie, project scope ------------------------------


@pytest.fixture(scope="module")
def auth_server(seeded: Seeded) -> Iterator[LiveServer]:
    with LiveServer(make_app(seeded.root, auth=True)) as live:
        yield live


@pytest.fixture(scope="module")
def tokens(seeded: Seeded, auth_server: LiveServer) -> dict[str, str]:
    from mltrail.store.registry import open_store

    store = open_store(str(seeded.root / "store"), shared=False)
    try:
        tokens = store.tokens()  # type: ignore[attr-defined]
        return {
            "all": tokens.create("read")[1],
            "bulk": tokens.create("read", project="bulk")[1],
        }
    finally:
        store.close()


def test_login_sets_a_strict_httponly_cookie(
    auth_server: LiveServer, tokens: dict[str, str]
) -> None:
    """No token → the login form (401); POST /login → cookie and redirect; then pages work."""
    with httpx.Client(base_url=auth_server.url, headers={"Accept": "text/html"}) as c:
        denied = c.get("/p/vision")
        assert denied.status_code == 401 and 'action="/login"' in denied.text
        bad = c.post("/login", data={"token": "mlt_0000000000000000_" + "x" * 43})
        assert bad.status_code == 401 and "cookie" not in bad.headers.get("set-cookie", "")
        r = c.post("/login", data={"token": tokens["all"], "next": "//evil.example/x"})
        assert r.status_code == 303 and r.headers["location"] == "/"
        cookie = r.headers["set-cookie"].lower()
        assert "mltrail_token=" in cookie and "httponly" in cookie and "samesite=strict" in cookie
        assert c.get("/p/vision").status_code == 200
        out = c.post("/logout")
        assert out.status_code == 303 and 'mltrail_token=""' in out.headers["set-cookie"]


def test_project_scoped_token_sees_only_its_project(
    auth_server: LiveServer, tokens: dict[str, str], seeded: Seeded
) -> None:
    """Pages of another project answer 404, and the projects list leaves it out."""
    headers = {"Authorization": f"Bearer {tokens['bulk']}", "Accept": "text/html"}
    with httpx.Client(base_url=auth_server.url, headers=headers) as c:
        home = c.get("/")
        assert home.status_code == 200 and "/p/bulk" in home.text and "/p/vision" not in home.text
        assert c.get("/p/bulk").status_code == 200
        for path in (
            "/p/vision",
            f"/runs/{seeded.a}",
            f"/runs/{seeded.a[:10]}",
            f"/compare?runs={seeded.a}",
            f"/diff?a={seeded.a}&b={seeded.bulk[0]}",
            "/api/v1/ui/projects/vision/keys",
        ):
            assert c.get(path).status_code == 404, path
        assert c.get(f"/runs/{seeded.bulk[0]}").status_code == 200


def test_login_page_html_for_the_middleware() -> None:
    """The page the auth middleware can show: a form, the error escaped, the app's (public)
    stylesheet and no script; ``next`` is kept only when it is a path on this site."""
    from mltrail.server.ui import login_page_html

    page = login_page_html("<b>bad</b> token", "/p/vision?filter=a")
    assert 'action="/login"' in page and 'name="token"' in page
    assert "&lt;b&gt;bad&lt;/b&gt; token" in page
    assert "<script" not in page and 'href="/ui/static/ui.css' in page
    assert 'name="next" value="/p/vision?filter=a"' in page
    assert 'name="next" value="/"' in login_page_html(None, "//evil.example/x")
