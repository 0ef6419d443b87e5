"""OpenLineage: the events runs send (START, COMPLETE, FAIL, ABORT), checked against the
OpenLineage JSON schema and received by a local HTTP collector; the export of past runs; the
names of jobs and datasets."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from ol_schema import errors, validate
from typer.testing import CliRunner

from mltrail.errors import InvalidArgumentError
from mltrail.lineage_export import live, naming


def _settle(timeout: float = 60.0) -> bool:
    """Wait for runs finishing in the background, then for the events they queued."""
    finisher = sys.modules.get("mltrail.events.finisher")
    if finisher is not None:
        finisher.wait(timeout=timeout)
    return live.flush(timeout)


def _by_type(events: list[dict[str, Any]], run_id: str) -> dict[str, dict[str, Any]]:
    uid = naming.run_uuid(run_id)
    return {e["eventType"]: e for e in events if e["run"]["runId"] == uid}


def _facet(dataset: dict[str, Any], name: str) -> dict[str, Any]:
    facet: dict[str, Any] = dataset["facets"][name]
    return facet


@pytest.mark.parametrize("store_uri", ["sqlite", "postgres"], indirect=True)
def test_a_run_sends_start_and_complete_with_its_datasets(
    store_uri: str,
    code_repo: Path,
    collector: Any,
    monkeypatch: pytest.MonkeyPatch,
    new_run: Any,
) -> None:
    """START then COMPLETE reach an HTTP collector (POST /api/v1/lineage), valid against the
    schema, with one runId, the job from the project and entry point, the tracked table and
    the used artifact as inputs (digest, version, schema) and the logged model as output."""
    monkeypatch.setenv("MLTRAIL_OPENLINEAGE_URL", collector.url)
    (code_repo / "features.parquet").write_bytes(b"PAR1 not really")
    with new_run(store_uri, code_repo) as prep:
        features = prep.log_artifact(
            code_repo / "features.parquet",
            name="features",
            metadata={"schema": {"age": "int64", "income": "double"}},
        )
    with new_run(store_uri, code_repo, config={"lr": 0.1}) as run:
        run.use_artifact("features:latest", root=code_repo / "in")
        (code_repo / "model").mkdir()
        (code_repo / "model" / "weights.bin").write_bytes(b"\x00\x01" * 64)
        model = run.log_artifact(code_repo / "model", name="model", type="model")
    events = collector.wait_for(4)
    assert set(collector.paths) == {"/api/v1/lineage"}
    for event in events:
        validate(event)
    got = _by_type(events, run.run_id)
    assert set(got) == {"START", "COMPLETE"}
    start, done = got["START"], got["COMPLETE"]
    assert events.index(start) < events.index(done)
    assert start["job"] == {**done["job"], "facets": start["job"]["facets"]}
    assert done["job"]["namespace"] == "mltrail"
    assert done["job"]["name"] == "fraud/train.py"
    code = done["job"]["facets"]["sourceCodeLocation"]
    assert (
        code["version"]
        == subprocess.run(
            ["git", "-C", str(code_repo), "rev-parse", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
    )
    assert code["repoUrl"] == "https://git.example.com/team/proj.git"
    assert done["run"]["facets"]["mltrail"]["runId"] == run.run_id
    assert done["run"]["facets"]["mltrail"]["params"] == {"lr": 0.1}

    inputs = {(d["namespace"], d["name"]): d for d in done["inputs"]}
    table = inputs["file", str(code_repo / "data" / "train.csv")]
    assert _facet(table, "mltrail")["digest"].startswith("blake3:")
    assert _facet(table, "version")["datasetVersion"] == _facet(table, "mltrail")["digest"]
    assert [f["name"] for f in _facet(table, "schema")["fields"]] == ["age", "income", "label"]
    used = inputs["mltrail", "artifacts/fraud/features"]
    assert _facet(used, "mltrail")["digest"] == features.digest
    assert _facet(used, "version")["datasetVersion"] == "v1"
    assert [(f["name"], f["type"]) for f in _facet(used, "schema")["fields"]] == [
        ("age", "int64"),
        ("income", "double"),
    ]
    [out] = done["outputs"]
    assert (out["namespace"], out["name"]) == ("mltrail", "artifacts/fraud/model")
    assert _facet(out, "mltrail")["digest"] == model.digest
    assert start["inputs"] == [] and start["outputs"] == []


@pytest.mark.parametrize("store_uri", ["sqlite"], indirect=True)
def test_failed_run_sends_fail_with_its_error_and_parents_are_named(
    store_uri: str, code_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, new_run: Any
) -> None:
    """A run that raises ends with FAIL and an errorMessage facet (resumed, it starts again
    and completes); a reproduction's parent is the original run, a sweep trial's is its
    sweep (file transport, one event per line)."""
    import json

    out = tmp_path / "events.jsonl"
    monkeypatch.setenv("MLTRAIL_OPENLINEAGE_URL", f"file://{out}")
    with pytest.raises(ZeroDivisionError), new_run(store_uri, code_repo) as failed:
        _ = 1 / 0
    with new_run(store_uri, code_repo, tags={"reproduction-of": failed.run_id}) as again:
        pass
    with new_run(
        store_uri, code_repo, tags={"mltrail.sweep": "sw-0123456789", "mltrail.trial": "3"}
    ) as trial:
        pass
    with new_run(store_uri, code_repo, resume=failed.run_id) as resumed:
        resumed.log({"loss": 0.1}, step=7)
    assert _settle()
    events = [json.loads(line) for line in out.read_text().splitlines()]
    for event in events:
        validate(event)
    uid = naming.run_uuid(failed.run_id)
    kinds = [e["eventType"] for e in events if e["run"]["runId"] == uid]
    assert kinds == ["START", "FAIL", "START", "COMPLETE"]  # resumed: it starts again
    restarts = [e for e in events if e["run"]["runId"] == uid and e["eventType"] == "START"]
    assert restarts[1]["eventTime"] > restarts[0]["eventTime"]
    fail = _by_type(events, failed.run_id)["FAIL"]
    error = fail["run"]["facets"]["errorMessage"]
    assert "ZeroDivisionError" in error["message"]
    assert error["programmingLanguage"] == "python"
    assert "1 / 0" in error["stackTrace"]
    for kind in ("START", "COMPLETE"):
        parent = _by_type(events, again.run_id)[kind]["run"]["facets"]["parent"]
        assert parent["run"]["runId"] == naming.run_uuid(failed.run_id)
        assert (parent["job"]["namespace"], parent["job"]["name"]) == ("mltrail", "fraud/train.py")
    parent = _by_type(events, trial.run_id)["COMPLETE"]["run"]["facets"]["parent"]
    assert parent["run"]["runId"] == naming.sweep_uuid("sw-0123456789")
    assert parent["job"]["name"] == "fraud/sweeps/sw-0123456789"


_CRASHER = textwrap.dedent(
    """
    import os, sys
    import mltrail
    run = mltrail.init(project="fraud", store=sys.argv[1], system_metrics_s=0, console=False)
    run.log({"loss": 1.0}, step=0)
    run.flush()
    from mltrail.lineage_export import live
    assert live.flush(60)  # its START is out (a crash could come at any time after)
    print(run.run_id, flush=True)
    os._exit(9)  # no finish, no exit hooks: a crash
    """
)


_SHORT = textwrap.dedent(
    """
    import sys
    import mltrail
    with mltrail.init(project="fraud", store=sys.argv[1], system_metrics_s=0) as run:
        run.log({"loss": 1.0}, step=0)
    print(run.run_id, flush=True)
    """
)


@pytest.mark.parametrize("store_uri", ["sqlite"], indirect=True)
def test_a_script_that_ends_at_once_still_sends_its_events(
    store_uri: str, tmp_path: Path, collector: Any
) -> None:
    """A script whose process exits right after its run (while the event thread may still
    be importing the transport) sends START and COMPLETE before it is gone."""
    script = tmp_path / "short.py"
    script.write_text(_SHORT)
    env = {**os.environ, "MLTRAIL_OPENLINEAGE_URL": collector.url}
    child = subprocess.run(
        [sys.executable, str(script), store_uri], env=env, capture_output=True, text=True
    )
    assert child.returncode == 0, child.stderr
    assert "could not be sent" not in child.stderr, child.stderr
    run_id = child.stdout.split()[-1]
    got = _by_type(collector.wait_for(2), run_id)
    assert set(got) == {"START", "COMPLETE"}


@pytest.mark.parametrize(
    "store_uri", ["sqlite", pytest.param("postgres", marks=pytest.mark.slow)], indirect=True
)
def test_crash_recovery_sends_abort(
    store_uri: str, tmp_path: Path, collector: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process that dies leaves its run running; the recovery that marks it crashed (here
    `mltrail.Api`) sends its ABORT, valid and with the START's runId."""
    import mltrail

    script = tmp_path / "crash.py"
    script.write_text(_CRASHER)
    env = {**os.environ, "MLTRAIL_OPENLINEAGE_URL": collector.url}
    child = subprocess.run(
        [sys.executable, str(script), store_uri], env=env, capture_output=True, text=True
    )
    assert child.returncode == 9, child.stderr
    run_id = child.stdout.split()[-1]
    monkeypatch.setenv("MLTRAIL_OPENLINEAGE_URL", collector.url)
    api = mltrail.Api(store_uri)
    assert api.store.get_run(run_id).status == "crashed"
    events = collector.wait_for(2)
    got = _by_type(events, run_id)
    assert set(got) == {"START", "ABORT"}, events
    for event in got.values():
        validate(event)
    assert got["ABORT"]["run"]["facets"]["mltrail"]["status"] == "crashed"


