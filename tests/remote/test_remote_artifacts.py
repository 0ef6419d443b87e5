"""Artifacts through an ``mltrail server``: the contract over HTTP, the SDK end to end with
bytes pushed to and pulled from the server, lineage via the CLI, project-scoped tokens, and a
corrupted object on the server refused on use."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import mltrail
from mltrail.artifacts.records import NewVersion
from mltrail.cli.main import app
from mltrail.errors import CorruptObjectError, NotFoundError, PermissionDeniedError
from mltrail.objects.digest import hash_file
from mltrail.store.http import HttpTrackingStore
from mltrail.store.registry import forget_open_stores
from mltrail.testing import ArtifactStoreContract
from mltrail.testing.artifacts import fake_content, fake_digest
from mltrail.testing.contract import make_batch
from mltrail.testing.server import ThreadedServer

NewRun = Callable[..., mltrail.Run]


def _write(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content)
        else:
            path.write_bytes(content)
    return root


def _upload_fakes(url: str, token: str, *ns: int) -> None:
    """Put the test objects ``ns`` on the server (it records versions only of objects it holds)."""
    import httpx

    for n in ns:
        r = httpx.put(
            f"{url}/api/v1/objects/{fake_digest(n)}",
            content=fake_content(n),
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code in (200, 201), r.text


# -- the contract over HTTP ------------------------------------------------------------------


@pytest.fixture
def store(store_uri: str, tmp_path: Path) -> Iterator[HttpTrackingStore]:
    with ThreadedServer(store_uri, str(tmp_path / "artifacts")) as srv:
        token = srv.token("admin")
        _upload_fakes(srv.url, token, *range(1, 10))
        client = HttpTrackingStore(srv.url, token=token)
        yield client
        client.close()


class TestHttpArtifactContract(ArtifactStoreContract):
    """HttpArtifactStore → server routes → the SQL store keeps every promise of the SQL store."""


# -- the SDK through a server ----------------------------------------------------------------


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ThreadedServer]:
    monkeypatch.setenv("MLTRAIL_HEARTBEAT_S", "0.5")
    with ThreadedServer(str(tmp_path / "srv-store"), str(tmp_path / "srv-artifacts")) as srv:
        monkeypatch.setenv("MLTRAIL_TOKEN", srv.token("write"))
        yield srv
        forget_open_stores()


@pytest.fixture
def new_run(
    server: ThreadedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[NewRun]:
    """Start a run on the server, each in its own fresh cache directory (another machine)."""
    started: list[mltrail.Run] = []

    def start(name: str, project: str = "proj") -> mltrail.Run:
        monkeypatch.setenv("MLTRAIL_CACHE_DIR", str(tmp_path / f"cache-{name}"))
        run = mltrail.init(
            project=project,
            name=name,
            store=server.url,
            capture=False,
            console=False,
            system_metrics_s=0,
        )
        started.append(run)
        return run

    yield start
    for run in started:
        run.finish()


def _cli(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_sdk_end_to_end_through_the_server(
    server: ThreadedServer, new_run: NewRun, tmp_path: Path
) -> None:
    """data → train → eval on three "machines": bytes travel through the server, verified."""
    files: dict[str, str | bytes] = {
        "rows.csv": "a,b\n1,2\n",
        "sub/labels.txt": "cat\ndog\n",
        "sub/big.bin": os.urandom(3000),
    }
    raw = _write(tmp_path / "raw", files)
    prep = new_run("prep")
    data = prep.log_artifact(raw, name="data", metadata={"rows": 1})
    assert (data.kind, data.file_count, data.version) == ("tree", 3, 1)
    assert prep.log_artifact(raw, name="data").version == 1  # same content, same version
    prep.finish()
    objects = server.app.state.objects  # the server holds the tree and every file
    assert objects.exists(data.digest)
    assert all(objects.exists(hash_file(raw / rel)) for rel in files)

    train = new_run("train")  # a fresh cache: nothing local, everything pulled
    got = train.use_artifact("data:latest")
    assert got.is_relative_to(tmp_path / "cache-train")
    for rel, content in files.items():
        expect = content.encode() if isinstance(content, str) else content
        assert (got / rel).read_bytes() == expect
    weights = _write(tmp_path / "w", {"model.pt": b"\x89PT" * 500}) / "model.pt"
    train.log_artifact(weights, name="model", type="model", aliases=("best",))
    train.finish()

    ev = new_run("eval")
    path = ev.use_artifact("model:best", root=tmp_path / "eval-out")
    assert path == tmp_path / "eval-out" / "model.pt"
    assert path.read_bytes() == weights.read_bytes()
    ev.finish()

    store = server.url
    listed = _cli("artifacts", "list", "--json", "--store", store)
    assert [(a["name"], a["latest_version"], a["aliases"]) for a in listed] == [
        ("data", 1, {"latest": 1}),
        ("model", 1, {"best": 1, "latest": 1}),
    ]
    shown = _cli("artifacts", "show", "model", "--json", "--store", store)
    assert shown["used_by"] == [ev.run_id] and shown["run_id"] == train.run_id
    graph = _cli("lineage", ev.run_id, "--upstream", "--json", "--store", store)
    assert graph["root"] == f"run:{ev.run_id}"
    assert {(e["source"], e["target"], e["relation"]) for e in graph["edges"]} == {
        (f"run:{prep.run_id}", "artifact:proj/data:v1", "produced"),
        ("artifact:proj/data:v1", f"run:{train.run_id}", "used"),
        (f"run:{train.run_id}", "artifact:proj/model:v1", "produced"),
        ("artifact:proj/model:v1", f"run:{ev.run_id}", "used"),
    }
    down = _cli("lineage", "data:v1", "--downstream", "--depth", "2", "--json", "--store", store)
    assert {n["id"] for n in down["nodes"]} == {
        "artifact:proj/data:v1",
        f"run:{train.run_id}",
        "artifact:proj/model:v1",
    }
    fetched = _cli(
        "artifacts", "get", "data:v1", "--to", str(tmp_path / "get"), "--json", "--store", store
    )
    assert Path(fetched["path"], "sub", "labels.txt").read_text() == "cat\ndog\n"


def test_reference_records_metadata_only(
    server: ThreadedServer, new_run: NewRun, tmp_path: Path
) -> None:
    """A reference is recorded by digest: its bytes are not uploaded to the server."""
    target = _write(tmp_path / "ref", {"part.bin": b"R" * 2048}) / "part.bin"
    run = new_run("refs")
    version = run.log_reference(target, name="ext")
    assert (version.kind, version.uri) == ("reference", str(target))
    assert not server.app.state.objects.exists(hash_file(target))
    assert run.use_artifact("ext") == target


def test_corrupted_object_on_the_server_is_refused(
    server: ThreadedServer, new_run: NewRun, tmp_path: Path
) -> None:
    """A flipped byte in an object the server keeps fails use_artifact, naming the object."""
    raw = _write(tmp_path / "ds", {"ok.txt": "fine", "bad.bin": os.urandom(4096)})
    producer = new_run("producer")
    producer.log_artifact(raw, name="ds")
    producer.finish()
    digest = hash_file(raw / "bad.bin")
    obj = server.app.state.objects.local_path(digest)
    obj.chmod(0o644)
    data = bytearray(obj.read_bytes())
    data[100] ^= 0xFF
    obj.write_bytes(bytes(data))

    consumer = new_run("consumer")  # a fresh cache: the object comes from the server
    out = tmp_path / "out"
    with pytest.raises(CorruptObjectError, match=digest.split(":", 1)[1][:16]):
        consumer.use_artifact("ds", root=out)
    assert not (out / "bad.bin").exists()
    assert consumer.location.uri == server.url
    cache_obj = Path(os.environ["MLTRAIL_CACHE_DIR"], "objects")
    assert not any(p.read_bytes() == bytes(data) for p in cache_obj.rglob("*") if p.is_file())
    assert consumer.flush(10)
    arts = HttpTrackingStore(server.url, token=server.token("admin"))
    try:
        assert arts.artifacts().run_inputs(consumer.run_id) == []  # nothing recorded
    finally:
        arts.close()


# -- project-scoped tokens -------------------------------------------------------------------


def test_project_token_isolation(tmp_path: Path) -> None:
    """A token of project B gets 404 for A's artifacts and runs, and changes nothing there."""
    with ThreadedServer(str(tmp_path / "store"), str(tmp_path / "artifacts")) as srv:
        admin_token, b_token = srv.token("admin"), srv.token("write", project="B")
        _upload_fakes(srv.url, admin_token, 1)
        _upload_fakes(srv.url, b_token, 2)
        admin = HttpTrackingStore(srv.url, token=admin_token)
        b_only = HttpTrackingStore(srv.url, token=b_token)
        reader = HttpTrackingStore(srv.url, token=srv.token("read"))
        try:
            _isolation(admin, b_only, reader)
        finally:
            for s in (admin, b_only, reader):
                s.close()


