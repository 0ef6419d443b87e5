"""A1: crash safety of a training process, and of the spool reader that recovery relies on.

A child process (tests/helpers/crash_child.py) logs 20 metrics per step, flushes every 10
steps and prints ``ACK <step>`` after each flush. The parent kills or stops it in various
ways and reads the store back: every acknowledged step must be there whole, the status must
say how the process ended, and nothing may be left half-done.
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import logging
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

import mltrail
from mltrail.entities import RunStatus
from mltrail.events import codec
from mltrail.events import spool as spool_mod
from mltrail.events.decode import SpoolDecoder
from mltrail.events.recovery import BAD_SUFFIX, DAMAGED_SUFFIX, recover_spools
from mltrail.events.spool import SpoolAppender, iter_all_frames, read_frames
from mltrail.store.registry import forget_open_stores, open_store, resolve_location

if TYPE_CHECKING:
    from collections.abc import Iterator

CHILD = Path(__file__).parent / "helpers" / "crash_child.py"
HEARTBEAT_S = 0.5
START_TIMEOUT_S = 60.0  # a cold child on a loaded 2-core machine can take seconds
EXIT_TIMEOUT_S = 60.0


def _load_child() -> object:
    spec = importlib.util.spec_from_file_location("_mltrail_crash_child", CHILD)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


child_mod = _load_child()
KEYS: list[str] = child_mod.KEYS  # type: ignore[attr-defined]
FINITE_STEPS: int = child_mod.FINITE_STEPS  # type: ignore[attr-defined]
EXPECTED_PARAMS = {
    "lr": 0.01,
    "batch": 32,
    "opt.name": "adam",
    "opt.beta1": 0.9,
    **child_mod.EXTRA_PARAMS,  # type: ignore[attr-defined]
}
EXPECTED_TAGS = {**child_mod.TAGS, **child_mod.EXTRA_TAGS}  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def _close_stores() -> Iterator[None]:
    yield
    forget_open_stores()


# -- the child process ---------------------------------------------------------------------


def _child_env() -> dict[str, str]:
    drop = {"PYTHONPATH", "MLTRAIL_STORE", "MLTRAIL_FLUSH_INTERVAL_S"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["MLTRAIL_HEARTBEAT_S"] = str(HEARTBEAT_S)
    return env


class Child:
    """A running crash_child.py whose stdout and stderr go to files."""

    def __init__(self, tmp_path: Path, store: Path, mode: str) -> None:
        self.out = tmp_path / f"{mode}.stdout"
        self.err = tmp_path / f"{mode}.stderr"
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-u", str(CHILD), str(store), mode],
                stdout=out,
                stderr=err,
                env=_child_env(),
                cwd=tmp_path,
            )

    def lines(self) -> list[str]:
        """Whole lines printed so far (a line still being written is left out)."""
        return self.out.read_text().split("\n")[:-1]

    def acks(self) -> list[int]:
        return [int(line.split()[1]) for line in self.lines() if line.startswith("ACK ")]

    def run_id(self) -> str | None:
        found = [line.split()[1] for line in self.lines() if line.startswith("RUN ")]
        return found[0] if found else None

    def stderr(self) -> str:
        return self.err.read_text()

    def wait_for_line(self, prefix: str, timeout: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while not any(line.startswith(prefix) for line in self.lines()):
            if self.proc.poll() is not None:
                pytest.fail(
                    f"child exited ({self.proc.returncode}) before {prefix!r}:\n{self.stderr()}"
                )
            if time.monotonic() > deadline:
                pytest.fail(f"no {prefix!r} from the child within {timeout} s:\n{self.stderr()}")
            time.sleep(0.02)

    def signal_and_wait(self, sig: int) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=EXIT_TIMEOUT_S)

    def wait(self) -> int:
        return self.proc.wait(timeout=EXIT_TIMEOUT_S)


@contextlib.contextmanager
def spawn(tmp_path: Path, store: Path, mode: str) -> Iterator[Child]:
    """Start a child; it is SIGKILLed on the way out if it is still alive."""
    child = Child(tmp_path, store, mode)
    try:
        yield child
    finally:
        if child.proc.poll() is None:
            child.proc.kill()
        child.proc.wait(timeout=EXIT_TIMEOUT_S)


# -- checks --------------------------------------------------------------------------------


def _integrity_ok(store: Path) -> None:
    con = sqlite3.connect(store / "mltrail.db")
    try:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        con.close()


def _stored_run_ids(store: Path) -> list[str]:
    if not (store / "mltrail.db").exists():
        return []
    con = sqlite3.connect(store / "mltrail.db")
    try:
        return [r[0] for r in con.execute("SELECT run_id FROM runs")]
    except sqlite3.OperationalError:  # killed before the schema existed
        return []
    finally:
        con.close()


def _spool_files(store: Path) -> list[Path]:
    folder = store / "spool"
    return sorted(folder.iterdir()) if folder.is_dir() else []


def _scan_spools(store: Path) -> dict[str, int | None]:
    """Per spool file: the last heartbeat it holds (None when it holds none).

    Also asserts the reader finds no CRC error (a truncated tail is not one).
    """
    beats: dict[str, int | None] = {}
    for path in _spool_files(store):
        fd = os.open(path, os.O_RDONLY)
        try:
            pos, last = 0, None
            while True:
                got = read_frames(fd, pos)
                assert got.corrupt_at is None, f"CRC error in {path} at {got.corrupt_at}"
                if not got.frames:
                    break
                for _, payload in got.frames:
                    if payload[0] == codec.KIND_HEARTBEAT:
                        last = codec.decode_heartbeat(payload)
                pos = got.end
        finally:
            os.close(fd)
        beats[path.name] = last
    return beats


def _check_series(api: mltrail.Api, run_id: str, acks: list[int]) -> int:
    """Every key holds the same steps 0..n-1, once each, with the logged values; returns n."""
    record = api.run(run_id)
    per_key = {}
    for i, key in enumerate(KEYS):
        if key not in record.metrics:
            per_key[key] = np.array([], dtype=np.int64)
            continue
        series = api.history(run_id, key)
        np.testing.assert_array_equal(series.values, series.steps * 100.0 + i)
        per_key[key] = series.steps
        assert record.metrics[key].count == len(series)
    lengths = {key: len(steps) for key, steps in per_key.items()}
    assert len(set(lengths.values())) == 1, f"a step is partially present: {lengths}"
    n = lengths[KEYS[0]]
    for steps in per_key.values():
        np.testing.assert_array_equal(steps, np.arange(n))  # a prefix, each step once
    if acks:
        assert n >= max(acks) + 1, f"ACKed step {max(acks)} lost; only {n} steps stored"
    return n


def _check_crashed(
    api: mltrail.Api, store: Path, child: Child, beats: dict[str, int | None]
) -> None:
    acks = child.acks()
    ids = _stored_run_ids(store)
    run_id = child.run_id()
    assert len(ids) <= 1
    if acks:
        assert ids == [run_id]
    for got in api.recovered:
        assert got.corrupt_at is None, got
        assert got.error is None, got
    if ids:
        record = api.run(ids[0])
        assert record.status is RunStatus.CRASHED
        assert record.end_ms == record.heartbeat_ms
        spool_beats = [b for b in beats.values() if b is not None]
        # the end is the last heartbeat the process wrote (its creation time before any)
        assert record.heartbeat_ms == max(spool_beats, default=record.created_ms)
        if acks:
            assert record.params.items() >= EXPECTED_PARAMS.items()
            assert record.tags.items() >= EXPECTED_TAGS.items()
        _check_series(api, ids[0], acks)
    if (store / "mltrail.db").exists():
        _integrity_ok(store)
    assert _spool_files(store) == []


# -- SIGKILL -------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(10))
def test_sigkill_keeps_every_acked_step_and_marks_crashed(tmp_path: Path, seed: int) -> None:
    """kill -9 after a random 0.1-3 s: ACKed steps whole, status crashed at the last heartbeat."""
    delay = random.Random(seed).uniform(0.1, 3.0)
    store = tmp_path / "store"
    with spawn(tmp_path, store, "loop") as child:
        time.sleep(delay)  # the random moment is the point of the test
        assert child.signal_and_wait(signal.SIGKILL) == -signal.SIGKILL, child.stderr()
    beats = _scan_spools(store)
    api = mltrail.Api(store)  # the next open reaps the dead process's run at once
    _check_crashed(api, store, child, beats)


@pytest.mark.parametrize("seed", range(3))
def test_sigkill_reads_as_crashed_by_heartbeat_without_recovery(tmp_path: Path, seed: int) -> None:
    """Without recovery, a killed run reads crashed within 3 heartbeats + 1 s, never finished."""
    rng = random.Random(100 + seed)
    store = tmp_path / "store"
    with spawn(tmp_path, store, "loop") as child:
        child.wait_for_line("ACK ")
        time.sleep(rng.uniform(0.0, 1.0))
        killed_at = time.monotonic()
        killed_ms = time.time_ns() // 1_000_000
        assert child.signal_and_wait(signal.SIGKILL) == -signal.SIGKILL
    run_id = child.run_id()
    assert run_id is not None
    reader = open_store(str(store), shared=False)  # reads only: applies no spool
    seen = []
    try:
        while True:
            waited = time.monotonic() - killed_at  # before the read: a slow read is no excuse
            record = reader.get_run(run_id)
            seen.append(record.status)
            if record.status is RunStatus.CRASHED:
                break
            assert waited < 3 * HEARTBEAT_S + 1.0, (
                f"still {record.status} {waited:.2f} s after kill"
            )
            time.sleep(0.05)
    finally:
        reader.close()
    assert set(seen) <= {RunStatus.RUNNING, RunStatus.CRASHED}
    assert record.end_ms == record.heartbeat_ms
    assert record.end_ms is not None
    assert record.end_ms <= killed_ms + 5
    assert len(_spool_files(store)) == 1  # nothing recovered it
    beats = _scan_spools(store)
    api = mltrail.Api(store)
    _check_crashed(api, store, child, beats)


# -- companions: how the process ended decides the status ----------------------------------


def test_sigterm_finishes_run_as_killed(tmp_path: Path) -> None:
    """SIGTERM: the handler drains the spool and records killed; the signal still ends it."""
    store = tmp_path / "store"
    with spawn(tmp_path, store, "loop") as child:
        child.wait_for_line("ACK ")
        assert child.signal_and_wait(signal.SIGTERM) == -signal.SIGTERM, child.stderr()
    api = mltrail.Api(store)
    assert api.recovered == []  # the child drained and removed its spool itself
    run_id = child.run_id()
    assert run_id is not None
    record = api.run(run_id)
    assert record.status is RunStatus.KILLED
    assert record.end_ms is not None
    assert record.params.items() >= EXPECTED_PARAMS.items()
    assert record.tags.items() >= EXPECTED_TAGS.items()
    _check_series(api, run_id, child.acks())
    assert "mltrail:" not in child.stderr()
    assert _spool_files(store) == []
    _integrity_ok(store)


@pytest.mark.parametrize(
    ("mode", "status", "exit_codes"),
    [
        ("raise_in_with", RunStatus.FAILED, {1}),
        ("exit0_in_with", RunStatus.FINISHED, {0}),
        ("exit3_in_with", RunStatus.FAILED, {3}),
        ("kbint_in_with", RunStatus.KILLED, {130, -signal.SIGINT}),
        ("no_finish", RunStatus.FINISHED, {0}),
        ("raise_top", RunStatus.FAILED, {1}),
        ("exit0_top", RunStatus.FINISHED, {0}),
        ("exit4_top", RunStatus.FAILED, {4}),
    ],
)
def test_process_end_sets_status(
    tmp_path: Path, mode: str, status: RunStatus, exit_codes: set[int]
) -> None:
    """Exception or sys.exit(non-zero) → failed, sys.exit(0) → finished, ^C → killed, a plain
    end → finished (atexit)."""
    store = tmp_path / "store"
    with spawn(tmp_path, store, mode) as child:
        assert child.wait() in exit_codes, child.stderr()
    api = mltrail.Api(store)
    assert api.recovered == []  # the process itself drained its spool before exiting
    run_id = child.run_id()
    assert run_id is not None
    record = api.run(run_id)
    assert record.status is status
    assert record.end_ms is not None
    assert record.end_ms >= record.created_ms
    assert record.params.items() >= EXPECTED_PARAMS.items()
    assert record.tags.items() >= EXPECTED_TAGS.items()
    assert _check_series(api, run_id, child.acks()) == FINITE_STEPS
    assert "mltrail:" not in child.stderr()
    assert _spool_files(store) == []
    _integrity_ok(store)


# -- the spool reader ----------------------------------------------------------------------

SPOOL_KEYS = ("a", "b", "c")


def _spool_frames(run_id: str, steps: int, config: dict[str, object] | None = None) -> list[bytes]:
    """The frames a run writes: header, creation, keyset, one metrics frame per step and a
    heartbeat after every 5th step. Values are ``step * 10 + key index``."""
    payloads = [
        codec.encode_json(codec.KIND_HEADER, {"run_id": run_id, "pid": 1, "host": "h"}),
        codec.encode_json(
            codec.KIND_RUN,
            {
                "project": "spool",
                "name": run_id,
                "created_ms": 1_000,
                "heartbeat_s": HEARTBEAT_S,
                "config": config or {},
                "params": {"p": 1},
                "tags": {"t": "x"},
            },
        ),
        codec.encode_json(codec.KIND_KEYSET, {"id": 0, "keys": list(SPOOL_KEYS)}),
    ]
    layout = codec.metrics_struct(len(SPOOL_KEYS))
    for step in range(steps):
        values = [step * 10.0 + i for i in range(len(SPOOL_KEYS))]
        payloads.append(layout.pack(codec.KIND_METRICS, 0, step, 2_000 + step, *values))
        if step % 5 == 4:
            payloads.append(codec.encode_heartbeat(2_000 + step))
    return [codec.frame(p) for p in payloads]


def _offsets(frames: list[bytes]) -> list[int]:
    out, pos = [], 0
    for f in frames:
        out.append(pos)
        pos += len(f)
    return out


def _metric_frame_index(frames: list[bytes], step: int) -> int:
    """Index in ``frames`` of the metrics frame of ``step``."""
    layout = codec.metrics_struct(len(SPOOL_KEYS))
    for i, f in enumerate(frames):
        payload = f[codec.FRAME_HEADER.size :]
        if payload[0] == codec.KIND_METRICS and layout.unpack(payload)[2] == step:
            return i
    raise AssertionError(step)


def _decode_all(path: Path) -> tuple[list[int], int, int | None]:
    """Steps of key ``a`` decoded from a spool, where reading stopped, and corrupt_at."""
    decoder = SpoolDecoder(path, "src")
    try:
        steps: list[int] = []
        pos = 0
        while (batch := decoder.next_batch(pos, max_bytes=256)) is not None:
            if "a" in batch.metrics:
                steps.extend(int(s) for s in batch.metrics["a"].steps)
            pos = batch.end
        return steps, pos, decoder.corrupt_at
    finally:
        decoder.close()


def _frame_ends(frames: list[bytes]) -> list[int]:
    return list(itertools.accumulate(len(f) for f in frames))


def test_reader_ignores_a_truncated_tail_at_every_byte(tmp_path: Path) -> None:
    """Cut anywhere, the reader yields exactly the whole frames before the cut, never an error."""
    frames = _spool_frames("trunc", 12)
    data = b"".join(frames)
    ends = _frame_ends(frames)
    path = tmp_path / "x.spool"
    for cut in range(len(data) + 1):
        path.write_bytes(data[:cut])
        steps, stopped, corrupt_at = _decode_all(path)
        assert corrupt_at is None, cut
        assert stopped == max([0, *(e for e in ends if e <= cut)]), cut
        expected = [s for s in range(12) if ends[_metric_frame_index(frames, s)] <= cut]
        assert steps == expected, cut


def _write_spool(store: Path, run_id: str, frames: list[bytes]) -> Path:
    folder = store / "spool"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{run_id}.0000abcd.spool"
    path.write_bytes(b"".join(frames))
    return path


def _steps(api: mltrail.Api, run_id: str) -> list[int]:
    return [int(s) for s in api.history(run_id, "a").steps]


def test_recovery_applies_all_before_a_truncated_tail(tmp_path: Path) -> None:
    """Recovery of a spool cut mid-frame applies every whole frame and reports the cut tail."""
    store = tmp_path / "store"
    frames = _spool_frames("truncrun0001", 20)[:-1]  # ends with the metrics of step 19
    path = _write_spool(store, "truncrun0001", frames)
    size = path.stat().st_size
    with path.open("r+b") as f:
        f.truncate(size - 7)
    api = mltrail.Api(store)
    [got] = api.recovered
    [d] = got.damage
    assert (d.start, d.end, d.reason, d.frames, d.points) == (
        size - len(frames[-1]),
        size - 7,
        "truncated tail",
        1,
        len(SPOOL_KEYS),
    )
    assert got.error is None
    assert _steps(api, "truncrun0001") == list(range(19))
    record = api.run("truncrun0001")
    assert record.status is RunStatus.CRASHED
    assert record.end_ms == record.heartbeat_ms == 2_000 + 14  # the last whole heartbeat
    assert record.params == {"p": 1}
    assert [p.name for p in _spool_files(store)] == [f"{path.name}{DAMAGED_SUFFIX}"]
    _integrity_ok(store)


def test_recovery_skips_a_crc_error_and_reports_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A flipped byte mid-spool: every frame but the damaged one is applied, and reported."""
    store = tmp_path / "store"
    frames = _spool_frames("crcrun000001", 20)
    bad = _metric_frame_index(frames, 10)
    at = _offsets(frames)[bad]
    path = _write_spool(store, "crcrun000001", frames)
    with path.open("r+b") as f:
        f.seek(at + codec.FRAME_HEADER.size + 9)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0x10]))
    with caplog.at_level(logging.WARNING, logger="mltrail"):
        api = mltrail.Api(store)
    [got] = api.recovered
    assert got.corrupt_at == at
    assert [(d.frames, d.points) for d in got.damage] == [(1, len(SPOOL_KEYS))]
    assert got.error is None
    assert _steps(api, "crcrun000001") == [s for s in range(20) if s != 10]
    assert api.run("crcrun000001").status is RunStatus.CRASHED
    assert any(str(at) in r.getMessage() and "damaged" in r.getMessage() for r in caplog.records)
    assert [p.name for p in _spool_files(store)] == [f"{path.name}{DAMAGED_SUFFIX}"]
    _integrity_ok(store)