@pytest.mark.parametrize(
    "store_uri", ["sqlite", pytest.param("postgres", marks=pytest.mark.slow)], indirect=True
)
def test_export_sends_the_same_events_as_the_live_run(
    store_uri: str, code_repo: Path, collector: Any, tmp_path: Path, new_run: Any
) -> None:
    """`mltrail openlineage export RUN --to URL` sends START and COMPLETE with the live
    run's ids and datasets; without --to it prints JSON lines; --to file:// appends."""
    import json

    from mltrail.cli.main import app

    with new_run(store_uri, code_repo) as run:
        run.log_artifact(code_repo / "train.py", name="script")
    runner = CliRunner()
    got = runner.invoke(
        app, ["openlineage", "export", run.run_id, "--store", store_uri, "--to", collector.url]
    )
    assert got.exit_code == 0, got.output
    assert "2 events of 1 runs" in got.output
    events = collector.wait_for(2)
    for event in events:
        validate(event)
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    assert {e["run"]["runId"] for e in events} == {naming.run_uuid(run.run_id)}
    assert events[1]["job"]["name"] == "fraud/train.py"
    assert [o["name"] for o in events[1]["outputs"]] == ["artifacts/fraud/script"]

    printed = runner.invoke(app, ["openlineage", "export", run.run_id[:8], "--store", store_uri])
    assert printed.exit_code == 0, printed.output
    lines = [json.loads(line) for line in printed.stdout.splitlines()]
    assert [e["eventType"] for e in lines] == ["START", "COMPLETE"]
    assert lines[1]["outputs"] == events[1]["outputs"]

    target = tmp_path / "lineage.jsonl"
    for _ in range(2):
        ok = runner.invoke(
            app,
            [
                "openlineage",
                "export",
                "-p",
                "fraud",
                "--store",
                store_uri,
                "--to",
                f"file://{target}",
            ],
        )
        assert ok.exit_code == 0, ok.output
    assert len(target.read_text().splitlines()) == 4


