"""The spool never loses an acknowledged event: failed appends are cut back, and damage
anywhere (a flipped byte, a cut, inserted bytes) costs only the frames it touched.

Covers issue items 1 (a failed append poisons the spool) and 2 (one bad byte discards
everything after it), byte-level damage at every offset of a small spool, and the report:
``mltrail sync`` output, the run's ``mltrail.spool_damage`` tag, the spool kept aside.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

import mltrail
from mltrail.entities import RunStatus
from mltrail.errors import SpoolError
from mltrail.events import codec
from mltrail.events.decode import SpoolDecoder
from mltrail.events.recovery import DAMAGE_TAG, DAMAGED_SUFFIX
from mltrail.events.spool import read_frames
from mltrail.store.registry import forget_open_stores
from mltrail.testing.faults import FaultInjector

KEYS = ("a", "b", "c")
HEARTBEAT_S = 0.5


@pytest.fixture(autouse=True)
def _close_stores():
    yield
    forget_open_stores()


def _frames(run_id: str, steps: int) -> list[bytes]:
    """Header, creation, keyset, then a metrics frame per step (a heartbeat every 5th)."""
    payloads = [
        codec.encode_json(codec.KIND_HEADER, {"run_id": run_id, "pid": 1, "host": "h"}),
        codec.encode_json(
            codec.KIND_RUN,
            {
                "project": "dmg",
                "name": run_id,
                "created_ms": 1_000,
                "heartbeat_s": 0.5,
                "params": {"p": 1},
                "tags": {"t": "x"},
            },
        ),
        codec.encode_json(codec.KIND_KEYSET, {"id": 0, "keys": list(KEYS)}),
    ]
    layout = codec.metrics_struct(len(KEYS))
    for step in range(steps):
        values = [step * 10.0 + i for i in range(len(KEYS))]
        payloads.append(layout.pack(codec.KIND_METRICS, 0, step, 2_000 + step, *values))
        if step % 5 == 4:
            payloads.append(codec.encode_heartbeat(2_000 + step))
    return [codec.frame(p) for p in payloads]


def _metric_frames(frames: list[bytes]) -> dict[int, tuple[int, int]]:
    """step -> (start, end) offsets of its metrics frame."""
    out, pos = {}, 0
    layout = codec.metrics_struct(len(KEYS))
    for f in frames:
        payload = f[codec.FRAME_HEADER.size :]
        if payload[0] == codec.KIND_METRICS:
            out[layout.unpack(payload)[2]] = (pos, pos + len(f))
        pos += len(f)
    return out


def _decode(path: Path) -> tuple[list[int], SpoolDecoder]:
    """Steps of key ``a`` a final decoder reads from the whole spool, and the decoder."""
    decoder = SpoolDecoder(path, "src")
    decoder.final = True
    steps: list[int] = []
    pos = 0
    try:
        while (batch := decoder.next_batch(pos, max_bytes=256)) is not None:
            assert batch.end > pos
            if "a" in batch.metrics:
                steps.extend(int(s) for s in batch.metrics["a"].steps)
                assert list(batch.metrics["a"].values) == [
                    s * 10.0 for s in batch.metrics["a"].steps
                ]
            pos = batch.end
    finally:
        decoder.close()
    assert pos == path.stat().st_size  # the decoder went to the end of the file
    return steps, decoder


# -- item 2: resynchronisation at every offset ---------------------------------------------


def test_flip_at_every_offset_keeps_every_intact_frame(tmp_path: Path) -> None:
    """A flipped byte anywhere loses only the frame it hit, and the report covers that byte."""
    frames = _frames("flip", 12)
    data = b"".join(frames)
    spans = _metric_frames(frames)
    keyset_end = sum(len(f) for f in frames[:3])
    keyset_start = keyset_end - len(frames[2])
    path = tmp_path / "x.spool"
    for pos in range(len(data)):
        damaged = bytearray(data)
        damaged[pos] ^= 0xFF
        path.write_bytes(bytes(damaged))
        steps, decoder = _decode(path)
        if keyset_start <= pos < keyset_end:  # the names are gone: every metric is lost
            assert steps == [], pos
            lost = sum(d.points or 0 for d in decoder.damage if d.reason == "unknown keyset")
            assert lost == 12 * len(KEYS), pos
        else:
            hit = [s for s, (a, b) in spans.items() if a <= pos < b]
            assert steps == [s for s in range(12) if s not in hit], pos
        assert any(d.start <= pos < d.end for d in decoder.damage), (pos, decoder.damage)
        if pos >= keyset_end:  # past the keyset, the report says exactly what was lost
            [d] = decoder.damage
            assert d.frames == 1, (pos, d)
            assert d.points == (len(KEYS) if any(a <= pos < b for a, b in spans.values()) else 0), (
                pos,
                d,
            )


def test_cut_at_every_offset_reports_the_tail(tmp_path: Path) -> None:
    """A spool cut anywhere yields every whole frame; a cut mid-frame is reported."""
    frames = _frames("cut", 8)
    data = b"".join(frames)
    ends = {sum(len(f) for f in frames[: i + 1]) for i in range(len(frames))} | {0}
    spans = _metric_frames(frames)
    path = tmp_path / "x.spool"
    for cut in range(len(data) + 1):
        path.write_bytes(data[:cut])
        steps, decoder = _decode(path)
        assert steps == [s for s, (_, b) in spans.items() if b <= cut], cut
        if cut in ends:
            assert decoder.damage == [], cut
        else:
            [d] = decoder.damage
            assert (d.start, d.end, d.reason, d.frames) == (
                max(e for e in ends if e < cut),
                cut,
                "truncated tail",
                1,
            ), cut
            in_metric = any(a <= d.start < b for a, b in spans.values())
            if d.start + codec.FRAME_HEADER.size < cut:  # the kind byte survived
                assert d.points == (len(KEYS) if in_metric else 0), cut


def test_bytes_inserted_at_every_offset(tmp_path: Path) -> None:
    """Garbage inserted anywhere past the keyset loses at most the frame it landed in."""
    frames = _frames("ins", 8)
    data = b"".join(frames)
    spans = _metric_frames(frames)
    keyset_end = sum(len(f) for f in frames[:3])
    path = tmp_path / "x.spool"
    for pos in range(keyset_end, len(data)):
        path.write_bytes(data[:pos] + b"\x07\x00\xff" + data[pos:])
        steps, decoder = _decode(path)
        hit = [s for s, (a, b) in spans.items() if a < pos < b]
        assert steps == [s for s in range(8) if s not in hit], pos
        assert decoder.damage, pos
        assert all(d.start <= pos + 3 and d.end >= pos for d in decoder.damage), pos


def test_one_flipped_byte_in_a_50k_step_spool_loses_one_frame(tmp_path: Path) -> None:
    """The reported case: a flip mid-spool once lost 25,004 points; now it loses one frame."""
    store = tmp_path / "store"
    frames = _frames("bigrun000001", 50_000)
    spans = _metric_frames(frames)
    a, _ = spans[25_000]
    folder = store / "spool"
    folder.mkdir(parents=True)
    path = folder / "bigrun000001.0000abcd.spool"
    damaged = bytearray(b"".join(frames))
    damaged[a + 20] ^= 0x01
    path.write_bytes(bytes(damaged))
    api = mltrail.Api(store)
    [got] = api.recovered
    assert got.error is None
    assert [(d.frames, d.points) for d in got.damage] == [(1, len(KEYS))]
    assert got.points == (50_000 - 1) * len(KEYS)
    steps = api.history("bigrun000001", "a").steps
    assert len(steps) == 49_999
    assert 25_000 not in set(steps.tolist())
    record = api.run("bigrun000001")
    assert "bytes" in record.tags[DAMAGE_TAG] and "1 frame, 3 points" in record.tags[DAMAGE_TAG]
    assert not path.exists()
    assert (folder / (path.name + DAMAGED_SUFFIX)).exists()  # kept, never deleted


def test_sync_reports_what_was_skipped_and_keeps_the_spool(tmp_path: Path) -> None:
    """`mltrail sync` names the byte range, frames and points skipped, and where the spool is."""
    from mltrail.cli.main import app

    store = tmp_path / "store"
    mltrail.Api(store)  # create the store
    frames = _frames("syncdmg00001", 40)
    a, b = _metric_frames(frames)[17]
    folder = store / "spool"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "syncdmg00001.0000abcd.spool"
    damaged = bytearray(b"".join(frames))
    damaged[a + 9] ^= 0x40
    path.write_bytes(bytes(damaged) + b"\x30\x00\x00\x00garbage")  # and a torn tail
    result = CliRunner().invoke(app, ["sync", "--json", "--store", str(store)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    [rec] = report["recovered"]
    assert rec["damage"][0] == {
        "start": a,
        "end": b,
        "reason": "crc mismatch",
        "frames": 1,
        "points": 3,
    }
    assert rec["damage"][1]["reason"] == "truncated tail"
    assert rec["kept"].endswith(DAMAGED_SUFFIX)
    assert Path(rec["kept"]).read_bytes().startswith(bytes(damaged))
    run = mltrail.Api(store).run("syncdmg00001")
    assert run.status is RunStatus.CRASHED
    assert f"bytes {a}-{b}" in run.tags[DAMAGE_TAG]
    # the human form says the same
    path2 = folder / "syncdmg00002.0000abcd.spool"
    frames2 = _frames("syncdmg00002", 10)
    a2, b2 = _metric_frames(frames2)[3]
    bad2 = bytearray(b"".join(frames2))
    bad2[a2 + 12] ^= 1
    path2.write_bytes(bytes(bad2))
    text = CliRunner().invoke(app, ["sync", "--store", str(store)]).output
    assert f"bytes {a2}-{b2} (crc mismatch): 1 frame, 3 points" in " ".join(text.split())
    assert "kept as .damaged" in text


def test_an_intact_spool_is_removed_and_reports_nothing(tmp_path: Path) -> None:
    """No damage, no report: the spool is applied and removed as before."""
    store = tmp_path / "store"
    folder = store / "spool"
    folder.mkdir(parents=True)
    (folder / "clean0000001.0000abcd.spool").write_bytes(b"".join(_frames("clean0000001", 9)))
    api = mltrail.Api(store)
    [got] = api.recovered
    assert got.damage == () and got.kept is None and got.corrupt_at is None
    assert list(folder.iterdir()) == []
    assert DAMAGE_TAG not in api.run("clean0000001").tags


# -- item 1: a failed append never poisons the spool ----------------------------------------


def _whole(path: Path) -> bool:
    """Whether the file is a chain of whole, valid frames to its last byte."""
    fd = os.open(path, os.O_RDONLY)
    try:
        pos = 0
        size = os.fstat(fd).st_size
        while pos < size:
            got = read_frames(fd, pos)
            if got.corrupt_at is not None or not got.frames:
                return False
            pos = got.end
        return True
    finally:
        os.close(fd)


@pytest.mark.parametrize("torn", [True, False], ids=["short-write", "refused-write"])
def test_a_failed_log_is_cut_back_and_later_logs_are_durable(tmp_path: Path, torn: bool) -> None:
    """ENOSPC mid-log: that call raises, the spool stays whole, and every later point lands."""
    store = tmp_path / "store"
    run = mltrail.init(project="full", store=store, heartbeat_s=60, capture=False)
    for step in range(100):
        run.log({"x": float(step)}, step=step)
    assert run.flush(timeout=60)
    with FaultInjector(
        store / "spool", fail_at=1, errno_=errno.ENOSPC, ops={"write"}, sticky=True, torn=torn
    ) as faults:
        for step in range(100, 105):
            with pytest.raises(SpoolError, match="disk full"):
                run.log({"x": float(step)}, step=step)
        assert _whole(run.spool_path)
        faults.heal()
        for step in range(105, 1105):
            run.log({"x": float(step)}, step=step)
    assert _whole(run.spool_path)
    run.finish()
    api = mltrail.Api(store)
    record = api.run(run.run_id)
    assert record.status is RunStatus.FINISHED
    steps = api.history(run.run_id, "x").steps.tolist()
    assert steps == [*range(100), *range(105, 1105)]  # nothing acknowledged is missing


def test_a_failed_heartbeat_does_not_fail_finish(tmp_path: Path) -> None:
    """A heartbeat that hit a full disk is a warning; finish() still returns normally."""
    store = tmp_path / "store"
    run = mltrail.init(project="hb", store=store, heartbeat_s=0.05, capture=False)
    run.log({"x": 1.0})
    with FaultInjector(store / "spool", fail_at=1, ops={"write"}, sticky=True) as faults:
        deadline = 0
        while not faults.fired and deadline < 200:
            os.sched_yield()
            import time

            time.sleep(0.01)
            deadline += 1
        assert faults.fired
        faults.heal()
    run.log({"x": 2.0})
    run.finish()
    assert mltrail.Api(store).run(run.run_id).status is RunStatus.FINISHED


def test_finish_that_fails_to_write_its_status_can_be_retried(tmp_path: Path) -> None:
    """A full disk at finish(): it raises, nothing ends, and a second finish() works."""
    store = tmp_path / "store"
    run = mltrail.init(project="fin", store=store, heartbeat_s=60, capture=False)
    run.log({"x": 1.0})
    with (
        FaultInjector(store / "spool", fail_at=1, ops={"write"}, sticky=True),
        pytest.raises(SpoolError),
    ):
        run.finish()
    assert run.status is RunStatus.RUNNING
    run.finish()
    assert mltrail.Api(store).run(run.run_id).status is RunStatus.FINISHED
