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


# -- JSON Python accepts but the spec does not: out-of-range numbers, bare NaN, repeated keys --


def _post_raw(api: Client, url: str, text: str):  # type: ignore[no-untyped-def]
    return api.post(url, content=text.encode(), headers={"Content-Type": "application/json"})


@pytest.mark.parametrize(
    ("body", "field", "what"),
    [
        ('{"metrics": [{"key": "m", "value": 1e309, "step": 0}]}', "body.metrics.0.value", "1e309"),
        (
            '{"metrics": [{"key": "m", "value": -1E400, "step": 0}]}',
            "body.metrics.0.value",
            "1E400",
        ),
        ('{"params": {"p": 1e309}}', "body.params.p", "float64"),
        ('{"metrics": [{"key": "m", "value": NaN, "step": 0}]}', "body.metrics.0.value", "NaN"),
        ('{"params": {"p": -Infinity}}', "body.params.p", "Infinity"),
    ],
)
def test_numbers_outside_float64_and_bare_nan_are_422(
    api: Client, body: str, field: str, what: str
) -> None:
    """1e309 (which Python reads as inf) and bare NaN/Infinity are 422 naming the field."""
    run_id = new_run(api)["run_id"]
    r = _post_raw(api, f"/api/v1/runs/{run_id}/log", body)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["field"] == field and what in err["message"]
    got = api.get(f"/api/v1/runs/{run_id}").json()
    assert got["metrics"] == {} and got["params"] == {}


def test_out_of_range_number_in_nested_config_is_422(api: Client) -> None:
    """The field of a bad number deep inside a config is named in full."""
    r = _post_raw(api, "/api/v1/runs", '{"project": "p", "config": {"opt": {"lr": [1, 2e308]}}}')
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == "body.config.opt.lr.1"
    assert api.get("/api/v1/runs").json()["runs"] == []


@pytest.mark.parametrize(
    ("body", "field", "key"),
    [
        ('{"project": "p", "project": "q"}', "body", "project"),
        ('{"project": "p", "tags": {"t": "a", "t": "b"}}', "body.tags", "t"),
        ('{"project": "p", "config": {"m": [{"d": 1, "d": 2}]}}', "body.config.m.0", "d"),
    ],
)
def test_duplicate_json_keys_are_422_naming_the_key(
    api: Client, body: str, field: str, key: str
) -> None:
    """A JSON object repeating a key is 422 naming it, instead of keeping the last value."""
    r = _post_raw(api, "/api/v1/runs", body)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["field"] == field and f"duplicate key {key!r}" in err["message"]
    assert api.get("/api/v1/runs").json()["runs"] == []


def test_duplicate_key_in_log_body_is_422(api: Client) -> None:
    """The same on a /log body: nothing of the call is applied."""
    run_id = new_run(api)["run_id"]
    r = _post_raw(api, f"/api/v1/runs/{run_id}/log", '{"tags": {"t": "a", "t": "b"}}')
    assert r.status_code == 422 and r.json()["error"]["field"] == "body.tags"
    assert api.get(f"/api/v1/runs/{run_id}").json()["tags"] == {}


def test_config_flatten_collision_and_nfc_duplicates_are_422(api: Client) -> None:
    """REST config collisions, NFC twins and config/params disagreements are 422 naming keys."""
    r = api.post("/api/v1/runs", json={"project": "p", "config": {"a.b": 1, "a": {"b": 2}}})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == "body.config"
    message = r.json()["error"]["message"]
    assert "['a.b']" in message and "['a']['b']" in message
    nfc, nfd = "caf\u00e9", unicodedata.normalize("NFD", "caf\u00e9")
    for body in ({"params": {nfc: 1, nfd: 2}}, {"tags": {nfc: "a", nfd: "b"}}):
        r = api.post("/api/v1/runs", json={"project": "p", **body})
        assert r.status_code == 422 and "NFC" in r.json()["error"]["message"], r.text
    both = {"project": "p", "config": {"opt": {"lr": 0.1}}, "params": {"opt.lr": 0.2}}
    r = api.post("/api/v1/runs", json=both)
    assert r.status_code == 422 and "'opt.lr'" in r.json()["error"]["message"], r.text
    assert api.get("/api/v1/runs").json()["runs"] == []
    agree = new_run(api, config={"opt": {"lr": 0.1}}, params={"opt.lr": 0.1})
    assert agree["params"] == {"opt.lr": 0.1}


