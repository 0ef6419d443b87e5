"""TESTS.md (d) rows 1-21 and 36-40 through REST: values, names, limits, bodies."""

from __future__ import annotations

import json
import math
import struct
import unicodedata

import numpy as np
import pytest
from srvhelp import Client, Server, new_run


def _log(api: Client, run_id: str, **body: object):  # type: ignore[no-untyped-def]
    return api.post(f"/api/v1/runs/{run_id}/log", json=body)


def _raw(api: Client, run_id: str, key: str) -> tuple[list[int], list[float]]:
    r = api.get(
        f"/api/v1/runs/{run_id}/series",
        params={"key": key, "raw": 1},
        headers={"Accept": "application/octet-stream"},
    )
    assert r.status_code == 200, r.text
    n = int(r.headers["x-mltrail-points"])
    steps = np.frombuffer(r.content[: 8 * n], "<i8").tolist()
    values = np.frombuffer(r.content[16 * n :], "<f8").tolist()
    return steps, values


def test_rows_1_to_5_values_round_trip_exactly(api: Client) -> None:
    run_id = new_run(api)["run_id"]
    values = ["NaN", "Infinity", "-Infinity", -0.0, 1e308, 5e-324, 1.7976931348623157e308]
    pts = [{"key": "v", "value": x, "step": i} for i, x in enumerate(values)]
    assert _log(api, run_id, metrics=pts).status_code == 200
    _, got = _raw(api, run_id, "v")
    assert math.isnan(got[0]) and got[1] == math.inf and got[2] == -math.inf
    assert struct.pack("<d", got[3]) == struct.pack("<d", -0.0)  # the sign survives
    assert got[4:] == [1e308, 5e-324, 1.7976931348623157e308]
    # and the JSON forms are strict JSON
    text = api.get(f"/api/v1/runs/{run_id}/series", params={"key": "v", "raw": 1}).text

    def reject(name: str) -> None:
        raise AssertionError(f"bare {name} in JSON")

    body = json.loads(text, parse_constant=reject)
    assert body["values"][:3] == ["NaN", "Infinity", "-Infinity"]


@pytest.mark.parametrize("value", ["0.5", {}, None, [], True, False, "nan"])
def test_rows_6_7_non_numbers_are_422_naming_the_key(api: Client, value: object) -> None:
    run_id = new_run(api)["run_id"]
    r = _log(api, run_id, metrics=[{"key": "my_loss", "value": value, "step": 0}])
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["field"] == "body.metrics.0.value"
    assert "my_loss" in err["message"]


def test_row_8_9_steps(api: Client) -> None:
    run_id = new_run(api)["run_id"]
    ok = _log(api, run_id, metrics=[{"key": "s", "value": 1, "step": 2**63 - 1}])
    assert ok.status_code == 200
    assert _raw(api, run_id, "s")[0] == [2**63 - 1]
    for step in (2**63, -1, 1.5, "3", True):
        r = _log(api, run_id, metrics=[{"key": "s", "value": 1, "step": step}])
        assert r.status_code == 422, step
        assert r.json()["error"]["field"] == "body.metrics.0.step"


def test_row_10_unordered_and_duplicate_steps_all_kept(api: Client) -> None:
    run_id = new_run(api)["run_id"]
    pts = [
        {"key": "k", "value": float(s), "step": s, "timestamp_ms": 10 + i}
        for i, s in enumerate([5, 3, 4, 4])
    ]
    assert _log(api, run_id, metrics=pts).status_code == 200
    steps, values = _raw(api, run_id, "k")
    assert steps == [3, 4, 4, 5] and values == [3.0, 4.0, 4.0, 5.0]


@pytest.mark.parametrize(
    ("key", "ok"),
    [
        ("", False),
        ("x" * 251, False),
        ("é" * 126, False),  # 252 bytes
        ("x" * 250, True),
        ("../x", True),
        ("a/b", True),
        ("..", True),
        ("bad\x00name", False),
        ("\ud800", False),
    ],
)
def test_rows_11_12_15_16_names(api: Client, srv: Server, key: str, ok: bool) -> None:
    run_id = new_run(api)["run_id"]
    before = sorted(p for p in srv.artifacts.rglob("*"))
    body = json.dumps({"metrics": [{"key": key, "value": 1, "step": 0}]}).encode()
    r = api.post(
        f"/api/v1/runs/{run_id}/log", content=body, headers={"Content-Type": "application/json"}
    )
    assert (r.status_code == 200) is ok, r.text
    if not ok:
        assert r.status_code == 422 and r.json()["error"]["field"].startswith("body.metrics.0.key")
    assert sorted(p for p in srv.artifacts.rglob("*")) == before  # no file for a name


def test_row_13_nfc_and_row_21_case(api: Client) -> None:
    run_id = new_run(api)["run_id"]
    nfc, nfd = unicodedata.normalize("NFC", "é"), unicodedata.normalize("NFD", "é")
    pts = [
        {"key": nfc, "value": 1, "step": 0},
        {"key": nfd, "value": 2, "step": 1},
        {"key": "lr", "value": 1, "step": 0},
        {"key": "LR", "value": 2, "step": 0},
    ]
    assert _log(api, run_id, metrics=pts).status_code == 200
    metrics = api.get(f"/api/v1/runs/{run_id}").json()["metrics"]
    assert sorted(metrics) == sorted(["LR", "lr", nfc])
    assert metrics[nfc]["count"] == 2