def test_export_names_bad_input(tmp_path: Path) -> None:
    """A bad --to names the option and the accepted forms; no run is an error line."""
    from mltrail.cli.main import app

    runner = CliRunner()
    bad = runner.invoke(
        app, ["openlineage", "export", "abc", "--to", "ftp://x", "--store", str(tmp_path)]
    )
    assert bad.exit_code == 1
    assert "--to='ftp://x'" in bad.output and "file:///path" in bad.output
    none = runner.invoke(app, ["openlineage", "export"])
    assert none.exit_code == 1 and "name runs" in none.output


def test_off_by_default_and_bad_setting_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, collector: Any
) -> None:
    """Without MLTRAIL_OPENLINEAGE_URL nothing is queued (nor at the end of a run started
    then); a malformed value is refused by the settings (naming the variable) and turns the
    events off with one warning."""
    from mltrail.settings import settings

    monkeypatch.delenv("MLTRAIL_OPENLINEAGE_URL", raising=False)
    assert live.enabled() == ""
    live.run_started(run_id="r1", project="p", name="n", created_ms=0, tags={}, invocation=None)
    assert live.flush(0) and collector.events == []
    monkeypatch.setenv("MLTRAIL_OPENLINEAGE_URL", collector.url)
    live.run_ended(str(tmp_path / "store"), "r1")  # started while off: its end says nothing
    assert live.flush(10) and collector.events == []
    monkeypatch.setenv("MLTRAIL_OPENLINEAGE_URL", "marquez:5000")
    with pytest.raises(InvalidArgumentError, match="MLTRAIL_OPENLINEAGE_URL='marquez:5000'"):
        settings()
    assert live.enabled() == ""