def test_config_lists_flatten_to_the_same_param_text_as_the_sdk(api: Client) -> None:
    """A list in a REST config becomes the JSON text the SDK stores, not Python's repr."""
    run = new_run(api, config={"layers": ["a", "b"], "dims": [1, 2]})
    assert run["params"] == {"layers": '["a", "b"]', "dims": "[1, 2]"}


def _wire(header_json: str) -> bytes:
    head = header_json.encode()
    return struct.pack("<4sBI", b"MLTB", 1, len(head)) + head


@pytest.mark.parametrize(
    ("header", "what"),
    [
        ('{"run_id": "%s", "params": {"p": 1, "p": 2}}', "duplicate key 'p'"),
        ('{"run_id": "%s", "params": {"p": 1e309}}', "params.p"),
        ('{"run_id": "%s", "run_id": "other"}', "duplicate key 'run_id'"),
    ],
)
def test_ingest_header_is_parsed_strictly(api: Client, header: str, what: str) -> None:
    """The binary batch's JSON header refuses repeated keys and out-of-range numbers too."""
    run_id = new_run(api)["run_id"]
    r = api.post(
        "/api/v1/ingest",
        content=_wire(header % run_id),
        headers={"Content-Type": "application/x-mltrail-batch"},
    )
    assert r.status_code == 422, r.text
    assert what in r.json()["error"]["message"]
    assert api.get(f"/api/v1/runs/{run_id}").json()["params"] == {}


# -- artifact versions must name objects the server holds, with the right kind ---------------


def _put_object(api: Client, data: bytes, *, tree: bool = False) -> str:
    from mltrail.objects.digest import hash_bytes

    digest = hash_bytes(data, tree=tree)
    r = api.put(f"/api/v1/objects/{digest}", content=data)
    assert r.status_code in (200, 201), r.text
    return digest


def _version(api: Client, digest: str, kind: str, name: str = "data", **kw: object):  # type: ignore[no-untyped-def]
    body = {
        "project": "p",
        "name": name,
        "type": "dataset",
        "digest": digest,
        "kind": kind,
        "size": 5,
        "file_count": 1,
        **kw,
    }
    return api.post("/api/v1/artifacts/versions", json=body)


def test_artifact_version_naming_missing_or_wrong_kind_objects_is_refused(api: Client) -> None:
    """A version is recorded only for objects the server holds, of the kind it claims."""
    from mltrail.objects.digest import hash_bytes
    from mltrail.objects.tree import Tree, TreeEntry

    absent = hash_bytes(b"never uploaded")
    r = _version(api, absent, "file")
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == "body.digest" and absent in r.json()["error"]["message"]

    here = _put_object(api, b"hello")
    r = _version(api, here, "tree")
    assert r.status_code == 422 and r.json()["error"]["field"] == "body.kind", r.text
    assert here in r.json()["error"]["message"]

    missing_child = hash_bytes(b"child never uploaded")
    tree = Tree([TreeEntry("a.txt", here, 5), TreeEntry("b/c.txt", missing_child, 20)])
    tree_digest = _put_object(api, tree.to_bytes(), tree=True)
    assert tree_digest == tree.digest
    r = _version(api, tree_digest, "file")
    assert r.status_code == 422 and r.json()["error"]["field"] == "body.kind", r.text
    r = _version(api, tree_digest, "tree", size=25, file_count=2)
    assert r.status_code == 422, r.text
    message = r.json()["error"]["message"]
    assert missing_child in message and here not in message
    assert api.get("/api/v1/artifacts", params={"project": "p"}).json()["artifacts"] == []

    _put_object(api, b"child never uploaded")
    ok = _version(api, tree_digest, "tree", size=25, file_count=2)
    assert ok.status_code == 200, ok.text
    assert _version(api, here, "file", name="single").status_code == 200
    ref = _version(api, hash_bytes(b"elsewhere"), "reference", name="ref", uri="s3://b/k")
    assert ref.status_code == 200, ref.text  # references hold no bytes here
