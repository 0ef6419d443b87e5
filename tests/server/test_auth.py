"""Auth and HTTP hardening: TESTS.md rows 41-46, scopes, project scoping, Host, headers."""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path

import pytest
from srvhelp import Client, Server, make_server, new_run
from starlette.routing import Mount, Route

from mltrail.store.tokens import TOKEN_PREFIX


def _concrete(path: str) -> str:
    """A request path for a route template: every ``{param}`` filled with a dummy."""
    return re.sub(r"\{[^}]+\}", "x", path)


def _every_route(app: object) -> list[tuple[str, str]]:
    """(method, path) of every route, routers included by FastAPI walked recursively."""
    found: list[tuple[str, str]] = []

    def add(route: object, path: str) -> None:
        if isinstance(route, Mount):
            found.append(("GET", path + "/anything.js"))
        elif isinstance(route, Route):
            for method in sorted(route.methods or {"GET"}):
                found.append((method, _concrete(path)))
        else:
            raise AssertionError(f"unexpected route type {type(route).__name__}")

    for route in app.routes:  # type: ignore[attr-defined]
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is None:
            add(route, route.path)
            continue
        for ctx in contexts():  # FastAPI's included router: its routes with their prefix
            add(ctx.original_route, ctx.path)
    return found


def test_every_route_needs_a_token_except_health(srv: Server) -> None:
    """Row 41: enumerate every route of the app (API, UI, static, spec) without a token."""
    anon = srv.client()
    routes = _every_route(srv.app)
    paths = {p for _, p in routes}
    assert {"/health", "/openapi.json", "/api/v1/runs", "/api/v1/ingest"} <= paths
    assert any(p.startswith("/ui/") for p in paths), "the UI routes are enumerated too"
    checked = []
    for method, path in routes:
        r = anon.request(method, path, headers={"Content-Type": "application/json"}, content=b"{}")
        if path == "/health":
            assert r.status_code == 200, (method, path)
            continue
        assert r.status_code == 401, (method, path, r.status_code, r.text[:200])
        assert "access-control-allow-origin" not in r.headers
        checked.append((method, path))
    assert len(checked) >= 15, checked


@pytest.mark.parametrize(
    "header",
    [
        "Bearer garbage",
        "Bearer mlt_0123456789abcdef_" + "A" * 43,  # right format, random secret
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "bearer   ",
        "Token mlt_x",
    ],
)
def test_bad_credentials_are_401(srv: Server, header: str) -> None:
    """Row 42."""
    r = srv.client(Authorization=header).get("/api/v1/projects")
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_token"


def test_wrong_secret_of_a_real_id_is_401(srv: Server) -> None:
    token_id = srv.write_token.split("_")[1]
    forged = f"{TOKEN_PREFIX}{token_id}_{'B' * 43}"
    assert srv.client(forged).get("/api/v1/projects").status_code == 401