@pytest.mark.parametrize("store_uri", ["sqlite"], indirect=True)
def test_unreachable_server_never_breaks_a_run_and_is_said_once(
    store_uri: str,
    code_repo: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    new_run: Any,
) -> None:
    """A lineage server that refuses connections: the runs finish normally, one warning
    names the destination, and the failures are counted."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: connections are refused
    url = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("MLTRAIL_OPENLINEAGE_URL", url)
    before = live.failures(url)
    with caplog.at_level(logging.WARNING, logger="mltrail"):
        for _ in range(2):
            with new_run(store_uri, code_repo) as run:
                run.log({"loss": 0.5}, step=0)
            assert run.status == "finished"
        assert _settle()
    assert live.failures(url) - before == 4
    said = [r for r in caplog.records if "OpenLineage event could not be sent" in r.message]
    assert len(said) == 1 and url in said[0].message


def test_dataset_and_job_names() -> None:
    """OpenLineage's naming conventions for data URIs; the entry point of common commands."""
    assert naming.uri_dataset("s3://bucket/raw/x.parquet") == ("s3://bucket", "raw/x.parquet")
    assert naming.uri_dataset("gs://b/k") == ("gs://b", "k")
    assert naming.uri_dataset("https://h:8443/d/x.csv") == ("https://h:8443", "/d/x.csv")
    assert naming.uri_dataset("file:///data/x.csv") == ("file", "/data/x.csv")
    assert naming.uri_dataset("/data/../data/x.csv") == ("file", "/data/x.csv")
    inv = {"argv": ["/usr/bin/python3.11", "-u", "-m", "pkg.train", "--lr", "1"], "cwd": "/w"}
    assert naming.entry_point(inv) == "-m pkg.train"
    wrapped = {"argv": ["bash", "run.sh", "x"], "cwd": "/w", "wrapped": True}
    assert naming.entry_point(wrapped, "/w") == "bash run.sh"
    script = {"argv": ["python", "src/train.py"], "cwd": "/w/sub"}
    assert naming.entry_point(script, "/w") == "sub/src/train.py"
    assert naming.entry_point(None) == "unknown"
    assert naming.run_uuid("abc") == naming.run_uuid("abc") != naming.run_uuid("abd")


def test_schema_catches_what_it_should() -> None:
    """The schema used above is not vacuous: a missing runId, a non-UUID, a facet without
    _producer and a bad eventTime are each reported."""
    good = {
        "eventType": "START",
        "eventTime": "2026-01-01T00:00:00.000Z",
        "producer": "https://example.com/p",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": naming.run_uuid("x")},
        "job": {"namespace": "n", "name": "j"},
    }
    assert errors(good) == []
    assert errors({**good, "run": {}})
    assert errors({**good, "run": {"runId": "x1"}})
    assert errors({**good, "eventTime": "yesterday"})
    facet = {"_schemaURL": "https://x/y"}
    assert errors({**good, "job": {"namespace": "n", "name": "j", "facets": {"f": facet}}})
