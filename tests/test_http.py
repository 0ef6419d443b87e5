"""ServerClient against a small stdlib server: keep-alive, redirects, retries, errors as ours."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from mltrail._http import ServerClient
from mltrail.errors import (
    AuthenticationError,
    InvalidArgumentError,
    NotFoundError,
    StoreError,
)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self.seen: list[dict[str, Any]] = []
        self.other = ""  # the URL of another origin, for cross-origin redirects
        self.peer: _Server | None = None  # the server at that origin
        self.drops = 0  # close this many connections without answering


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self, status: int, body: Any = None, headers: dict[str, str] | None = None):
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _route(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path, _, query = self.path.partition("?")
        seen = {
            "method": self.command,
            "path": path,
            "query": query,
            "auth": self.headers.get("Authorization"),
            "port": self.client_address[1],
            "size": len(body),
            "sha": hashlib.sha256(body).hexdigest(),
        }
        self.server.seen.append(seen)
        if path == "/drop" and self.server.drops:
            self.server.drops -= 1
            self.close_connection = True
            return  # no answer: the client sees the connection dropped
        routes: dict[str, tuple[int, Any, dict[str, str]]] = {
            "/same": (307, None, {"Location": "/echo"}),
            "/moved": (301, None, {"Location": "/echo"}),
            "/see-other": (303, None, {"Location": "/echo?from=303"}),
            "/other": (307, None, {"Location": f"{self.server.other}/echo"}),
            "/loop": (302, None, {"Location": "/loop"}),
            "/busy": (503, {"error": {"code": "x", "message": "busy"}}, {}),
            "/slow-down": (429, None, {}),
            "/missing": (404, {"error": {"code": "not_found", "message": "no such run"}}, {}),
            "/who": (401, {"error": {"code": "invalid_token", "message": "bad token"}}, {}),
            "/plain-404": (404, None, {}),
        }
        if path == "/blob":
            data = bytes(range(256)) * 4096
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        status, answer, headers = routes.get(path, (200, seen, {}))
        self._answer(status, answer, headers)

    do_GET = do_POST = do_PUT = do_HEAD = _route


def _serve() -> Iterator[_Server]:
    srv = _Server()
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)


@pytest.fixture
def srv() -> Iterator[_Server]:
    """A fresh server, with a second one (another origin) for cross-origin redirects."""
    gen_a, gen_b = _serve(), _serve()
    a, b = next(gen_a), next(gen_b)
    a.other, a.peer = b.url, b
    yield a
    for gen in (gen_a, gen_b):
        next(gen, None)


@pytest.fixture
def client(srv: _Server) -> Iterator[ServerClient]:
    c = ServerClient(srv.url, token="sekret", timeout=5)
    yield c
    c.close()


def test_keep_alive_one_connection_per_thread_at_most(srv: _Server, client: ServerClient):
    """Sequential requests reuse one connection; four threads use at most four; after
    close() the client reconnects on demand."""
    for _ in range(10):
        client.json("GET", "/echo")
    assert len({s["port"] for s in srv.seen}) == 1

    def work() -> None:
        for _ in range(10):
            client.json("GET", "/echo")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({s["port"] for s in srv.seen}) <= 4
    client.close()
    assert client.json("GET", "/echo")["method"] == "GET"


def test_query_token_and_bodies(srv: _Server, client: ServerClient, tmp_path: Path):
    """Queries drop None, the token is a bearer token, a file body is sent from its
    position with its length, and a download streams into a sink."""
    out = client.json("GET", "/echo", query={"a": "x y", "skip": None, "n": 3})
    assert out["query"] == "a=x+y&n=3" and out["auth"] == "Bearer sekret"
    data = b"0123456789" * 100_000
    f = io.BytesIO(data)
    path = tmp_path / "body"
    path.write_bytes(data)
    with open(path, "rb") as fh:
        fh.seek(10)
        out = client.json("PUT", "/echo", body=fh, content_type="application/octet-stream")
    assert out["size"] == len(data) - 10
    assert out["sha"] == hashlib.sha256(data[10:]).hexdigest()
    assert client.json("POST", "/echo", body=f.getvalue())["size"] == len(data)
    sink = io.BytesIO()
    status, headers, body = client.request("GET", "/blob", sink=sink, accept="*/*")
    assert status == 200 and body == b"" and sink.getvalue() == bytes(range(256)) * 4096
    assert headers["content-length"] == str(256 * 4096)


def test_same_origin_redirects_keep_the_token_and_the_body(
    srv: _Server, client: ServerClient, tmp_path: Path
):
    """307 and 301 repeat the method, body and token on the same origin; 303 turns into
    a GET."""
    out = client.json("POST", "/same", body=b"abc")
    assert (out["method"], out["path"], out["size"], out["auth"]) == (
        "POST",
        "/echo",
        3,
        "Bearer sekret",
    )
    path = tmp_path / "body"
    path.write_bytes(b"x" * 5000)
    with open(path, "rb") as fh:
        out = client.json("PUT", "/moved", body=fh)
    assert (out["method"], out["size"]) == ("PUT", 5000)
    out = client.json("POST", "/see-other", body=b"abc")
    assert (out["method"], out["query"], out["size"]) == ("GET", "from=303", 0)


def test_redirect_to_another_host_never_carries_the_token(srv: _Server, client: ServerClient):
    """A redirect to another origin is followed without the Authorization header."""
    out = client.json("GET", "/other")
    assert out["path"] == "/echo" and out["auth"] is None
    assert srv.peer is not None and srv.peer.seen[-1]["auth"] is None
    assert srv.seen[-1]["auth"] == "Bearer sekret"  # the server itself had it


def test_redirect_loop_is_an_error(client: ServerClient):
    """More than five redirects in a row is refused, naming the last target."""
    with pytest.raises(InvalidArgumentError, match="redirects.*/loop"):
        client.request("GET", "/loop")


def test_error_answers_map_to_our_errors(client: ServerClient):
    """5xx and 429 are retryable StoreErrors; other answers raise the named error."""
    with pytest.raises(StoreError, match="503: busy"):
        client.request("GET", "/busy")
    with pytest.raises(StoreError, match="429"):
        client.request("GET", "/slow-down")
    with pytest.raises(NotFoundError, match="no such run"):
        client.request("GET", "/missing")
    with pytest.raises(AuthenticationError, match="bad token"):
        client.request("GET", "/who")
    assert client.request("HEAD", "/plain-404", ok_404=True)[0] == 404


def test_dropped_connection_is_retried_once(srv: _Server, client: ServerClient):
    """A connection closed without an answer is retried once, then a StoreError."""
    client.json("GET", "/echo")
    srv.drops = 1
    assert client.json("POST", "/drop", body=b"x")["path"] == "/drop"
    srv.drops = 2
    with pytest.raises(StoreError, match="dropped the connection"):
        client.request("POST", "/drop", body=b"x")


def test_unreachable_is_a_store_error():
    """A closed port is StoreError naming the server and the reason."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    c = ServerClient(f"http://127.0.0.1:{port}")
    with pytest.raises(StoreError, match=f"127.0.0.1:{port} unreachable: Connection refused"):
        c.request("GET", "/x")
    c.close()