def test_expired_and_revoked_tokens(srv: Server) -> None:
    """Row 43: revocation is effective within 1 s, on a server that cached the token."""
    token = srv.token("read")
    client = srv.client(token)
    assert client.get("/api/v1/projects").status_code == 200
    token_id = token.split("_")[1]
    srv.store.tokens().revoke(token_id)
    deadline = time.monotonic() + 1.0
    while client.get("/api/v1/projects").status_code == 200:
        assert time.monotonic() < deadline, "revocation not effective within 1 s"
        time.sleep(0.05)
    r = client.get("/api/v1/projects")
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_token"
    soon = srv.token("read", expires_ms=time.time_ns() // 1_000_000 + 300)
    assert srv.client(soon).get("/api/v1/projects").status_code == 200
    time.sleep(0.9)
    assert srv.client(soon).get("/api/v1/projects").status_code == 401


def test_read_token_cannot_write(srv: Server, api: Client) -> None:
    """Row 45."""
    run_id = new_run(api)["run_id"]
    reader = srv.client(srv.read_token)
    assert reader.get(f"/api/v1/runs/{run_id}").status_code == 200
    for method, path, body in [
        ("POST", "/api/v1/runs", {"project": "p"}),
        ("PATCH", f"/api/v1/runs/{run_id}", {"status": "killed"}),
        ("POST", f"/api/v1/runs/{run_id}/log", {"tags": {"a": "b"}}),
    ]:
        r = reader.request(method, path, json=body)
        assert r.status_code == 403 and r.json()["error"]["code"] == "permission_denied"
    assert api.get(f"/api/v1/runs/{run_id}").json()["status"] == "running"
    assert (
        srv.client(srv.admin_token).post("/api/v1/runs", json={"project": "p"}).status_code == 201
    )


def test_project_token_sees_only_its_project_without_side_effects(srv: Server, api: Client) -> None:
    """Row 44: 404 for another project's run on GET, PATCH, log, files; nothing changes."""
    a_run = new_run(api, "A", params={"lr": 1})
    a_id = a_run["run_id"]
    b_only = srv.client(srv.token("write", project="B"))
    own = new_run(b_only, "B")
    assert b_only.post("/api/v1/runs", json={"project": "A"}).status_code == 404
    data = b"secret"
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    attempts = [
        b_only.get(f"/api/v1/runs/{a_id}"),
        b_only.get(f"/api/v1/run-ids/{a_id[:8]}"),
        b_only.patch(f"/api/v1/runs/{a_id}", json={"status": "killed"}),
        b_only.post(
            f"/api/v1/runs/{a_id}/log",
            json={"metrics": [{"key": "m", "value": 1, "step": 0}], "tags": {"x": "y"}},
        ),
        b_only.put(
            f"/api/v1/runs/{a_id}/files",
            params={"path": "f.txt"},
            content=data,
            headers={"X-Content-Digest": digest},
        ),
        b_only.get(f"/api/v1/runs/{a_id}/series", params={"key": "m"}),
        b_only.get(f"/api/v1/runs/{a_id}/files"),
        b_only.get(f"/api/v1/runs/{a_id}/state"),
        b_only.get(f"/api/v1/runs/{a_id}/console"),
    ]
    missing = b_only.get("/api/v1/runs/doesnotexist")
    for r in attempts:
        assert r.status_code == 404, r.text
        assert r.json() == missing.json() | {
            "error": {**missing.json()["error"], "message": r.json()["error"]["message"]}
        }
    after = api.get(f"/api/v1/runs/{a_id}").json()
    assert after == a_run  # status, tags, metrics unchanged
    assert api.get(f"/api/v1/runs/{a_id}/files").json() == {"files": []}
    assert not list((srv.artifacts / "files" / "sha256").rglob("*.*")) and not [
        p for p in (srv.artifacts / "files").rglob("*") if p.is_file()
    ]
    listed = b_only.get("/api/v1/runs").json()["runs"]
    assert [r["run_id"] for r in listed] == [own["run_id"]]
    assert b_only.get("/api/v1/runs", params={"project": "A"}).json()["runs"] == []
    assert [p["name"] for p in b_only.get("/api/v1/projects").json()["projects"]] == ["B"]


def test_token_in_query_string_is_ignored(srv: Server) -> None:
    """Row 46, first half."""
    anon = srv.client()
    for name in ("token", "access_token", "api_key"):
        r = anon.get("/api/v1/projects", params={name: srv.admin_token})
        assert r.status_code == 401


def test_no_cors_even_for_a_preflight(srv: Server) -> None:
    """Row 46, second half: a preflight from evil.example gets no CORS grant."""
    headers = {
        "Origin": "http://evil.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization",
    }
    r = srv.client().request("OPTIONS", "/api/v1/runs", headers=headers)
    assert r.status_code == 401
    assert not any(k.lower().startswith("access-control-") for k in r.headers)
    with_token = srv.client(srv.write_token).request("OPTIONS", "/api/v1/runs", headers=headers)
    assert with_token.status_code in (401, 405)
    assert not any(k.lower().startswith("access-control-") for k in with_token.headers)


def test_cross_origin_write_is_refused(srv: Server) -> None:
    client = srv.client(srv.write_token, Origin="http://evil.example")
    r = client.post("/api/v1/runs", json={"project": "p"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "cross_origin"
    same = srv.client(srv.write_token, Origin="http://127.0.0.1")
    assert same.post("/api/v1/runs", json={"project": "p"}).status_code == 201


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "null"},  # an opaque origin (sandboxed frame, file:, data:): not trusted
        {"Origin": "http://127.0.0.1", "Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},  # the browser says another site sent it
    ],
)
def test_writes_a_browser_marks_as_foreign_are_refused(
    srv: Server, headers: dict[str, str]
) -> None:
    r = srv.client(srv.write_token, **headers).post("/api/v1/runs", json={"project": "p"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "cross_origin"
    r = srv.client(**headers).post("/login", data={"token": srv.read_token})
    assert r.status_code == 403 and "set-cookie" not in r.headers


def test_same_origin_browser_write_is_allowed(srv: Server) -> None:
    headers = {"Origin": "http://127.0.0.1", "Sec-Fetch-Site": "same-origin"}
    r = srv.client(srv.write_token, **headers).post("/api/v1/runs", json={"project": "p"})
    assert r.status_code == 201


def test_the_login_stylesheet_is_public_and_nothing_else(srv: Server) -> None:
    anon = srv.client()
    css = anon.get("/ui/static/ui.css")
    assert css.status_code == 200 and "text/css" in css.headers["content-type"]
    for path in ("/ui/static/ui.js", "/ui/static/../static/ui.js", "/ui/static/ui.css/x"):
        assert anon.get(path).status_code == 401, path


def test_host_header_check(srv: Server) -> None:
    """DNS rebinding: a request naming another host is refused, on /health too."""
    for host in ("evil.example", "127.0.0.1.evil.example", "localhost.evil"):
        r = srv.client(srv.admin_token, Host=host).get("/api/v1/projects")
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_host"
        assert srv.client(Host=host).get("/health").status_code == 400
    for host in ("localhost:5000", "127.0.0.1", "[::1]:8080"):
        assert srv.client(srv.admin_token, Host=host).get("/api/v1/projects").status_code == 200


def test_security_headers_everywhere(srv: Server, api: Client) -> None:
    for r in (srv.client().get("/health"), api.get("/api/v1/projects"), srv.client().get("/x")):
        assert r.headers["x-content-type-options"] == "nosniff"
        # not no-referrer: under it Chromium posts our own forms with ``Origin: null``
        assert r.headers["referrer-policy"] == "same-origin"
        assert r.headers["x-frame-options"] == "DENY"
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp


def test_browser_gets_login_page_and_cookie_works(srv: Server) -> None:
    anon = srv.client()
    page = anon.get("/", headers={"Accept": "text/html"})
    assert page.status_code == 401
    assert page.headers["content-type"].startswith("text/html")
    assert "object-src 'none'" in page.headers["content-security-policy"]
    assert 'name="token"' in page.text
    bad = anon.post("/login", data={"token": "mlt_nope"})
    assert bad.status_code == 401
    ok = anon.post("/login", data={"token": srv.read_token, "next": "/"})
    assert ok.status_code in (200, 302, 303), ok.text[:300]
    cookie = ok.headers.get("set-cookie", "")
    assert cookie.startswith("mltrail_token=") and "HttpOnly" in cookie
    assert "samesite=strict" in cookie.lower()
    browser = srv.client(Cookie=f"mltrail_token={srv.read_token}")
    assert browser.get("/api/v1/projects").status_code == 200
    assert srv.client(Cookie="mltrail_token=mlt_bad").get("/api/v1/projects").status_code == 401


def test_ui_mode_has_no_tokens_but_checks_host(tmp_path: Path) -> None:
    server = make_server(str(tmp_path / "store"), tmp_path / "art", auth=False)
    try:
        local = server.client()
        assert local.post("/api/v1/runs", json={"project": "p"}).status_code == 201
        assert local.get("/api/v1/projects").status_code == 200
        evil = server.client(Host="attacker.example")
        assert evil.get("/api/v1/projects").status_code == 400
        cross = server.client(Origin="http://attacker.example")
        assert cross.post("/api/v1/runs", json={"project": "p"}).status_code == 403
    finally:
        for c in server._clients:
            c.close()
        server.store.close()
