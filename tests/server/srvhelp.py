"""Server test helpers: the app in-process with tokens, sync clients, real server processes."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from mltrail.server.app import ServerConfig, create_app

MLTRAIL = str(Path(sys.executable).with_name("mltrail"))


class Client:
    """A synchronous client over ``httpx.ASGITransport`` (the app runs in this process).

    Starlette's TestClient warns on this httpx version (and warnings are errors here).
    """

    def __init__(self, app: Any, headers: dict[str, str] | None = None) -> None:
        self._loop = asyncio.new_event_loop()
        self._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://127.0.0.1",
            headers=headers or {},
        )

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self._loop.run_until_complete(self._client.request(method, url, **kwargs))

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def head(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("HEAD", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", url, **kwargs)

    def close(self) -> None:
        self._loop.run_until_complete(self._client.aclose())
        self._loop.run_until_complete(self._loop.shutdown_default_executor())
        self._loop.close()


@dataclass
class Server:
    """An in-process app with tokens of each kind and clients for them."""

    app: Any
    artifacts: Path
    write_token: str
    read_token: str
    admin_token: str
    _clients: list[Client]

    def client(self, token: str | None = None, **headers: str) -> Client:
        if token is not None:
            headers = {"Authorization": f"Bearer {token}", **headers}
        c = Client(self.app, headers)
        self._clients.append(c)
        return c

    def token(self, scope: str, project: str | None = None, **kw: Any) -> str:
        _, plaintext = self.app.state.store.tokens().create(scope, project=project, **kw)
        return str(plaintext)

    @property
    def store(self) -> Any:
        return self.app.state.store


def make_server(store_uri: str, artifacts: Path, *, auth: bool = True) -> Server:
    app = create_app(ServerConfig(store=store_uri, artifacts=str(artifacts), auth=auth))
    tokens = app.state.store.tokens()
    plain = [tokens.create(s, name=s)[1] for s in ("write", "read", "admin")]
    return Server(app, artifacts, plain[0], plain[1], plain[2], [])


def new_run(client: Client, project: str = "p", **body: Any) -> dict[str, Any]:
    r = client.post("/api/v1/runs", json={"project": project, **body})
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


def fresh_pg_database(pg_url: str) -> str:
    """A new, empty PostgreSQL database on the test server; its URI."""
    import uuid

    import sqlalchemy as sa

    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(
        sa.make_url(pg_url).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    admin.dispose()
    return str(sa.make_url(pg_url).set(database=name).render_as_string(hide_password=False))


# -- real processes ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Process:
    proc: subprocess.Popen[bytes]
    url: str
    started_s: float

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            out, _ = self.proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        return out.decode(errors="replace")


def start_server(*args: str, env: dict[str, str] | None = None, timeout: float = 20) -> Process:
    """``mltrail <args> --port P`` in a subprocess, waited on until /health answers."""
    port = free_port()
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [MLTRAIL, *args, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            out = proc.communicate()[0].decode(errors="replace")
            raise AssertionError(f"server exited with {proc.returncode}:\n{out}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return Process(proc, url, time.perf_counter() - t0)
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"server not healthy in {timeout}s:\n{proc.communicate()[0]!r}")
        time.sleep(0.02)
