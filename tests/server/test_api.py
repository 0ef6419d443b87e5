"""Every REST route: happy paths and errors (docs/rest-api.md is the contract)."""

from __future__ import annotations

import hashlib
import math

import numpy as np
from srvhelp import Client, Server, new_run

from mltrail.entities import RunStatus
from mltrail.store.batch import Batch, MetricSeries, RunCreate, StatusChange
from mltrail.store.wire import CONTENT_TYPE, encode_batch


def test_health_is_public_and_has_a_version(srv: Server) -> None:
    r = srv.client().get("/health")
    assert r.status_code == 200
    assert r.json()["status"] == "ok" and r.json()["version"]


def test_create_get_and_list(api: Client) -> None:
    run = new_run(
        api,
        "vision",
        name="resnet",
        params={"lr": 0.01, "opt": "adam"},
        tags={"team": "a"},
        config={"model": {"depth": 50}},
        user="alice",
    )
    assert run["status"] == "running" and run["name"] == "resnet" and run["user"] == "alice"
    assert run["params"] == {"lr": 0.01, "opt": "adam", "model.depth": 50}
    assert run["config"] == {"model": {"depth": 50}}
    got = api.get(f"/api/v1/runs/{run['run_id']}").json()
    assert got == run
    projects = api.get("/api/v1/projects").json()["projects"]
    assert [(p["name"], p["run_count"]) for p in projects] == [("vision", 1)]
    assert api.get(f"/api/v1/run-ids/{run['run_id'][:6]}").json() == {"run_id": run["run_id"]}


def test_missing_and_ambiguous(api: Client) -> None:
    assert api.get("/api/v1/runs/nope").status_code == 404
    assert api.get("/api/v1/runs/nope").json()["error"]["code"] == "not_found"
    assert api.get("/api/v1/run-ids/zzzz").status_code == 404
    ids = [new_run(api)["run_id"] for _ in range(40)]
    shared = {i[:1] for i in ids}
    prefix = next(p for p in shared if sum(i.startswith(p) for i in ids) > 1)
    r = api.get(f"/api/v1/run-ids/{prefix}")
    assert r.status_code == 409 and r.json()["error"]["code"] == "ambiguous_id"
    assert api.get("/api/v1/nothing-here").status_code == 404


