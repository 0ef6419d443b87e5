"""`mltrail store copy` moves everything a store keeps (runs whole, run files, artifacts with
their objects, lineage, the model registry) between any two backends, idempotently, and
verifies the result; `mltrail store check` reports orphans and damage."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from teamhelp import cli

from mltrail.artifacts.records import NewVersion
from mltrail.artifacts.storage import ArtifactStorage
from mltrail.entities import RunStatus
from mltrail.registry.records import NewModelVersion
from mltrail.store.batch import Batch, MetricSeries, RunCreate, StatusChange
from mltrail.store.copy import open_endpoint
from mltrail.store.copy.copier import list_run_ids
from mltrail.testing.server import ThreadedServer

BLOB = b"diff --git a/train.py b/train.py\n+lr = 0.1\n"


def _blob_digest() -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(BLOB).hexdigest()


def _run(run_id: str, project: str, n: int, created_ms: int) -> Batch:
    steps = np.arange(n, dtype=np.int64)
    values = np.sin(steps / 7.0)
    values[3] = math.nan
    values[5] = math.inf
    return Batch(
        run_id=run_id,
        source=f"spool-{run_id}",
        start=0,
        end=100,
        create=RunCreate(
            project=project,
            name=f"train-{run_id}",
            created_ms=created_ms,
            heartbeat_s=5.0,
            user="ada",
            host="gpu1",
            command="python train.py --lr 0.1",
            config={"optim": {"lr": 0.1, "betas": [0.9, 0.99]}, "seed": 7},
        ),
        params={"lr": 0.1, "epochs": n, "opt": "adam", "amp": True, "note": None},
        tags={"team": "vision", "mltrail.git_sha": "abc123"},
        metrics={
            "loss": MetricSeries(steps, created_ms + steps * 10, values),
            "acc": MetricSeries(
                np.array([0, 0, 1], np.int64),
                np.array([created_ms, created_ms + 1, created_ms + 2], np.int64),
                np.array([0.5, 0.25, 0.75]),
            ),
        },
        heartbeat_ms=created_ms + n * 10,
        status=StatusChange(RunStatus.FINISHED, created_ms + n * 10 + 5),
        state={"code": {"repos": [{"sha": "abc123", "diff": _blob_digest()}]}},
        blobs={_blob_digest(): BLOB},
        console=[(created_ms + 1, "stdout", "epoch 1"), (created_ms + 2, "stderr", "warn")],
    )


@pytest.fixture
def source(tmp_path: Path) -> str:
    """An embedded store with 3 runs in 2 projects, run files, a file and a tree artifact
    (aliased, used as an input), and a registered model with an alias and a card."""
    src = str(tmp_path / "src")
    end = open_endpoint(src, create=True)
    try:
        store = end.store
        for i, (run_id, project) in enumerate([("r1", "vision"), ("r2", "vision"), ("r3", "nlp")]):
            store.apply_batch(_run(run_id, project, 50 + i, 1_700_000_000_000 + i * 1000))
        assert end.files is not None
        end.files.put("r1", "logs/train.log", b"line 1\nline 2\n")
        end.files.put("r2", "plots/loss.svg", b"<svg/>")
        (tmp_path / "data").mkdir()
        (tmp_path / "data" / "a.csv").write_text("x,y\n1,2\n")
        (tmp_path / "data" / "b.csv").write_text("x,y\n3,4\n")
        (tmp_path / "model.bin").write_bytes(b"weights" * 100)
        storage = ArtifactStorage(Path(src) / "artifacts" / "objects")
        model = storage.store_path(tmp_path / "model.bin")
        data = storage.store_path(tmp_path / "data")
        arts = store.artifacts()
        v1 = arts.log_version(
            NewVersion("vision", "clf", "model", model.digest, "file", model.size, 1, run_id="r1")
        )
        ds = arts.log_version(
            NewVersion("vision", "digits", "dataset", data.digest, "tree", data.size, 2)
        )
        arts.set_alias("vision", "clf", "best", v1.version)
        arts.record_input("r2", ds)
        reg = store.model_registry()
        reg.register_version(NewModelVersion("vision", "fraud", "clf", 1, run_id="r1"))
        reg.set_alias("vision", "fraud", "production", 1, reason="ship")
        reg.update_card("vision", "fraud", 1, {"intended_use": "tests"})
    finally:
        end.close()
    return src


def _snapshot(uri: str, artifacts: str | None) -> dict[str, Any]:
    """What `runs show --json`, series, files and artifacts say about a store."""
    end = open_endpoint(uri, artifacts)
    try:
        store = end.store
        runs = {}
        for p in store.list_projects():
            for r in (store.get_run(i) for i in list_run_ids(store, p.name)):
                series = {
                    k: [
                        store.metric_history(r.run_id, k).steps.tolist(),
                        store.metric_history(r.run_id, k).values.tobytes().hex(),
                    ]
                    for k in r.metrics
                }
                files = end.files.list(r.run_id) if end.files is not None else []
                runs[r.run_id] = {
                    "record": r.to_dict(),
                    "series": series,
                    "state": store.get_state(r.run_id),
                    "console": [c.text for c in store.read_console(r.run_id)],
                    "files": [(f.path, f.digest, end.files.read(r.run_id, f)) for f in files],
                }
        arts = store.artifacts()
        versions = [
            (v.name, v.version, v.digest, sorted(v.aliases), v.run_id)
            for a in arts.list_artifacts("vision")
            for v in arts.list_versions("vision", a.name)
        ]
        assert end.objects is not None
        odb = end.objects
        objects = sorted(
            d
            for a in arts.list_artifacts("vision")
            for v in arts.list_versions("vision", a.name)
            for d in [v.digest, *(odb.read_tree(v.digest).digests() if v.kind == "tree" else [])]
            if odb.read_bytes(d)  # verified read: present and whole
        )
        reg = store.model_registry()
        model = reg.get_model("vision", "fraud")
        return {
            "runs": runs,
            "versions": versions,
            "objects": objects,
            "inputs": [(v.name, v.version) for v in arts.run_inputs("r2")],
            "model": (model.aliases, reg.get_version("vision", "fraud", 1).card),
        }
    finally:
        end.close()


def _copy(*args: str) -> dict[str, Any]:
    result = cli("store", "copy", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize(
    "store_uri",
    [pytest.param("sqlite", marks=pytest.mark.slow), "postgres"],  # CI budget: PostgreSQL
    indirect=True,
)
def test_round_trip_sqlite_to_other_backend_to_directory(
    source: str, store_uri: str, tmp_path: Path
) -> None:
    """SQLite -> SQLite/PostgreSQL -> a directory keeps every run, point, file, artifact,
    input and model identical; a second copy adds nothing and says so."""
    mid_art, back = str(tmp_path / "mid-art"), str(tmp_path / "back")
    first = _copy(source, store_uri, "--dst-artifacts", mid_art)
    assert first["ok"] and first["runs_added"] == 3 and first["files_added"] == 2
    assert first["catalog"]["versions_added"] == 2 and first["catalog"]["objects_added"] == 4
    assert first["catalog"]["model_versions_added"] == 1 and first["catalog"]["inputs_added"] == 1
    again = cli("store", "copy", source, store_uri, "--dst-artifacts", mid_art)
    assert again.exit_code == 0, again.output
    assert "nothing to add" in again.stdout and "verified: 3 runs" in again.stdout
    _copy(store_uri, back, "--src-artifacts", mid_art)
    want = _snapshot(source, None)
    assert _snapshot(store_uri, mid_art) == want
    assert _snapshot(back, None) == want
    assert want["runs"]["r1"]["files"] == [("logs/train.log", want["runs"]["r1"]["files"][0][1],
                                            b"line 1\nline 2\n")]  # fmt: skip


def test_project_copy_and_a_difference_fails_the_verification(source: str, tmp_path: Path) -> None:
    """--project copies one project; a destination run that differs makes the copy exit 1
    naming the run."""
    dst = str(tmp_path / "dst")
    got = _copy(source, dst, "--project", "nlp")
    assert got["runs"] == 1 and got["projects"] == ["nlp"] and got["catalog"]["versions_added"] == 0
    end = open_endpoint(dst)
    end.store.apply_batch(Batch("r3", tags={"team": "tampered"}))
    end.close()
    result = cli("store", "copy", source, dst, "--project", "nlp")
    assert result.exit_code == 1
    assert "run r3 differs" in result.stdout
    missing = cli("store", "copy", source, dst, "--project", "nope")
    assert missing.exit_code == 1 and "project 'nope'" in missing.output


def test_server_to_directory_backup_and_back(
    source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store copied into a server (ingest, object pushes, file uploads, artifacts and
    models over REST), backed up from the server into a directory, and that backup matches."""
    srv_store = str(tmp_path / "srv")
    with ThreadedServer(srv_store, str(tmp_path / "srv-art")) as srv:
        monkeypatch.setenv("MLTRAIL_TOKEN", srv.token("admin"))
        into = _copy(source, srv.url)
        assert into["ok"] and into["runs_added"] == 3 and into["files_added"] == 2
        assert not _copy(source, srv.url)["added_anything"]
        backup = str(tmp_path / "backup")
        out = _copy(srv.url, backup)
        assert out["ok"] and out["runs_added"] == 3 and out["catalog"]["objects_added"] == 4
    assert _snapshot(backup, None) == _snapshot(source, None)


