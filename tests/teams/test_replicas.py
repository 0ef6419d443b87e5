"""Two server replicas over one PostgreSQL database and one S3 bucket (SeaweedFS): whatever
is written through one (runs, series, run files, objects, artifact versions) is read through
the other, byte for byte, and nothing a replica caches hides another replica's write."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import mltrail
from mltrail.objects.fsspec_store import FsspecObjectStore
from mltrail.store.copy.endpoint import files_key
from mltrail.store.http import HttpTrackingStore
from mltrail.store.registry import forget_open_stores
from mltrail.testing.server import ThreadedServer

pytestmark = pytest.mark.parametrize("store_uri", ["postgres"], indirect=True)


@pytest.fixture
def replicas(
    store_uri: str, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[ThreadedServer, ThreadedServer]]:
    """Replicas A and B: PostgreSQL + ``s3://bucket/team``; MLTRAIL_TOKEN is a write token."""
    root = f"{s3_bucket}/team"
    with ThreadedServer(store_uri, root) as a, ThreadedServer(store_uri, root) as b:
        monkeypatch.setenv("MLTRAIL_TOKEN", a.token("write"))
        yield a, b
    forget_open_stores()


def _client(srv: ThreadedServer, token: str) -> httpx.Client:
    return httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {token}"})


def test_writes_through_one_replica_read_through_the_other(
    replicas: tuple[ThreadedServer, ThreadedServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run logged with artifacts through A is read whole through B; a run file and an
    object stored through A are served by B; B's earlier 404s are not remembered."""
    a, b = replicas
    token = a.token("write")
    assert a.app.state.storage.files.root != b.app.state.storage.files.root  # own scratch
    (tmp_path / "model.bin").write_bytes(b"w" * 300_000)
    (tmp_path / "data").mkdir()
    for i in range(3):
        (tmp_path / "data" / f"{i}.csv").write_text(f"x\n{i}\n")
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".git").mkdir()
    with mltrail.init(
        project="team",
        name="on-a",
        store=a.url,
        capture=False,
        console=False,
        system_metrics_s=0,
    ) as run:
        run.log_params({"lr": 0.1})
        for step in range(200):
            run.log({"loss": 1.0 / (step + 1)}, step=step)
        run.log_artifact(tmp_path / "model.bin", name="clf", type="model")
        run.log_artifact(tmp_path / "data", name="digits", type="dataset")
    forget_open_stores()

    via_b = HttpTrackingStore(b.url, token)
    try:
        record = via_b.get_run(run.run_id)
        assert record.params == {"lr": 0.1} and record.status.value == "finished"
        series = via_b.metric_history(run.run_id, "loss")
        assert series.steps.tolist() == list(range(200))
        assert series.values.tolist() == [1.0 / (s + 1) for s in range(200)]
        clf = via_b.artifacts().resolve("team/clf:latest")
        digits = via_b.artifacts().resolve("team/digits:v1")
        assert clf.run_id == run.run_id and digits.kind == "tree" and digits.file_count == 3
    finally:
        via_b.close()

    ca, cb = _client(a, token), _client(b, token)
    try:
        got = cb.get(f"/api/v1/objects/{clf.digest}")
        assert got.status_code == 200 and got.content == b"w" * 300_000
        assert cb.get(f"/api/v1/objects/{digits.digest}").status_code == 200

        data = b"replica log\n" * 1000
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        files = f"/api/v1/runs/{run.run_id}/files"
        assert cb.get(files + "/content", params={"path": "logs/a.txt"}).status_code == 404
        put = ca.put(
            files,
            params={"path": "logs/a.txt"},
            content=data,
            headers={"X-Content-Digest": digest},
        )
        assert put.status_code == 201, put.text
        got = cb.get(files + "/content", params={"path": "logs/a.txt"})
        assert got.status_code == 200 and got.content == data

        from mltrail.objects.digest import hash_bytes

        blob = b"pushed through A only"
        obj = hash_bytes(blob)
        assert cb.head(f"/api/v1/objects/{obj}").status_code == 404
        assert cb.post("/api/v1/objects/missing", json={"digests": [obj]}).json() == {
            "missing": [obj]
        }
        assert ca.put(f"/api/v1/objects/{obj}", content=blob).status_code == 201
        assert cb.head(f"/api/v1/objects/{obj}").status_code == 200
        assert cb.get(f"/api/v1/objects/{obj}").content == blob
        assert cb.post("/api/v1/objects/missing", json={"digests": [obj]}).json() == {"missing": []}
        bucket = FsspecObjectStore(f"{a.app.state.storage.root}/objects")  # the bytes are in S3
        held = {obj, clf.digest, digits.digest}
        assert bucket.exists_many(held) == held
        assert bucket.fs.exists(f"{bucket.root.rsplit('/', 1)[0]}/{files_key(digest)}")
    finally:
        ca.close()
        cb.close()


def test_checkout_through_b_of_an_artifact_logged_through_a(
    replicas: tuple[ThreadedServer, ThreadedServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """use_artifact through replica B materialises, verified, what was logged through A."""
    a, b = replicas
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".git").mkdir()
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x.bin").write_bytes(b"\x00\x01" * 5000)
    opts = {"project": "team", "capture": False, "console": False, "system_metrics_s": 0}
    with mltrail.init(name="producer", store=a.url, **opts) as run:  # type: ignore[arg-type]
        run.log_artifact(tmp_path / "data", name="ds", type="dataset")
    forget_open_stores()
    monkeypatch.setenv("MLTRAIL_CACHE_DIR", str(tmp_path / "other-machine-cache"))
    with mltrail.init(name="consumer", store=b.url, **opts) as consumer:  # type: ignore[arg-type]
        where = consumer.use_artifact("ds:latest", root=tmp_path / "out")
    forget_open_stores()
    assert (where / "x.bin").read_bytes() == b"\x00\x01" * 5000


def test_presigned_downloads_are_opt_in_and_verified_by_the_client(
    store_uri: str, s3_bucket: str, tmp_path: Path
) -> None:
    """With --presign, GET of an object redirects (307, no token in the URL's origin) to a
    presigned URL the client follows; a digest the token may not read is still 404; without
    an object-store root the option is refused."""
    from mltrail.errors import InvalidArgumentError
    from mltrail.objects.digest import hash_bytes
    from mltrail.objects.http import HttpObjectStore

    with ThreadedServer(store_uri, f"{s3_bucket}/team", presign_s=60) as srv:
        token = srv.token("write")
        blob = b"fetched straight from the bucket" * 100
        obj = hash_bytes(blob)
        with _client(srv, token) as c:
            assert c.put(f"/api/v1/objects/{obj}", content=blob).status_code == 201
            answer = c.get(f"/api/v1/objects/{obj}")
            assert answer.status_code == 307
            location = answer.headers["location"]
            assert "Signature=" in location and not location.startswith(srv.url)
            assert httpx.get(location).content == blob  # no token needed, for 60 s
            assert c.get(f"/api/v1/objects/{hash_bytes(b'never stored')}").status_code == 404
        odb = HttpObjectStore(srv.url, token=token)
        try:
            assert odb.read_bytes(obj) == blob  # the client follows it and verifies the bytes
        finally:
            odb.close()
    with pytest.raises(InvalidArgumentError, match="presign"):
        ThreadedServer(store_uri, str(tmp_path / "local"), presign_s=60)
