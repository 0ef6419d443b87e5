"""The SDK reaching a real server the way networks really are: proxies, NO_PROXY, private CAs."""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

import mltrail
from mltrail.errors import StoreError
from mltrail.store.http import HttpTrackingStore
from mltrail.store.registry import forget_open_stores
from mltrail.testing.server import ThreadedServer

_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


class _Proxy:
    """An HTTP proxy on 127.0.0.1 that records every request line it gets: ``CONNECT``
    is tunnelled; absolute-form requests are forwarded in origin form over one upstream
    connection per client connection (as a corporate proxy would)."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.seen: list[str] = []
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = [self._listener]
        self._threads: list[threading.Thread] = []
        self._spawn(self._accept)

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._socks.append(sock)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self._track(conn)
            self._spawn(self._serve, conn)

    def _serve(self, conn: socket.socket) -> None:
        rfile = conn.makefile("rb")
        upstream: socket.socket | None = None
        try:
            while line := rfile.readline():
                head = []
                while (h := rfile.readline()) not in (b"\r\n", b""):
                    head.append(h)
                method, target, version = line.decode("latin-1").split()
                with self._lock:
                    self.seen.append(f"{method} {target}")
                if method == "CONNECT":
                    host, port = target.rsplit(":", 1)
                    upstream = socket.create_connection((host, int(port)))
                    self._track(upstream)
                    conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    self._spawn(_pipe, upstream, conn)
                    _pipe(conn, upstream)
                    return
                url = urlsplit(target)
                if upstream is None:
                    upstream = socket.create_connection((url.hostname, url.port))
                    self._track(upstream)
                    self._spawn(_pipe, upstream, conn)
                length = 0
                for h in head:
                    name, _, value = h.decode("latin-1").partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                origin_form = url.path + (f"?{url.query}" if url.query else "")
                start = f"{method} {origin_form} {version}\r\n".encode()
                upstream.sendall(start + b"".join(head) + b"\r\n" + rfile.read(length))
        except OSError:
            return
        finally:
            rfile.close()

    def close(self) -> None:
        with self._lock:
            socks, threads = list(self._socks), list(self._threads)
        for sock in socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        for thread in threads:
            thread.join(5)


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(1 << 16):
            dst.sendall(data)
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass


@pytest.fixture
def net_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No proxy or CA setting from the machine leaks into a test."""
    for name in (*_PROXY_VARS, "MLTRAIL_CA_BUNDLE", "REQUESTS_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


@pytest.fixture
def proxy() -> Iterator[_Proxy]:
    p = _Proxy()
    yield p
    p.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ThreadedServer]:
    with ThreadedServer(str(tmp_path / "store"), str(tmp_path / "artifacts")) as srv:
        yield srv


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A private CA and a server certificate it signed for 127.0.0.1 (openssl CLI)."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    d = tmp_path_factory.mktemp("tls")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    openssl(
        "req", "-x509", *ec, "-days", "2", "-subj", "/CN=mltrail test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-keyout", "ca.key", "-out", "ca.pem",
    )  # fmt: skip
    (d / "ext.cnf").write_text(
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
    )
    openssl("req", *ec, "-subj", "/CN=127.0.0.1", "-keyout", "server.key", "-out", "server.csr")
    openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "ext.cnf", "-out", "server.pem",
    )  # fmt: skip
    return {"ca": d / "ca.pem", "cert": d / "server.pem", "key": d / "server.key"}


@pytest.fixture
def tls_server(tmp_path: Path, tls_files: dict[str, Path]) -> Iterator[ThreadedServer]:
    with ThreadedServer(
        str(tmp_path / "store"),
        str(tmp_path / "artifacts"),
        ssl_certfile=str(tls_files["cert"]),
        ssl_keyfile=str(tls_files["key"]),
    ) as srv:
        yield srv