def test_recovery_of_a_spool_whose_run_was_never_created(tmp_path: Path) -> None:
    """A process killed before its creation frame was whole leaves nothing to apply, no error."""
    store = tmp_path / "store"
    frames = _spool_frames("nocreate0001", 3)
    _write_spool(store, "nocreate0001", frames[:1])  # the header only
    _write_spool(store, "nocreate0002", [*frames[:1], frames[1][:-3]])  # creation cut short
    healthy = _spool_frames("healthy00001", 3)
    _write_spool(store, "healthy00001", healthy)
    api = mltrail.Api(store)
    by_id = {r.run_id: r for r in api.recovered}
    assert sorted(by_id) == ["healthy00001", "nocreate0001"]
    [cut] = by_id["nocreate0001"].damage  # the creation cut short is reported, not hidden
    assert (cut.reason, cut.frames, cut.points) == ("truncated tail", 1, 0)
    assert by_id["nocreate0001"].error is None
    assert _steps(api, "healthy00001") == [0, 1, 2]
    assert _stored_run_ids(store) == ["healthy00001"]
    assert [p.name for p in _spool_files(store)] == [f"nocreate0002.0000abcd.spool{DAMAGED_SUFFIX}"]


def test_recovery_reports_metrics_whose_keyset_is_unknown(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Metric frames of an undeclared keyset are skipped and counted; the rest is applied."""
    store = tmp_path / "store"
    frames = _spool_frames("undecodable1", 3)
    layout = codec.metrics_struct(2)
    orphan = codec.frame(layout.pack(codec.KIND_METRICS, 9, 0, 0, 1.0, 2.0))  # keyset 9 unknown
    _write_spool(store, "undecodable1", [*frames[:-1], orphan, frames[-1]])
    _write_spool(store, "healthy00002", _spool_frames("healthy00002", 3))
    with caplog.at_level(logging.WARNING, logger="mltrail"):
        api = mltrail.Api(store)
    by_id = {r.run_id: r for r in api.recovered}
    assert by_id["healthy00002"].error is None
    [d] = by_id["undecodable1"].damage
    assert (d.reason, d.frames, d.points) == ("unknown keyset", 1, 2)
    assert _steps(api, "healthy00002") == [0, 1, 2]
    assert _steps(api, "undecodable1") == [0, 1, 2]
    assert [p.name for p in _spool_files(store)] == [f"undecodable1.0000abcd.spool{DAMAGED_SUFFIX}"]
    assert any("undecodable1" in r.getMessage() for r in caplog.records)
    assert mltrail.Api(store).recovered == []  # set aside: not retried on every open


def test_recovery_sets_aside_a_spool_the_store_refuses(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A spool whose run cannot be created (its creation frame lost) is kept as .bad."""
    store = tmp_path / "store"
    frames = _spool_frames("nocreation01", 3)
    _write_spool(store, "nocreation01", [frames[0], *frames[2:]])  # no RUN frame
    with caplog.at_level(logging.ERROR, logger="mltrail"):
        api = mltrail.Api(store)
    [got] = api.recovered
    assert got.error is not None and "nocreation01" in got.error
    assert got.kept is not None and got.kept.endswith(BAD_SUFFIX)
    assert [p.name for p in _spool_files(store)] == [f"nocreation01.0000abcd.spool{BAD_SUFFIX}"]


def test_run_frame_larger_than_the_read_window(tmp_path: Path) -> None:
    """A creation frame over 4 MB (a big config) is applied, not split from its header."""
    store = tmp_path / "store"
    config = {f"k{i}": "x" * 60_000 for i in range(80)}  # about 4.8 MB of JSON
    _write_spool(store, "bigconfig001", _spool_frames("bigconfig001", 3, config=config))
    api = mltrail.Api(store)
    [got] = api.recovered
    assert got.error is None
    record = api.run("bigconfig001")
    assert record.config == config
    assert _steps(api, "bigconfig001") == [0, 1, 2]


def test_live_run_with_a_big_config_reaches_the_store(tmp_path: Path) -> None:
    """The writer applies a run whose creation frame exceeds one read window."""
    store = tmp_path / "store"
    config = {f"k{i}": "x" * 60_000 for i in range(80)}
    with mltrail.init(project="big", config=config, store=store, heartbeat_s=HEARTBEAT_S) as run:
        run.log({"a": 1.0})
        assert run.flush(timeout=60)
    record = mltrail.Api(store).run(run.run_id)
    assert record.status is RunStatus.FINISHED
    assert len(record.params) == len(config)


def test_new_run_is_not_blocked_by_leftover_bad_spools(tmp_path: Path) -> None:
    """A new run's writer recovers around header-only and undecodable spools and flushes."""
    store = tmp_path / "store"
    frames = _spool_frames("leftover0001", 3)
    _write_spool(store, "leftover0001", frames[:1])
    layout = codec.metrics_struct(1)
    _write_spool(
        store,
        "leftover0002",
        [*frames[:2], codec.frame(layout.pack(codec.KIND_METRICS, 5, 0, 0, 1.0))],
    )
    with mltrail.init(project="next", store=store, heartbeat_s=HEARTBEAT_S) as run:
        run.log({"a": 1.0})
        assert run.flush(timeout=60)
    assert mltrail.Api(store).run(run.run_id).status is RunStatus.FINISHED
    assert [p.name for p in _spool_files(store)] == [f"leftover0002.0000abcd.spool{DAMAGED_SUFFIX}"]


def test_recovery_never_sees_a_spool_before_its_owner_locks_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A recoverer running between a spool's creation and its owner's flock cannot take it."""
    location = resolve_location(tmp_path / "store")
    store = open_store(location)
    real_lock = spool_mod.try_lock
    recovered = []

    def lock_after_a_recoverer_ran(fd: int) -> bool:
        recovered.extend(recover_spools(store, location.spool_dir))
        return real_lock(fd)

    monkeypatch.setattr(spool_mod, "try_lock", lock_after_a_recoverer_ran)
    header = codec.frame(codec.encode_json(codec.KIND_HEADER, {"run_id": "racer0000001"}))
    appender = SpoolAppender(location.spool_dir / "racer0000001.0000abcd.spool", header=header)
    try:
        appender.append(codec.frame(codec.encode_heartbeat(1)))
        assert recovered == []
        assert appender.path.exists()
        assert [p for _, p in iter_all_frames(appender.path)][0].tobytes() == header[8:]
        assert recover_spools(store, location.spool_dir) == []  # locked by its owner
        assert appender.path.exists()
    finally:
        appender.close()
    assert _spool_files(tmp_path / "store") == [appender.path]  # no temporary name left


def test_concurrent_creation_and_recovery_lose_no_spool(tmp_path: Path) -> None:
    """Spools created while another thread recovers in a loop are never taken from their owner."""
    location = resolve_location(tmp_path / "store")
    store = open_store(location)
    stop = threading.Event()
    errors: list[BaseException] = []

    def recover_forever() -> None:
        while not stop.is_set():
            try:
                recover_spools(store, location.spool_dir)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

    thread = threading.Thread(target=recover_forever)
    thread.start()
    lost = []
    try:
        for i in range(500):
            run_id = f"race{i:08d}"
            header = codec.frame(codec.encode_json(codec.KIND_HEADER, {"run_id": run_id}))
            appender = SpoolAppender(location.spool_dir / f"{run_id}.0.spool", header=header)
            if not appender.path.exists():
                lost.append(run_id)
            appender.path.unlink(missing_ok=True)  # as Run.finish does: unlink, then unlock
            appender.close()
    finally:
        stop.set()
        thread.join()
    assert errors == []
    assert lost == []


def test_recovery_sweeps_spools_abandoned_while_being_created(tmp_path: Path) -> None:
    """A spool left under its temporary name for 10 minutes is removed; a fresh one is not."""
    location = resolve_location(tmp_path / "store")
    location.spool_dir.mkdir(parents=True)
    old = location.spool_dir / ".dead00000001.0.spool.new"
    fresh = location.spool_dir / ".live00000001.0.spool.new"
    old.write_bytes(b"")
    fresh.write_bytes(b"")
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))
    assert recover_spools(open_store(location), location.spool_dir) == []
    assert _spool_files(tmp_path / "store") == [fresh]