def test_store_check_reports_orphans_and_damage(source: str, tmp_path: Path) -> None:
    """`store check` reports the revision, counts and orphans, and a damaged object (found
    by --full) makes it exit 1 naming the object."""
    from mltrail.objects.registry import open_object_store

    result = cli("store", "check", "--store", source, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] and report["revision"] == report["head"]
    assert report["counts"]["runs"] == 3 and report["counts"]["objects"] == 4
    assert report["orphans"]["objects_no_version_names"] == 0
    odb = open_object_store(str(Path(source) / "artifacts" / "objects"))
    stray = odb.add_bytes(b"nobody names me")
    victim = next(d for d in odb.iter_digests() if d != stray and not d.endswith(".tree"))
    path = odb.local_path(victim)
    path.chmod(0o644)
    path.write_bytes(b"rotten")
    report = json.loads(cli("store", "check", "--store", source, "--json", "--full").stdout)
    assert report["orphans"]["objects_no_version_names"] == 1
    assert not report["ok"] and any(victim in p for p in report["problems"])
    text = cli("store", "check", "--store", source, "--full")
    assert text.exit_code == 1 and "integrity: 1 problem" in text.stdout


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("store_uri", ["postgres"], indirect=True)
def test_thousand_runs_round_trip(source: str, store_uri: str, tmp_path: Path) -> None:
    """1,000 runs (and the fixture's files, artifacts and model) go SQLite -> PostgreSQL ->
    a directory with identical records, series, files and artifacts."""
    end = open_endpoint(source)
    try:
        for i in range(997):
            end.store.apply_batch(_run(f"k{i:04d}", f"p{i % 5}", 20 + i % 7, 1_600_000_000_000 + i))
    finally:
        end.close()
    mid_art, back = str(tmp_path / "mid-art"), str(tmp_path / "back")
    first = _copy(source, store_uri, "--dst-artifacts", mid_art)
    assert first["ok"] and first["runs_added"] == 1000
    second = _copy(store_uri, back, "--src-artifacts", mid_art)
    assert second["ok"] and second["runs_added"] == 1000
    assert _snapshot(back, None) == _snapshot(source, None)
