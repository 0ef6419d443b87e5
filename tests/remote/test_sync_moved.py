"""``mltrail sync`` when the server's URL changed, and ``finish()`` with the server down.

Item 12: spools written for an old URL wait in the cache; ``sync`` against the new URL says
they are there, ``--from OLD`` applies them to the new URL and ``--all`` to their own store.
Item 15: ``finish()`` waits ``MLTRAIL_FINISH_TIMEOUT_S`` at most and says at once what for.
"""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import mltrail
from mltrail.entities import RunStatus
from mltrail.store.registry import open_store, resolve_location
from mltrail.testing.server import ThreadedServer

MLTRAIL = str(Path(sys.executable).with_name("mltrail"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def token(store_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("MLTRAIL_CACHE_DIR", str(tmp_path / "cache"))
    store = open_store(store_uri, shared=False)
    _, tok = store.tokens().create("write")
    store.close()
    monkeypatch.setenv("MLTRAIL_TOKEN", tok)
    return tok


def _leave_spool(url: str, steps: int = 200) -> str:
    run = mltrail.init(project="moved", store=url, capture=False, console=False)
    for s in range(steps):
        run.log({"m": s * 0.5}, step=s)
    run.finish(timeout=0.2)
    assert run.spool_path.exists()
    return run.run_id


def _sync(*args: str) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [MLTRAIL, "sync", *args], capture_output=True, text=True, timeout=120, env=os.environ
    )


def test_sync_lists_spools_left_for_an_old_url_and_applies_them_from_it(
    store_uri: str, token: str, tmp_path: Path
) -> None:
    """Spools for the old URL are named by `sync` on the new one and applied with --from."""
    old = f"http://127.0.0.1:{_free_port()}"
    run_id = _leave_spool(old)
    new_port = _free_port()
    new = f"http://localhost:{new_port}"
    with ThreadedServer(store_uri, str(tmp_path / "a"), port=new_port):
        plain = _sync("--store", new)
        assert plain.returncode == 0, plain.stderr
        assert "nothing to sync" in plain.stdout
        assert f"1 spool wait for {old}" in " ".join(plain.stdout.split())
        assert f"--from {old}" in plain.stdout
        moved = _sync("--store", new, "--from", old, "--json")
        assert moved.returncode == 0, moved.stderr
        [rec] = json.loads(moved.stdout)["recovered"]
        assert rec["run_id"] == run_id and rec["points"] == 200 and rec["error"] is None
        api = mltrail.Api(new)
        assert api.run(run_id).status is RunStatus.FINISHED
        assert api.history(run_id, "m").values.tolist() == [s * 0.5 for s in range(200)]
    assert not any(resolve_location(old).spool_dir.glob("*.spool"))


def test_sync_all_applies_every_leftover_to_its_own_store(
    store_uri: str, token: str, tmp_path: Path
) -> None:
    """--all applies spools of every store in the cache, whatever --store names."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    run_id = _leave_spool(url, steps=50)
    with ThreadedServer(store_uri, str(tmp_path / "a"), port=port):
        res = _sync("--all", "--json", "--store", str(tmp_path / "elsewhere"))
        assert res.returncode == 0, res.stderr
        by_store = json.loads(res.stdout)["by_store"]
        assert [r["run_id"] for r in by_store[url]] == [run_id]
        assert mltrail.Api(url).run(run_id).status is RunStatus.FINISHED


def test_finish_with_the_server_down_says_what_it_waits_for_and_is_bounded(
    token: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """MLTRAIL_FINISH_TIMEOUT_S bounds finish(); the wait is explained before it starts."""
    monkeypatch.setenv("MLTRAIL_FINISH_TIMEOUT_S", "1.5")
    url = f"http://127.0.0.1:{_free_port()}"
    caplog.set_level(logging.WARNING, logger="mltrail")
    run = mltrail.init(project="down", store=url, capture=False, console=False)
    run.log({"x": 1.0})
    t0 = time.monotonic()
    run.finish()
    took = time.monotonic() - t0
    assert took < 1.5 + 2.0, took
    waiting = [r.getMessage() for r in caplog.records if "waiting" in r.getMessage()]
    assert len(waiting) == 1, [r.getMessage() for r in caplog.records]
    assert url in waiting[0] and "MLTRAIL_FINISH_TIMEOUT_S" in waiting[0]
    assert str(run.spool_path) in waiting[0]
    assert run.spool_path.exists()  # left for `mltrail sync`


def test_finish_timeout_zero_does_not_wait(token: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """MLTRAIL_FINISH_TIMEOUT_S=0: finish() returns at once, the spool is kept."""
    monkeypatch.setenv("MLTRAIL_FINISH_TIMEOUT_S", "0")
    url = f"http://127.0.0.1:{_free_port()}"
    run = mltrail.init(project="down", store=url, capture=False, console=False)
    run.log({"x": 1.0})
    t0 = time.monotonic()
    run.finish()
    assert time.monotonic() - t0 < 1.0
    assert run.spool_path.exists()


def test_a_bad_finish_timeout_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A value that is not a number of seconds names the variable."""
    from mltrail.settings import settings

    monkeypatch.setenv("MLTRAIL_FINISH_TIMEOUT_S", "soon")
    with pytest.raises(ValueError, match="MLTRAIL_FINISH_TIMEOUT_S"):
        settings()
