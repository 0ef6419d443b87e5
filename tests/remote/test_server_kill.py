"""A2: SIGKILL the server during ingest from 4 clients, restart it: no loss, no duplicates."""

from __future__ import annotations

import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import mltrail
from mltrail.entities import RunStatus
from mltrail.store.registry import open_store

MLTRAIL = str(Path(sys.executable).with_name("mltrail"))
CHILD = str(Path(__file__).parents[1] / "helpers" / "remote_child.py")
STEPS = 5000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(store: str, artifacts: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [MLTRAIL, "server", "--store", store, "--artifacts", str(artifacts), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import httpx

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=0.5).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError("server did not come up")


@pytest.mark.slow
def test_kill_server_during_ingest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    db = tmp_path / "server.db"
    store = f"sqlite:///{db}"
    s = open_store(store, shared=False)
    _, token = s.tokens().create("write")
    s.close()
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "MLTRAIL_TOKEN": token,
        "MLTRAIL_CACHE_DIR": str(tmp_path / "cache"),
        "MLTRAIL_HEARTBEAT_S": "0.5",
    }
    server = _start(store, tmp_path / "files", port)
    clients = [
        subprocess.Popen(
            [sys.executable, CHILD, url, str(STEPS), str(i)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=tmp_path,
        )
        for i in range(4)
    ]
    rng = random.Random(4)
    try:
        for _ in range(3):
            time.sleep(rng.uniform(0.3, 1.5))
            server.send_signal(signal.SIGKILL)
            server.wait()
            time.sleep(1.0)
            server = _start(store, tmp_path / "files", port)
        outs = [c.communicate(timeout=240) for c in clients]
    finally:
        for c in clients:
            if c.poll() is None:
                c.kill()
    for c, (_out, err) in zip(clients, outs, strict=True):
        assert c.returncode == 0, err.decode()
    run_ids = [out.decode().split()[-1] for out, _ in outs]
    monkeypatch.setenv("MLTRAIL_TOKEN", token)
    try:
        api = mltrail.Api(url)
        for rid in run_ids:
            rec = api.run(rid)
            assert rec.status is RunStatus.FINISHED
            for key in "abcd":
                series = api.history(rid, key)
                assert series.steps.tolist() == list(range(STEPS)), key  # no loss, no dups
    finally:
        server.terminate()
        server.wait(15)
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