def test_search_filter_order_and_pages(api: Client) -> None:
    for i in range(7):
        new_run(api, "s", params={"i": i})
    new_run(api, "other", params={"i": 100})
    r = api.get("/api/v1/runs", params={"project": "s", "filter": "params.i >= 2"})
    assert r.status_code == 200
    assert sorted(x["params"]["i"] for x in r.json()["runs"]) == [2, 3, 4, 5, 6]
    seen: list[int] = []
    token = None
    while True:
        params: dict[str, object] = {"project": "s", "order_by": "params.i asc", "max_results": 3}
        if token:
            params["page_token"] = token
        page = api.get("/api/v1/runs", params=params).json()
        seen += [x["params"]["i"] for x in page["runs"]]
        token = page["next_page_token"]
        if token is None:
            break
    assert seen == list(range(7))
    bad = api.get("/api/v1/runs", params={"filter": "metrics.loss < 1; DROP TABLE runs"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "filter_syntax"
    assert len(api.get("/api/v1/runs").json()["runs"]) == 8  # tables intact


def test_patch_status(api: Client) -> None:
    run = new_run(api)
    r = api.patch(f"/api/v1/runs/{run['run_id']}", json={"status": "failed", "end_ms": 123})
    assert r.status_code == 200
    assert (r.json()["status"], r.json()["end_ms"]) == ("failed", 123)
    r = api.patch(f"/api/v1/runs/{run['run_id']}", json={"status": "running"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "body.status"
    assert api.patch("/api/v1/runs/nope", json={"status": "killed"}).status_code == 404


def test_log_metrics_params_tags(api: Client) -> None:
    run_id = new_run(api)["run_id"]
    points = [{"key": "loss", "value": 1 / (i + 1), "step": i} for i in range(100)]
    points.append({"key": "acc", "value": 0.5, "step": 3, "timestamp_ms": 42})
    r = api.post(
        f"/api/v1/runs/{run_id}/log",
        json={"metrics": points, "params": {"bs": 32}, "tags": {"stage": "train"}},
    )
    assert r.status_code == 200 and r.json() == {"points": 101, "params": 1, "tags": 1}
    got = api.get(f"/api/v1/runs/{run_id}").json()
    assert got["params"]["bs"] == 32 and got["tags"]["stage"] == "train"
    assert got["metrics"]["loss"]["count"] == 100
    assert got["metrics"]["acc"]["last_timestamp_ms"] == 42
    # params are immutable: same value ok, another value 409 with nothing written
    same = api.post(f"/api/v1/runs/{run_id}/log", json={"params": {"bs": 32}})
    assert same.status_code == 200
    r = api.post(
        f"/api/v1/runs/{run_id}/log",
        json={"params": {"bs": 64}, "metrics": [{"key": "loss", "value": 9, "step": 999}]},
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "param_conflict"
    assert api.get(f"/api/v1/runs/{run_id}").json()["metrics"]["loss"]["count"] == 100
    api.patch(f"/api/v1/runs/{run_id}", json={"status": "finished"})
    late = api.post(f"/api/v1/runs/{run_id}/log", json={"tags": {"x": "y"}})
    assert late.status_code == 409 and late.json()["error"]["code"] == "run_finished"


def test_log_to_missing_run_is_404(api: Client) -> None:
    r = api.post("/api/v1/runs/missing/log", json={"tags": {"a": "b"}})
    assert r.status_code == 404


def test_series_downsampled_raw_and_binary(api: Client) -> None:
    run_id = new_run(api)["run_id"]
    pts = [{"key": "y", "value": float(i % 7), "step": i} for i in range(5000)]
    assert api.post(f"/api/v1/runs/{run_id}/log", json={"metrics": pts}).status_code == 200
    url = f"/api/v1/runs/{run_id}/series"
    ds = api.get(url, params={"key": "y", "points": 50}).json()
    assert ds["downsampled"] is True and len(ds["steps"]) == 50
    assert min(ds["min"]) == 0.0 and max(ds["max"]) == 6.0
    zoom = api.get(url, params={"key": "y", "points": 50, "step_min": 100, "step_max": 199}).json()
    assert zoom["downsampled"] is True and zoom["steps"][0] >= 100 and zoom["steps"][-1] <= 199
    raw = api.get(url, params={"key": "y", "raw": 1, "offset": 4990, "limit": 100}).json()
    assert raw["steps"] == list(range(4990, 5000)) and raw["next_offset"] is None
    page = api.get(url, params={"key": "y", "raw": 1, "limit": 10}).json()
    assert page["next_offset"] == 10
    b = api.get(url, params={"key": "y", "raw": 1}, headers={"Accept": "application/octet-stream"})
    assert b.headers["content-type"] == "application/octet-stream"
    assert b.headers["x-mltrail-points"] == "5000"
    n = 5000
    steps = np.frombuffer(b.content[: 8 * n], "<i8")
    values = np.frombuffer(b.content[16 * n :], "<f8")
    assert steps.tolist() == list(range(n)) and values[8] == 1.0
    assert api.get(url, params={"key": "nokey"}).status_code == 404
    bad = api.get(url, params={"key": "y", "step_min": 10, "step_max": 5})
    assert bad.status_code == 422
    assert api.get(url, params={"key": "y", "points": 0}).status_code == 422


def _batch_run(run_id: str, source: str) -> Batch:
    return Batch(
        run_id=run_id,
        source=source,
        start=0,
        end=100,
        create=RunCreate(project="ing", name="wire", created_ms=1000, heartbeat_s=5.0),
        params={"lr": 0.1},
        tags={"t": "v"},
        metrics={
            "loss": MetricSeries(
                np.arange(10, dtype=np.int64),
                np.full(10, 1000, dtype=np.int64),
                np.linspace(1, 0, 10),
            )
        },
        state={"code": {"sha": "abc"}},
        blobs={"sha256:" + hashlib.sha256(b"diff").hexdigest(): b"diff"},
        console=[(1000, "stdout", "hello world"), (1001, "stderr", "warning: x")],
    )


def test_ingest_is_idempotent_and_feeds_every_read(api: Client) -> None:
    run_id = "wire0000run1"
    batch = _batch_run(run_id, f"{run_id}.aa")
    body = encode_batch(batch)
    headers = {"Content-Type": CONTENT_TYPE}
    r = api.post("/api/v1/ingest", content=body, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json() == {"applied": True, "position": 100, "param_conflicts": {}}
    again = api.post("/api/v1/ingest", content=body, headers=headers).json()
    assert again["applied"] is False
    pos = api.get("/api/v1/ingest/position", params={"source": f"{run_id}.aa"}).json()
    assert pos == {"position": 100}
    assert api.get("/api/v1/ingest/position", params={"source": "x.y"}).json() == {"position": 0}
    run = api.get(f"/api/v1/runs/{run_id}").json()
    assert run["metrics"]["loss"]["count"] == 10 and run["params"] == {"lr": 0.1}
    assert api.get(f"/api/v1/runs/{run_id}/state").json() == {"code": {"sha": "abc"}}
    digest = next(iter(batch.blobs))
    blob = api.get(f"/api/v1/blobs/{digest}")
    assert blob.content == b"diff" and blob.headers["content-type"] == "application/octet-stream"
    assert api.get(f"/api/v1/blobs/sha256:{'0' * 64}").status_code == 404
    assert api.get("/api/v1/blobs/md5:abc").status_code == 422
    console = api.get(f"/api/v1/runs/{run_id}/console").json()["lines"]
    assert [x["text"] for x in console] == ["hello world", "warning: x"]
    found = api.get(f"/api/v1/runs/{run_id}/console", params={"q": "WARN"}).json()["lines"]
    assert [x["stream"] for x in found] == ["stderr"]
    tail = api.get(f"/api/v1/runs/{run_id}/console", params={"tail": 1}).json()["lines"]
    assert [x["text"] for x in tail] == ["warning: x"]
    # a conflicting param in a later batch is reported, the rest applied
    later = Batch(
        run_id=run_id,
        source=f"{run_id}.aa",
        start=100,
        end=150,
        params={"lr": 0.2},
        status=StatusChange(RunStatus.FINISHED, 2000),
    )
    r = api.post("/api/v1/ingest", content=encode_batch(later), headers=headers)
    assert r.json()["param_conflicts"] == {"lr": [0.1, 0.2]}
    assert api.get(f"/api/v1/runs/{run_id}").json()["status"] == "finished"


def test_ingest_errors(api: Client) -> None:
    headers = {"Content-Type": CONTENT_TYPE}
    r = api.post("/api/v1/ingest", content=b"garbage-bytes", headers=headers)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_argument"
    orphan = Batch(run_id="nosuchrun", source="nosuchrun.a", start=0, end=5, tags={"a": "b"})
    assert (
        api.post("/api/v1/ingest", content=encode_batch(orphan), headers=headers).status_code == 404
    )
    gap = _batch_run("gaprun", "gaprun.a")
    gap.start, gap.end = 50, 60
    r = api.post("/api/v1/ingest", content=encode_batch(gap), headers=headers)
    assert r.status_code == 500 and r.json()["error"]["code"] == "integrity_error"
    wrong_type = api.post(
        "/api/v1/ingest",
        content=encode_batch(_batch_run("r2", "r2.a")),
        headers={"Content-Type": "application/json"},
    )
    assert wrong_type.status_code == 415


def test_nan_and_infinities_travel_as_strings(api: Client) -> None:
    run_id = new_run(api)["run_id"]
    pts = [
        {"key": "x", "value": "NaN", "step": 0},
        {"key": "x", "value": "Infinity", "step": 1},
        {"key": "x", "value": "-Infinity", "step": 2},
    ]
    assert api.post(f"/api/v1/runs/{run_id}/log", json={"metrics": pts}).status_code == 200
    text = api.get(f"/api/v1/runs/{run_id}/series", params={"key": "x", "raw": 1}).text
    assert '"NaN"' in text and '"Infinity"' in text and '"-Infinity"' in text
    assert "NaN," not in text.replace('"NaN"', "")
    summary = api.get(f"/api/v1/runs/{run_id}").json()["metrics"]["x"]
    assert summary["last"] == "-Infinity"
    assert math.isinf(float(summary["max"]))


def test_file_upload_list_download(api: Client, srv: Server) -> None:
    run_id = new_run(api)["run_id"]
    data = b"line 1\nline 2\n" * 1000
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    url = f"/api/v1/runs/{run_id}/files"
    r = api.put(
        url, params={"path": "logs/console.txt"}, content=data, headers={"X-Content-Digest": digest}
    )
    assert r.status_code == 201
    assert r.json()["digest"] == digest and r.json()["size"] == len(data)
    again = api.put(
        url, params={"path": "copy.txt"}, content=data, headers={"X-Content-Digest": digest}
    )
    assert again.status_code == 201
    listed = api.get(url).json()["files"]
    assert [(f["path"], f["size"]) for f in listed] == [
        ("copy.txt", len(data)),
        ("logs/console.txt", len(data)),
    ]
    got = api.get(f"{url}/content", params={"path": "logs/console.txt"})
    assert got.content == data
    assert got.headers["content-disposition"] == 'attachment; filename="console.txt"'
    assert "sandbox" in got.headers["content-security-policy"]
    stored = [p for p in (srv.artifacts / "files" / "sha256").rglob("*") if p.is_file()]
    assert [p.name for p in stored] == [digest[7:]]  # one copy, named by its digest
    assert api.get(f"{url}/content", params={"path": "nope.txt"}).status_code == 404
    no_digest = api.put(url, params={"path": "a.txt"}, content=b"x")
    assert no_digest.status_code == 422 and "x-content-digest" in no_digest.json()["error"]["field"]