def _log_and_read_back(srv: ThreadedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLTRAIL_TOKEN", srv.token("write"))
    run = mltrail.init(project="net", store=srv.url, capture=False)
    for step in range(300):
        run.log({"x": float(step)}, step=step)
    run.finish()
    store = HttpTrackingStore(srv.url)
    try:
        assert store.metric_history(run.run_id, "x").steps.tolist() == list(range(300))
    finally:  # idle TLS connections left open would hold up the server's shutdown
        store.close()
        forget_open_stores()


def test_sdk_logs_through_an_http_proxy(
    server: ThreadedServer, proxy: _Proxy, net_env: pytest.MonkeyPatch
):
    """With HTTP_PROXY set, every upload and read goes through the proxy."""
    net_env.setenv("HTTP_PROXY", proxy.url)
    _log_and_read_back(server, net_env)
    ingest = f"POST {server.url}/api/v1/ingest"
    assert ingest in proxy.seen
    assert all(line.split()[1].startswith(server.url) for line in proxy.seen)


def test_no_proxy_bypasses_the_proxy(
    server: ThreadedServer, proxy: _Proxy, net_env: pytest.MonkeyPatch
):
    """A host listed in NO_PROXY is reached directly: the proxy sees nothing."""
    net_env.setenv("HTTP_PROXY", proxy.url)
    net_env.setenv("HTTPS_PROXY", proxy.url)
    net_env.setenv("NO_PROXY", "example.com,127.0.0.1")
    _log_and_read_back(server, net_env)
    assert proxy.seen == []


def test_private_ca_trusted_through_mltrail_ca_bundle(
    tls_server: ThreadedServer, tls_files: dict[str, Path], net_env: pytest.MonkeyPatch
):
    """An https server whose certificate a private CA signed is reached with
    MLTRAIL_CA_BUNDLE naming that CA."""
    net_env.setenv("MLTRAIL_CA_BUNDLE", str(tls_files["ca"]))
    assert tls_server.url.startswith("https://")
    _log_and_read_back(tls_server, net_env)


def test_https_through_a_proxy_is_tunnelled(
    tls_server: ThreadedServer,
    tls_files: dict[str, Path],
    proxy: _Proxy,
    net_env: pytest.MonkeyPatch,
):
    """HTTPS_PROXY tunnels https:// with CONNECT; the certificate is still verified."""
    net_env.setenv("HTTPS_PROXY", proxy.url)
    net_env.setenv("REQUESTS_CA_BUNDLE", str(tls_files["ca"]))
    _log_and_read_back(tls_server, net_env)
    assert f"CONNECT 127.0.0.1:{tls_server.port}" in proxy.seen


def test_untrusted_certificate_is_refused_naming_the_problem(
    tls_server: ThreadedServer, net_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    """Without the CA, requests fail with a StoreError that names the certificate problem
    and MLTRAIL_CA_BUNDLE; a run keeps its data in the spool and says why once."""
    store = HttpTrackingStore(tls_server.url, token=tls_server.token("read"))
    with pytest.raises(StoreError, match=r"certificate verification failed.*MLTRAIL_CA_BUNDLE"):
        store.list_projects()
    store.close()
    caplog.set_level(logging.WARNING, logger="mltrail")
    net_env.setenv("MLTRAIL_TOKEN", tls_server.token("write"))
    run = mltrail.init(project="net", store=tls_server.url, capture=False)
    run.log({"x": 1.0}, step=0)
    assert not run.flush(timeout=0.5)
    run.finish(timeout=0.2)
    down = [r.getMessage() for r in caplog.records if "unavailable" in r.getMessage()]
    assert len(down) == 1 and "certificate" in down[0], down
    assert run.spool_path.exists()


def test_a_dead_proxy_is_named_in_the_error(server: ThreadedServer, net_env: pytest.MonkeyPatch):
    """When the proxy cannot be reached, the StoreError says the request went through it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    net_env.setenv("HTTP_PROXY", dead)
    store = HttpTrackingStore(server.url, token=server.token("read"))
    with pytest.raises(StoreError, match=f"unreachable: .*through the proxy {dead}"):
        store.list_projects()
    store.close()
