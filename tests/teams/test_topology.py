"""The deployed topology as processes on this machine: PostgreSQL, SeaweedFS, two `mltrail
server` processes with their own working directories behind a round-robin TCP proxy, 8 SDK
clients logging and uploading artifacts through the proxy; one replica is SIGKILLed
mid-ingest. Every run, point and artifact is then readable through either replica, byte for
byte (clients retried through the other)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mltrail.store.http import HttpTrackingStore
from mltrail.store.registry import open_store

MLTRAIL = str(Path(sys.executable).with_name("mltrail"))
CHILD = str(Path(__file__).with_name("topology_child.py"))
CLIENTS = 8
STEPS = 2000

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(900),
    pytest.mark.parametrize("store_uri", ["postgres"], indirect=True),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RoundRobinProxy:
    """A TCP proxy on 127.0.0.1: each connection goes to the next backend that accepts it."""

    def __init__(self, backends: list[int]) -> None:
        self.backends = backends
        self.port = _free_port()
        self._next = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            with contextlib.suppress(OSError):
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
        finally:
            with contextlib.suppress(OSError):
                writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(len(self.backends)):
            port = self.backends[self._next % len(self.backends)]
            self._next += 1
            try:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                continue
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
            return
        writer.close()

    def __enter__(self) -> RoundRobinProxy:
        self._thread.start()
        start = asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self._server = asyncio.run_coroutine_threadsafe(start, self._loop).result(10)
        return self

    async def _shutdown(self) -> None:
        self._server.close()
        await self._server.wait_closed()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()


def _start(port: int, cwd: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``mltrail server`` on ``port`` in its own working directory and cache."""
    cwd.mkdir(exist_ok=True)
    store, root = env["TOPOLOGY_STORE"], env["TOPOLOGY_ROOT"]
    with open(cwd / "server.log", "ab") as log:
        proc = subprocess.Popen(
            [MLTRAIL, "server", "--store", store, "--artifacts", root, "--port", str(port)],
            cwd=cwd,
            env={**env, "MLTRAIL_CACHE_DIR": str(cwd / "cache")},
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    raise AssertionError((cwd / "server.log").read_text()[-2000:])


@pytest.fixture
def topology(
    store_uri: str, s3_bucket: str, tmp_path: Path
) -> Iterator[tuple[str, list[int], dict[str, str], dict[int, subprocess.Popen[bytes]]]]:
    """PostgreSQL + S3, replicas a and b, and the proxy; (proxy url, ports, env, processes)."""
    s = open_store(store_uri, shared=False)
    _, token = s.tokens().create("write")  # type: ignore[attr-defined]
    s.close()
    env = {**os.environ, "MLTRAIL_TOKEN": token, "MLTRAIL_HEARTBEAT_S": "0.5"}
    env["TOPOLOGY_STORE"], env["TOPOLOGY_ROOT"] = store_uri, f"{s3_bucket}/team"
    ports = [_free_port(), _free_port()]
    procs = {p: _start(p, tmp_path / f"replica-{i}", env) for i, p in enumerate(ports)}
    try:
        with RoundRobinProxy(ports) as proxy:
            yield f"http://127.0.0.1:{proxy.port}", ports, env, procs
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.terminate()
                proc.wait(15)


def _wait_for_ingest(port: int, token: str, clients: list[subprocess.Popen[bytes]]) -> None:
    """Until every client's run has points in the store, with no client finished yet."""
    via = HttpTrackingStore(f"http://127.0.0.1:{port}", token)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            runs = via.search_runs(project="team", limit=100).runs if via.list_projects() else []
            if len(runs) == len(clients) and all(r.metrics for r in runs):
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the clients never got going")
    finally:
        via.close()
    assert all(c.poll() is None for c in clients), "a client finished before the kill"


def test_eight_clients_through_a_proxy_survive_a_replica_killed_mid_ingest(
    topology: tuple[str, list[int], dict[str, str], dict[int, subprocess.Popen[bytes]]],
    tmp_path: Path,
) -> None:
    """No run, point or artifact byte is lost when one replica dies under 8 clients."""
    url, ports, env, procs = topology
    work = tmp_path / "clients"
    work.mkdir()
    (work / ".git").mkdir()
    clients = [
        subprocess.Popen(
            [sys.executable, CHILD, url, str(STEPS), str(i)],
            env={**env, "MLTRAIL_CACHE_DIR": str(work / f"cache-{i}")},
            cwd=work,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in range(CLIENTS)
    ]
    try:
        _wait_for_ingest(ports[1], env["MLTRAIL_TOKEN"], clients)
        procs[ports[0]].send_signal(signal.SIGKILL)  # replica a dies mid-ingest
        procs[ports[0]].wait()
        outs = [c.communicate(timeout=600) for c in clients]
    finally:
        for c in clients:
            if c.poll() is None:
                c.kill()
    for c, (_out, err) in zip(clients, outs, strict=True):
        assert c.returncode == 0, err.decode()[-3000:]
    results = [out.decode().split() for out, _ in outs]
    procs[ports[0]] = _start(ports[0], tmp_path / "replica-0", env)  # back, for the reads
    for port in ports:  # every run, point and artifact byte through either replica
        via = HttpTrackingStore(f"http://127.0.0.1:{port}", env["MLTRAIL_TOKEN"])
        client = httpx.Client(headers={"Authorization": f"Bearer {env['MLTRAIL_TOKEN']}"})
        try:
            for i, (run_id, digest) in enumerate(results):
                record = via.get_run(run_id)
                assert record.status.value == "finished" and record.params["child"] == str(i)
                for key, scale in (("a", 1.0), ("b", 0.5), ("c", -1.0)):
                    series = via.metric_history(run_id, key)
                    assert series.steps.tolist() == list(range(STEPS)), key  # no loss, no dups
                    assert series.values.tolist() == [s * scale for s in range(STEPS)]
                got = client.get(f"http://127.0.0.1:{port}/api/v1/objects/{digest}")
                assert got.status_code == 200
                assert got.content == (work / f"weights-{i}.bin").read_bytes()
        finally:
            via.close()
            client.close()