def test_bad_url_and_bad_ca_bundle(srv: _Server, monkeypatch: pytest.MonkeyPatch, tmp_path):
    """A non-http URL is refused at once; an unusable CA bundle names itself."""
    with pytest.raises(InvalidArgumentError, match="expected http"):
        ServerClient("ftp://host")
    monkeypatch.setenv("MLTRAIL_CA_BUNDLE", str(tmp_path / "missing.pem"))
    c = ServerClient(srv.url)
    with pytest.raises(InvalidArgumentError, match="CA bundle.*missing.pem"):
        c.request("GET", "/echo")
    (tmp_path / "bad.pem").write_text("not a certificate\n")
    monkeypatch.setenv("MLTRAIL_CA_BUNDLE", str(tmp_path / "bad.pem"))
    with pytest.raises(InvalidArgumentError, match="CA bundle.*bad.pem"):
        ServerClient(srv.url).request("GET", "/echo")


def test_token_from_the_environment(srv: _Server, monkeypatch: pytest.MonkeyPatch):
    """Without token=, MLTRAIL_TOKEN is sent; an explicit empty token sends none."""
    monkeypatch.setenv("MLTRAIL_TOKEN", "from-env")
    c, d = ServerClient(srv.url), ServerClient(srv.url, token="")
    assert c.json("GET", "/echo")["auth"] == "Bearer from-env"
    assert d.json("GET", "/echo")["auth"] is None
    c.close()
    d.close()


def test_httpx_is_loaded_on_first_request_only():
    """import mltrail and making a ServerClient load no httpx; the first request does."""
    code = (
        "import sys, mltrail\n"
        "from mltrail._http import ServerClient\n"
        "c = ServerClient('http://127.0.0.1:9')\n"
        "print('httpx' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
