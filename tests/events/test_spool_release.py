"""A long run's applied spool is given back as it goes: disk stays bounded, nothing is lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import mltrail
from mltrail.events import spool as spool_mod
from mltrail.events import writer as writer_mod
from mltrail.events.decode import SpoolDecoder
from mltrail.events.spool import snapshot_path

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="hole punching")

KEYS = [f"k{i}" for i in range(8)]


def _disk(path: Path) -> int:
    return os.stat(path).st_blocks * 512


def _log(run: mltrail.Run, start: int, n: int) -> None:
    for step in range(start, start + n):
        run.log({k: float(step + j) for j, k in enumerate(KEYS)}, step=step)


def test_disk_stays_bounded_while_a_long_run_logs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_mod, "RELEASE_BYTES", 256 << 10)
    monkeypatch.setenv("MLTRAIL_FLUSH_INTERVAL_S", "0.05")
    root = str(tmp_path / "store")
    run = mltrail.init(project="p", store=root, capture=False)
    path = run.spool_path
    peak = 0
    for chunk in range(40):  # 40 x 2,000 steps x 8 keys: ~6 MB of spool
        _log(run, chunk * 2000, 2000)
        run.flush()
        peak = max(peak, _disk(path))
    logical = path.stat().st_size
    assert logical > 5 << 20
    assert run._spool.released > logical - (1 << 20)
    assert peak < 1 << 20, f"spool took {peak} bytes of disk for {logical} logged"
    assert snapshot_path(path).exists()
    run.finish(wait=True)
    assert not path.exists() and not snapshot_path(path).exists()
    history = mltrail.Api(root).history(run.run_id, "k3")
    assert len(history) == 80_000
    assert history.values[:3].tolist() == [3.0, 4.0, 5.0]


def _released(run: mltrail.Run) -> int:
    """The writer releases right after the store took a batch: wait for it."""
    deadline = time.monotonic() + 10
    while run._spool.released == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    return run._spool.released


def test_a_fresh_decoder_resumes_past_the_hole_with_the_released_keysets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_mod, "RELEASE_BYTES", 128 << 10)
    root = str(tmp_path / "store")
    run = mltrail.init(project="p", store=root, capture=False)
    _log(run, 0, 5000)
    run.flush()
    released = _released(run)
    assert released > 0
    snap = spool_mod.load_snapshot(run.spool_path)
    assert snap is not None and snap["upto"] >= released
    _log(run, 5000, 10)  # frames past the snapshot use the keyset declared in the hole
    run.flush()
    decoder = SpoolDecoder(run.spool_path, run.spool_path.name.removesuffix(".spool"))
    try:
        assert decoder.keysets and decoder.run_id() == run.run_id
        batch = decoder.next_batch(snap["upto"], 64 << 20)
        assert batch is not None and batch.metrics["k0"].values[-1] == 5009.0
        assert not decoder.damage
        # a store that never took the released frames is told, never fed zeros
        fresh = SpoolDecoder(run.spool_path, decoder.source)
        first = fresh.next_batch(0)
        assert first is not None and first.end == snap["upto"]
        assert fresh.damage and fresh.damage[0].reason == "released after it was applied"
        fresh.close()
    finally:
        decoder.close()
    run.finish()


def test_no_hole_support_keeps_the_spool_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_mod, "RELEASE_BYTES", 64 << 10)
    monkeypatch.setattr(spool_mod, "_punch_hole", lambda fd, start, length: False)
    root = str(tmp_path / "store")
    run = mltrail.init(project="p", store=root, capture=False)
    _log(run, 0, 5000)
    run.flush()
    time.sleep(0.3)  # time enough for a release, had the filesystem taken it
    assert run._spool.released == 0
    assert _disk(run.spool_path) >= run.spool_path.stat().st_size - 4096
    run.finish()
    assert len(mltrail.Api(root).history(run.run_id, "k0")) == 5000


CHILD = textwrap.dedent(
    """
    import os, signal, sys, time
    import mltrail
    from mltrail.events import writer
    writer.RELEASE_BYTES = 128 << 10
    run = mltrail.init(project="p", store=sys.argv[1], capture=False)
    keys = [f"k{i}" for i in range(8)]
    def log(a, b):
        for s in range(a, b):
            run.log({k: float(s + j) for j, k in enumerate(keys)}, step=s)
    log(0, 20000)
    run.flush()
    deadline = time.monotonic() + 10
    while run._spool.released == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert run._spool.released > 0
    log(20000, 20500)  # acknowledged, maybe not applied yet: recovery must find them
    print(run.run_id, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_sigkill_after_a_release_loses_nothing(tmp_path: Path) -> None:
    root = str(tmp_path / "store")
    env = {k: v for k, v in os.environ.items() if k not in ("MLTRAIL_STORE", "PYTHONPATH")}
    env["MLTRAIL_FLUSH_INTERVAL_S"] = "5"  # the tail stays in the spool when the kill comes
    done = subprocess.run(
        [sys.executable, "-c", CHILD, root],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    run_id = done.stdout.split()[-1]
    time.sleep(0.1)
    synced = subprocess.run(
        [sys.executable, "-m", "mltrail", "sync", "--store", root],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert "damage" not in (synced.stdout + synced.stderr).lower()
    api = mltrail.Api(root)
    got = api.run(run_id)
    assert got.status.value == "crashed"
    history = api.history(run_id, "k7")
    assert len(history) == 20500
    assert history.values[-1] == 20499.0 + 7
    assert not list((Path(root) / "spool").glob("*"))
