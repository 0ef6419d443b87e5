"""The wire form of batches: exact round trips, and nothing malformed gets through."""

from __future__ import annotations

import json
import math
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mltrail.entities import RunStatus
from mltrail.errors import InvalidArgumentError
from mltrail.store.batch import Batch, MetricSeries, RunCreate, StatusChange
from mltrail.store.wire import decode_batch, encode_batch


def _full_batch() -> Batch:
    import hashlib

    blob = b"diff --git a/x b/x\n+1\n"
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    return Batch(
        run_id="ab" * 16,
        source="src-1",
        start=10,
        end=990,
        create=RunCreate("proj", "run", 123, 5.0, "u", "h", "python t.py", {"lr": 0.1}),
        resume_ms=None,
        params={"lr": 0.01, "opt": "adam", "n": 3, "flag": True, "none": None, "bad": math.nan},
        tags={"note": "<script>alert(1)</script>", "é": "\u202e"},
        metrics={
            "loss": MetricSeries(
                np.array([5, 3, 4, 4], dtype=np.int64),
                np.array([1, 2, 3, 4], dtype=np.int64),
                np.array([math.nan, math.inf, -0.0, 5e-324], dtype=np.float64),
            ),
            "acc": MetricSeries(
                np.array([2**63 - 1], dtype=np.int64),
                np.array([7], dtype=np.int64),
                np.array([1.7976931348623157e308]),
            ),
        },
        heartbeat_ms=456,
        status=StatusChange(RunStatus.FINISHED, 789, only_if_running=False),
        state={"code": {"sha": "abc", "diff": digest}},
        blobs={digest: blob},
        console=[(1, "stdout", "hello"), (2, "stderr", "oops 🚀")],
    )


def test_round_trip_is_exact():
    batch = _full_batch()
    got = decode_batch(encode_batch(batch))
    assert (got.run_id, got.source, got.start, got.end) == ("ab" * 16, "src-1", 10, 990)
    assert got.create == batch.create
    assert got.params["opt"] == "adam" and got.params["flag"] is True
    assert got.params["none"] is None and math.isnan(got.params["bad"])  # type: ignore[arg-type]
    assert got.tags == batch.tags
    for key, col in batch.metrics.items():
        g = got.metrics[key]
        assert g.steps.tolist() == col.steps.tolist()
        assert g.timestamps.tolist() == col.timestamps.tolist()
        assert g.values.tobytes() == col.values.tobytes()  # bit for bit: NaN, -0.0
    assert got.heartbeat_ms == 456 and got.status == batch.status
    assert got.state == batch.state and got.blobs == batch.blobs
    assert got.console == batch.console


def test_every_truncation_is_refused():
    body = encode_batch(_full_batch())
    for cut in range(len(body)):
        with pytest.raises(InvalidArgumentError):
            decode_batch(body[:cut])


def test_trailing_bytes_are_refused():
    with pytest.raises(InvalidArgumentError, match="trailing"):
        decode_batch(encode_batch(_full_batch()) + b"\x00")


def _with_header(**changes: object) -> bytes:
    body = encode_batch(Batch(run_id="r1", source="s", start=0, end=1))
    (n,) = struct.unpack_from("<I", body, 5)
    header = json.loads(body[9 : 9 + n])
    header.update(changes)
    head = json.dumps(header).encode()
    return body[:5] + struct.pack("<I", len(head)) + head


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"run_id": 5}, "run_id"),
        ({"run_id": ""}, "run_id"),
        ({"run_id": "x" * 40}, "run_id"),
        ({"start": 5, "end": 1}, "range"),
        ({"start": True}, "start"),
        ({"params": {"": 1}}, "param name"),
        ({"params": {"a\x00": 1}}, "NUL"),
        ({"params": {"a": [1, 2]}}, "param"),
        ({"params": {"a": {"float": "1e5"}}}, "param value"),
        ({"tags": {"t": 5}}, "tag"),
        ({"tags": {"t": "x" * 70000}}, "limit"),
        ({"status": {"status": "zombie"}}, "status"),
        ({"status": {"status": "finished", "only_if_running": "yes"}}, "only_if_running"),
        ({"create": {"project": "p", "created_ms": 1, "heartbeat_s": -1}}, "heartbeat_s"),
        ({"create": {"project": "", "created_ms": 1, "heartbeat_s": 1}}, "project"),
        ({"metrics": [["loss", 1]]}, "truncated"),
        ({"metrics": [["", 0]]}, "metric name"),
        ({"metrics": [["k", -1]]}, "count"),
        ({"metrics": "loss"}, "metrics"),
        ({"blobs": [["md5:x", 0]]}, "sha256"),
        ({"console": [[1, "stdout"]]}, "console"),
        ({"state": {"code": 5}}, "state"),
        ({"heartbeat_ms": 2**64}, "64-bit"),
    ],
)
def test_bad_header_fields_are_named(changes: dict[str, object], field: str):
    with pytest.raises(InvalidArgumentError, match=field):
        decode_batch(_with_header(**changes))


def test_negative_step_and_wrong_blob_bytes_are_refused():
    batch = Batch(
        run_id="r", metrics={"k": MetricSeries(np.array([-1]), np.array([0]), np.array([1.0]))}
    )
    with pytest.raises(InvalidArgumentError, match="step"):
        decode_batch(encode_batch(batch))
    batch = Batch(run_id="r", blobs={"sha256:" + "0" * 64: b"abc"})
    with pytest.raises(InvalidArgumentError, match="does not match"):
        decode_batch(encode_batch(batch))


def test_names_are_nfc_normalised():
    batch = Batch(run_id="r", tags={"e\u0301": "v"})
    assert list(decode_batch(encode_batch(batch)).tags) == ["\u00e9"]


def test_bad_magic_version_and_header():
    body = encode_batch(Batch(run_id="r"))
    with pytest.raises(InvalidArgumentError, match="magic"):
        decode_batch(b"XXXX" + body[4:])
    with pytest.raises(InvalidArgumentError, match="version"):
        decode_batch(body[:4] + b"\x09" + body[5:])
    with pytest.raises(InvalidArgumentError, match="JSON"):
        decode_batch(body[:5] + struct.pack("<I", 3) + b"\xff\xfe[")
    with pytest.raises(InvalidArgumentError, match="object"):
        decode_batch(body[:5] + struct.pack("<I", 2) + b"[]")
    deep = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(InvalidArgumentError):
        decode_batch(body[:5] + struct.pack("<I", len(deep)) + deep)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise_anything_else(data: bytes):
    for body in (data, b"MLTB\x01" + data):
        try:
            decode_batch(body)
        except InvalidArgumentError:
            pass