def _isolation(admin: HttpTrackingStore, b_only: HttpTrackingStore, reader: Any) -> None:
    arts, b_arts = admin.artifacts(), b_only.artifacts()
    admin.apply_batch(make_batch("ra", project="A"))
    b_only.apply_batch(make_batch("rb", project="B"))
    a_v1 = arts.log_version(NewVersion("A", "data", "dataset", fake_digest(1), "file", 5, 1))
    arts.record_input("ra", a_v1)
    b_v1 = b_arts.log_version(
        NewVersion("B", "data", "dataset", fake_digest(2), "file", 5, 1, run_id="rb")
    )
    assert b_arts.resolve("data").digest == fake_digest(2)  # its own project, unambiguous
    assert [a.project for a in b_arts.list_artifacts()] == ["B"]
    assert b_arts.list_artifacts("A") == []
    for attempt in (
        lambda: b_arts.resolve("A/data"),
        lambda: b_arts.resolve("data", project="A"),
        lambda: b_arts.resolve(fake_digest(1)),
        lambda: b_arts.list_versions("A", "data"),
        lambda: b_arts.consumers(a_v1),
        lambda: b_arts.run_inputs("ra"),
        lambda: b_arts.run_outputs("ra"),
        lambda: b_arts.lineage(run_id="ra"),
        lambda: b_arts.lineage(version=a_v1),
        lambda: b_arts.set_alias("A", "data", "gold", 1),
        lambda: b_arts.remove_alias("A", "data", "x"),
        lambda: b_arts.record_input("ra", b_v1),  # A's run
        lambda: b_arts.record_input("rb", a_v1),  # A's version
        lambda: b_arts.log_version(NewVersion("A", "new", "dataset", fake_digest(3), "file", 1, 1)),
        lambda: b_arts.log_version(
            NewVersion("B", "x", "dataset", fake_digest(4), "file", 1, 1, run_id="ra")
        ),
    ):
        with pytest.raises(NotFoundError):
            attempt()
    # no side effect: no alias, no input, no artifact, no version
    assert arts.resolve("A/data").aliases == ("latest",)
    assert arts.run_inputs("rb") == [] and arts.consumers(a_v1) == ["ra"]
    assert [(a.project, a.name) for a in arts.list_artifacts()] == [("A", "data"), ("B", "data")]
    # lineage a B token sees has no A node even where the graph would cross into A
    arts.record_input("rb", a_v1)  # only an admin can link them
    graph = b_arts.lineage(run_id="rb")
    assert {n.id for n in graph.nodes} == {"run:rb", "artifact:B/data:v1"}
    assert b_arts.run_inputs("rb") == []
    # a read token reads but cannot write
    r_arts = reader.artifacts()
    assert r_arts.resolve("A/data").version == 1
    with pytest.raises(PermissionDeniedError):
        r_arts.set_alias("A", "data", "gold", 1)
    with pytest.raises(PermissionDeniedError):
        r_arts.log_version(NewVersion("A", "data", "dataset", fake_digest(9), "file", 1, 1))
    assert arts.list_versions("A", "data")[-1].version == 1