def test_rows_14_17_text_round_trips_raw(api: Client) -> None:
    odd = "\u202eabc\u200d👩‍👩‍👧\U0001f600𝔘"
    script = "<script>alert(1)</script>"
    run = new_run(api, tags={"t": script, odd: odd}, params={"p": odd})
    got = api.get(f"/api/v1/runs/{run['run_id']}").json()
    assert got["tags"] == {"t": script, odd: odd} and got["params"]["p"] == odd


def test_row_15_18_values_limits(api: Client) -> None:
    run_id = new_run(api)["run_id"]
    big = "x" * (64 * 1024 + 1)
    for body in ({"params": {"p": big}}, {"tags": {"t": big}}, {"tags": {"t": "a\x00b"}}):
        r = _log(api, run_id, **body)
        assert r.status_code == 422, body.keys()
        assert "65536" in r.json()["error"]["message"] or "NUL" in r.json()["error"]["message"]
    assert _log(api, run_id, tags={"t": "x" * 64 * 1024}).status_code == 200


def test_row_19_too_many_points_is_413(api: Client) -> None:
    run_id = new_run(api)["run_id"]
    pts = [{"key": "k", "value": 1, "step": i} for i in range(10_001)]
    r = _log(api, run_id, metrics=pts)
    assert r.status_code == 413 and "10000" in r.json()["error"]["message"]
    assert "k" not in api.get(f"/api/v1/runs/{run_id}").json()["metrics"]
    million = b'{"metrics": [' + b'{"key":"k","value":1,"step":1},' * 1_000_000 + b"{}]}"
    r = api.post(
        f"/api/v1/runs/{run_id}/log", content=million, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413


def test_row_20_params_immutable(api: Client) -> None:
    run_id = new_run(api, params={"lr": 0.1})["run_id"]
    assert _log(api, run_id, params={"lr": 0.1}).status_code == 200
    r = _log(api, run_id, params={"lr": 0.2})
    assert r.status_code == 409 and r.json()["error"]["code"] == "param_conflict"
    assert _log(api, run_id, params={"lr": "0.1"}).status_code == 409  # another type


def test_row_36_max_results_and_page_tokens(api: Client) -> None:
    for _ in range(3):
        new_run(api)
    for bad in (-1, 0):
        r = api.get("/api/v1/runs", params={"max_results": bad})
        assert r.status_code == 422 and r.json()["error"]["field"] == "query.max_results"
    huge = api.get("/api/v1/runs", params={"max_results": 10**9})
    assert huge.status_code == 200 and len(huge.json()["runs"]) == 3  # clamped to 10,000
    for token in ("forged", "eyJ2IjogMX0", "A" * 5000):
        r = api.get("/api/v1/runs", params={"page_token": token})
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_page_token"
    first = api.get("/api/v1/runs", params={"max_results": 1}).json()["next_page_token"]
    foreign = api.get("/api/v1/runs", params={"page_token": first, "filter": "params.x = 1"})
    assert foreign.status_code == 400


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"project": 5}, "body.project"),
        ({}, "body.project"),
        ({"project": "p", "artifact_location": "file:///etc"}, "body.artifact_location"),
        ({"project": "p", "source": "http://169.254.169.254/"}, "body.source"),
        ({"project": "p", "tags": {"a": 1}}, "body.tags.a"),
        ({"project": "p", "heartbeat_s": -1}, "body.heartbeat_s"),
    ],
)
def test_rows_31_37_wrong_types_missing_and_unknown_fields(
    api: Client, body: dict[str, object], field: str
) -> None:
    r = api.post("/api/v1/runs", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field
    assert api.get("/api/v1/runs").json()["runs"] == []


def test_row_38_huge_body_is_413_before_parsing(api: Client, srv: Server) -> None:
    run_id = new_run(api)["run_id"]
    big = b"x" * (17 * 1024 * 1024)
    r = api.post(
        f"/api/v1/runs/{run_id}/log", content=big, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"

    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(20):
            yield b"x" * (1024 * 1024)

    r = api.post(
        f"/api/v1/runs/{run_id}/log", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413  # chunked, no Content-Length
    upload = api.put(
        f"/api/v1/runs/{run_id}/files",
        params={"path": "big.bin"},
        content=b"0" * (65 * 1024 * 1024),
        headers={"X-Content-Digest": "sha256:" + "0" * 64},
    )
    assert upload.status_code == 413
    assert not [p for p in (srv.artifacts / "files").rglob("*") if p.is_file()]


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"project": "p"',
        b'{"project": "\xff\xfe"}',
        b"",
        b"null",
        b'{"project": "p"}garbage',
    ],
)
def test_row_39_malformed_json_is_4xx_never_500(api: Client, body: bytes) -> None:
    r = api.post("/api/v1/runs", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code in (400, 422), (r.status_code, r.text[:200])
    assert set(r.json()) == {"error"}


def test_row_40_content_types(api: Client) -> None:
    body = json.dumps({"project": "p"}).encode()
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        r = api.post("/api/v1/runs", content=body, headers={"Content-Type": ctype})
        assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type"
    gz = api.post(
        "/api/v1/runs",
        content=b"\x1f\x8b" + b"\x00" * 20,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert gz.status_code == 415
    ok = api.post(
        "/api/v1/runs", content=body, headers={"Content-Type": "application/json; charset=utf-8"}
    )
    assert ok.status_code == 201


def test_unknown_errors_are_500_json_without_traceback(srv: Server, api: Client) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internal detail /etc/db-password")

    srv.app.state.store.list_projects = boom  # an unexpected failure deep inside
    r = api.get("/api/v1/projects")
    assert r.status_code == 500
    assert r.json() == {
        "error": {"code": "internal_error", "message": "internal server error (see the log)"}
    }
    assert "secret" not in r.text and "Traceback" not in r.text
