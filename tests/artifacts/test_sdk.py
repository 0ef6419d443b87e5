"""The SDK: log_artifact / use_artifact / log_reference over real runs and a real store."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from art_helpers import write

import mltrail
from mltrail.errors import (
    ArtifactsUnsupportedError,
    CorruptObjectError,
    InvalidArgumentError,
    MltrailError,
    NotFoundError,
    RunFinishedError,
)
from mltrail.store.registry import StoreLocation, resolve_location
from mltrail.store.registry import open_artifact_store as artifact_store

NewRun = Callable[..., mltrail.Run]


def _flip_byte(path: Path) -> None:
    path.chmod(path.stat().st_mode | stat.S_IWUSR)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _object_path(store_dir: Path, digest: str) -> Path:
    from mltrail.objects.cache import Cache

    with Cache(store_dir / "objects") as cache:
        return Path(cache.path(digest))


# -- versioning ------------------------------------------------------------------------------


def test_file_versions_same_content_same_version(new_run: NewRun, tmp_path: Path) -> None:
    """Same bytes → same version; changed bytes → vN+1 and latest; old bytes → old version."""
    f = tmp_path / "train.csv"
    f.write_text("a,b\n1,2\n")
    run = new_run()
    v1 = run.log_artifact(f)
    assert (v1.name, v1.version, v1.kind, v1.type) == ("train.csv", 1, "file", "dataset")
    assert v1.size == f.stat().st_size and v1.file_count == 1
    assert v1.digest.startswith("blake3:") and v1.run_id == run.run_id
    assert run.log_artifact(f).version == 1
    f.unlink()
    f.write_text("a,b\n1,2\n3,4\n")
    v2 = run.log_artifact(f)
    assert v2.version == 2 and v2.aliases == ("latest",)
    f.unlink()
    f.write_text("a,b\n1,2\n")
    assert run.log_artifact(f).version == 1
    arts = artifact_store(run.location)
    assert arts.resolve("train.csv").version == 2
    assert [v.version for v in arts.list_versions("proj", "train.csv")] == [1, 2]


def test_aliases_move_between_versions(new_run: NewRun, tmp_path: Path) -> None:
    """``aliases=`` points the alias at the logged version, moving it off the old one."""
    run = new_run()
    a = write(tmp_path / "a", {"w.bin": b"\x00" * 10})
    b = write(tmp_path / "b", {"w.bin": b"\x01" * 10})
    v1 = run.log_artifact(a / "w.bin", name="model", type="model", aliases=("best",))
    assert v1.aliases == ("best", "latest")
    v2 = run.log_artifact(b / "w.bin", name="model", type="model", aliases="candidate")
    arts = artifact_store(run.location)
    assert arts.resolve("model:best").version == 1
    assert arts.resolve("model:candidate").version == v2.version == 2
    run.log_artifact(b / "w.bin", name="model", type="model", aliases=["best"])
    assert arts.resolve("model:best").version == 2
    assert arts.resolve("model:v1").aliases == ()


def test_directory_artifact_is_a_tree(new_run: NewRun, tmp_path: Path) -> None:
    """A directory is one tree digest; an edit to one file is a new version."""
    d = write(tmp_path / "ds", {"a.txt": "alpha", "sub/b.txt": "beta", "sub/c.txt": "gamma"})
    run = new_run()
    v1 = run.log_artifact(d, metadata={"rows": 3, "split": "train"})
    assert (v1.name, v1.kind, v1.file_count, v1.size) == ("ds", "tree", 3, 14)
    assert v1.digest.endswith(".tree") and v1.metadata == {"rows": 3, "split": "train"}
    assert run.log_artifact(d).version == 1
    (d / "sub" / "b.txt").unlink()
    (d / "sub" / "b.txt").write_text("BETA!")
    assert run.log_artifact(d).version == 2


# -- use_artifact ----------------------------------------------------------------------------


def test_use_artifact_round_trip(new_run: NewRun, tmp_path: Path) -> None:
    """A later run gets the same bytes back, verified, and the use is recorded as its input."""
    d = write(tmp_path / "ds", {"x.txt": "one", "nested/y.txt": "two"})
    f = write(tmp_path / "m", {"weights.pt": b"\x89PT" * 100}) / "weights.pt"
    producer = new_run("producer")
    producer.log_artifact(d, name="data")
    producer.log_artifact(f, type="model", aliases=("best",))
    producer.finish()

    consumer = new_run("consumer")
    got_dir = consumer.use_artifact("data:latest", root=tmp_path / "out")
    assert got_dir == tmp_path / "out"
    assert (got_dir / "x.txt").read_text() == "one"
    assert (got_dir / "nested" / "y.txt").read_text() == "two"
    got_file = consumer.use_artifact("weights.pt:best")
    assert got_file.name == "weights.pt" and got_file.read_bytes() == f.read_bytes()
    assert got_file.is_relative_to(Path(os.environ["MLTRAIL_CACHE_DIR"]))
    arts = artifact_store(consumer.location)
    assert [v.name for v in arts.run_inputs(consumer.run_id)] == ["data", "weights.pt"]
    assert [v.name for v in arts.run_outputs(producer.run_id)] == ["data", "weights.pt"]
    # the same file used again is still one input; by digest works too
    digest = arts.resolve("data:v1").digest
    assert consumer.use_artifact(digest, root=tmp_path / "again") == tmp_path / "again"
    assert len(arts.run_inputs(consumer.run_id)) == 2
    consumer.finish()
    state = mltrail.Api(consumer.location.display).state(consumer.run_id)
    assert {(i["name"], i["version"]) for i in state["inputs"]["inputs"]} == {
        ("artifact:proj/data", 1),
        ("artifact:proj/weights.pt", 1),
    }


def test_reproduction_pins_the_versions_the_original_used(
    new_run: NewRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under ``mltrail reproduce`` (MLTRAIL_PIN_INPUTS), a moved ``latest`` feeds the old data."""
    from mltrail.repro.data import PIN_ENV, input_pins

    producer = new_run("producer")
    producer.log_artifact(write(tmp_path / "v1", {"d.txt": "first"}), name="data")
    original = new_run("original")
    assert (original.use_artifact("data:latest", root=tmp_path / "o") / "d.txt").read_text() == (
        "first"
    )
    original.finish()
    producer.log_artifact(write(tmp_path / "v2", {"d.txt": "second"}), name="data")  # v2
    producer.finish()
    inputs = mltrail.Api(original.location.display).state(original.run_id)["inputs"]
    pins = input_pins(inputs)
    assert pins == {"proj/data": 1}
    import json

    monkeypatch.setenv(PIN_ENV, json.dumps(pins))
    repro = new_run("repro")
    got = repro.use_artifact("data:latest", root=tmp_path / "r")
    assert (got / "d.txt").read_text() == "first"
    assert [v.version for v in artifact_store(repro.location).run_inputs(repro.run_id)] == [1]
    repro.finish()
    monkeypatch.delenv(PIN_ENV)
    later = new_run("later")
    assert (later.use_artifact("data:latest", root=tmp_path / "l") / "d.txt").read_text() == (
        "second"
    )
    later.finish()


def test_corrupted_cache_object_is_refused(
    new_run: NewRun, store_dir: Path, tmp_path: Path
) -> None:
    """A flipped byte in the cached object fails use_artifact with an error naming it."""
    f = write(tmp_path / "src", {"blob.bin": os.urandom(4096)}) / "blob.bin"
    run = new_run()
    version = run.log_artifact(f, name="blob")
    obj = _object_path(store_dir, version.digest)
    assert obj.exists()
    _flip_byte(obj)
    with pytest.raises(CorruptObjectError, match=version.digest.split(":", 1)[1][:16]):
        run.use_artifact("blob:v1", root=tmp_path / "out")
    assert not (tmp_path / "out" / "blob.bin").exists() or (
        (tmp_path / "out" / "blob.bin").read_bytes() != f.read_bytes()
    )


def test_corrupted_tree_member_is_refused(new_run: NewRun, store_dir: Path, tmp_path: Path) -> None:
    """A corrupted file of a directory artifact is refused too."""
    d = write(tmp_path / "ds", {"ok.txt": "fine", "bad.txt": "x" * 1000})
    run = new_run()
    run.log_artifact(d, name="ds")
    from mltrail.objects.digest import hash_file

    digest = hash_file(d / "bad.txt")
    _flip_byte(_object_path(store_dir, digest))
    with pytest.raises(CorruptObjectError):
        run.use_artifact("ds", root=tmp_path / "out")


def test_use_unknown_artifact_errors(new_run: NewRun) -> None:
    """Unknown names, versions and aliases raise NotFoundError with the name in it."""
    run = new_run()
    with pytest.raises(NotFoundError, match="'nothing'"):
        run.use_artifact("nothing:latest")
    with pytest.raises(InvalidArgumentError):
        run.use_artifact("bad name")


# -- references ------------------------------------------------------------------------------


def test_local_reference_is_not_copied(new_run: NewRun, store_dir: Path, tmp_path: Path) -> None:
    """A local reference is hashed in place; use returns the path; a change is refused."""
    d = write(tmp_path / "big", {"p1.bin": b"1" * 5000, "p2.bin": b"2" * 7000})
    run = new_run()
    ref = run.log_reference(d, name="big")
    assert (ref.kind, ref.uri, ref.size, ref.file_count) == ("reference", str(d), 12000, 2)
    objects = store_dir / "objects"
    stored = [p for p in objects.rglob("*") if p.is_file()] if objects.exists() else []
    assert not any(p.stat().st_size in (5000, 7000) for p in stored)
    assert run.log_artifact(d, name="big", reference=True).version == 1
    assert run.use_artifact("big") == d
    copy = run.use_artifact("big", root=tmp_path / "copy")
    assert (copy / "p2.bin").read_bytes() == b"2" * 7000
    (d / "p1.bin").write_bytes(b"changed")
    with pytest.raises(CorruptObjectError, match="changed after it was logged"):
        run.use_artifact("big:v1")
    assert run.log_reference(d, name="big").version == 2


@pytest.mark.skipif(not os.environ.get("MLTRAIL_S3_ENDPOINT"), reason="no MLTRAIL_S3_ENDPOINT")
def test_s3_reference(new_run: NewRun, tmp_path: Path) -> None:
    """An S3 object is recorded by ETag and size, then downloaded and checked on use."""
    import uuid

    import s3fs

    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": os.environ["MLTRAIL_S3_ENDPOINT"]})
    bucket = f"mltrail-art-{uuid.uuid4().hex[:10]}"
    fs.mkdir(bucket)
    fs.pipe(f"{bucket}/data/part-0.csv", b"a,b\n1,2\n")
    fs.pipe(f"{bucket}/data/part-1.csv", b"a,b\n3,4\n")
    run = new_run()
    one = run.log_reference(f"s3://{bucket}/data/part-0.csv", name="part0")
    assert one.kind == "reference" and one.size == 8 and one.source["etag"]
    prefix = run.log_reference(f"s3://{bucket}/data", name="table")
    assert (prefix.file_count, prefix.size) == (2, 16)
    got = run.use_artifact("part0", root=tmp_path / "dl")
    assert got.read_bytes() == b"a,b\n1,2\n"
    table = run.use_artifact("table", root=tmp_path / "tbl")
    assert sorted(p.name for p in table.rglob("*.csv")) == ["part-0.csv", "part-1.csv"]
    fs.pipe(f"{bucket}/data/part-1.csv", b"a,b\n9,9\n")
    fs.invalidate_cache()
    with pytest.raises(CorruptObjectError):
        run.use_artifact("table", root=tmp_path / "tbl2")
    assert run.log_reference(f"s3://{bucket}/data", name="table").version == 2


# -- names and bad input ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "must not be empty"),
        ("a" * 129, "the limit is 128"),
        ("a/b", "'/'"),
        ("a:b", "':'"),
        ("../x", "'/'"),
        ("..", "must start with a letter or digit"),
        ("a\x00b", "NUL"),
        ("bad\ud800", "surrogate"),
        ("with space", "' '"),
        ("-flag", "must start with a letter or digit"),
        (42, "must be a str"),
    ],
)
def test_bad_names_are_refused(new_run: NewRun, tmp_path: Path, name: object, message: str) -> None:
    """Rows of the bad-input table for names: clear InvalidArgumentError, nothing logged."""
    f = write(tmp_path, {"f.txt": "x"}) / "f.txt"
    run = new_run()
    with pytest.raises(InvalidArgumentError, match=message):
        run.log_artifact(f, name=name)  # type: ignore[arg-type]
    assert artifact_store(run.location).list_artifacts() == []


def test_bad_alias_type_and_metadata(new_run: NewRun, tmp_path: Path) -> None:
    """Aliases ``latest``/``v3``, odd types and non-JSON or huge metadata are refused."""
    f = write(tmp_path, {"f.txt": "x"}) / "f.txt"
    run = new_run()
    with pytest.raises(InvalidArgumentError, match="implicit"):
        run.log_artifact(f, aliases=("latest",))
    with pytest.raises(InvalidArgumentError, match="version number"):
        run.log_artifact(f, aliases=("v3",))
    with pytest.raises(InvalidArgumentError, match="artifact type"):
        run.log_artifact(f, type="data set")
    with pytest.raises(InvalidArgumentError, match="JSON"):
        run.log_artifact(f, metadata={"x": object()})
    with pytest.raises(InvalidArgumentError, match="limit is 65536"):
        run.log_artifact(f, metadata={"x": "y" * 70_000})
    with pytest.raises(InvalidArgumentError, match="NUL"):
        run.log_artifact(str(f) + "\x00")
    with pytest.raises(NotFoundError, match="does not exist"):
        run.log_artifact(tmp_path / "missing.txt")


def test_names_are_nfc_and_defaults_sanitised(new_run: NewRun, tmp_path: Path) -> None:
    """NFD and NFC spellings are one artifact; a file name with spaces becomes a valid name."""
    f = write(tmp_path, {"my data (v2).csv": "x"}) / "my data (v2).csv"
    run = new_run()
    assert run.log_artifact(f).name == "my-data-v2-.csv"
    nfc = run.log_artifact(f, name="caf\u00e9")
    nfd = run.log_artifact(f, name="cafe\u0301")
    assert nfc.name == nfd.name == "caf\u00e9" and nfd.version == 1


# -- runs, stores ----------------------------------------------------------------------------


def test_module_level_functions_use_the_active_run(new_run: NewRun, tmp_path: Path) -> None:
    """mltrail.log_artifact / use_artifact work on the active run and need one."""
    f = write(tmp_path, {"cfg.yaml": "a: 1"}) / "cfg.yaml"
    with pytest.raises(MltrailError, match="no active run"):
        mltrail.log_artifact(f)
    run = new_run()
    v = mltrail.log_artifact(f, type="config")
    assert v.run_id == run.run_id
    assert mltrail.use_artifact("cfg.yaml", root=tmp_path / "o").read_text() == "a: 1"
    run.finish()
    with pytest.raises(RunFinishedError):
        run.log_artifact(f)


def test_sqlite_store_uses_the_artifacts_setting(
    new_run: NewRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An sqlite:/// store keeps objects at MLTRAIL_ARTIFACTS; ``artifacts=`` overrides it."""
    f = write(tmp_path, {"f.bin": b"abc" * 50}) / "f.bin"
    monkeypatch.setenv("MLTRAIL_ARTIFACTS", str(tmp_path / "env-objects"))
    run = new_run(store=f"sqlite:///{tmp_path / 'db' / 'runs.db'}")
    run.log_artifact(f, name="one")
    assert any(p.is_file() for p in (tmp_path / "env-objects").rglob("*"))
    other = new_run(store=f"sqlite:///{tmp_path / 'db' / 'runs.db'}", artifacts=tmp_path / "mine")
    other.log_artifact(write(tmp_path, {"g.bin": b"xyz"}) / "g.bin", name="two")
    assert any(p.is_file() for p in (tmp_path / "mine").rglob("*"))
    assert other.use_artifact("two", root=tmp_path / "o").read_bytes() == b"xyz"


def test_store_without_artifacts_is_not_supported() -> None:
    """A store kind without artifacts gets a clear not-implemented error; a server has them
    (tests/remote/test_remote_artifacts.py)."""
    loc = StoreLocation("ftp", "ftp://127.0.0.1:1", Path("/nonexistent"), "ftp://127.0.0.1:1")
    with pytest.raises(ArtifactsUnsupportedError, match="not supported"):
        artifact_store(loc)
    assert ArtifactsUnsupportedError.http_status == 501
    assert resolve_location("sqlite:///x.db").scheme == "sqlite"


def test_lineage_across_a_three_run_chain(new_run: NewRun, tmp_path: Path) -> None:
    """data → train → eval: upstream of eval reaches the data run; downstream of data, eval."""
    raw = write(tmp_path / "raw", {"rows.csv": "1\n2\n"})
    prep = new_run("prep")
    data = prep.log_artifact(raw, name="data")
    prep.finish()
    train = new_run("train")
    train.use_artifact("data")
    model = train.log_artifact(write(tmp_path, {"m.pt": b"w"}) / "m.pt", name="model", type="model")
    train.finish()
    ev = new_run("eval")
    ev.use_artifact("model:latest")
    ev.log_artifact(write(tmp_path, {"report.json": "{}"}) / "report.json", type="report")
    ev.finish()
    arts = artifact_store(ev.location)
    up = arts.lineage(run_id=ev.run_id, direction="upstream")
    assert {n.id for n in up.nodes} == {
        f"run:{ev.run_id}",
        f"artifact:{model.qualified}",
        f"run:{train.run_id}",
        f"artifact:{data.qualified}",
        f"run:{prep.run_id}",
    }
    down = arts.lineage(version=data, direction="downstream")
    assert f"run:{ev.run_id}" in {n.id for n in down.nodes}
    assert "artifact:proj/report.json:v1" in {n.id for n in down.nodes}


def test_logged_file_stays_writable_and_independent(new_run: NewRun, tmp_path: Path) -> None:
    """Logging never makes the user's file read-only or shares its inode with the cache."""
    f = write(tmp_path, {"ckpt.pt": b"epoch-1"}) / "ckpt.pt"
    run = new_run()
    v1 = run.log_artifact(f, name="ckpt", type="model")
    assert os.access(f, os.W_OK) and f.stat().st_nlink == 1
    f.write_bytes(b"epoch-2")  # a training loop overwriting its checkpoint in place
    v2 = run.log_artifact(f, name="ckpt", type="model")
    assert (v1.version, v2.version) == (1, 2)
    assert run.use_artifact("ckpt:v1", root=tmp_path / "old").read_bytes() == b"epoch-1"


@pytest.mark.skipif(not os.environ.get("MLTRAIL_S3_ENDPOINT"), reason="no MLTRAIL_S3_ENDPOINT")
def test_artifacts_in_an_s3_bucket(
    new_run: NewRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MLTRAIL_ARTIFACTS=s3://...: objects are pushed there and pulled on another machine."""
    import shutil
    import uuid

    import s3fs

    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": os.environ["MLTRAIL_S3_ENDPOINT"]})
    bucket = f"mltrail-art-{uuid.uuid4().hex[:10]}"
    fs.mkdir(bucket)
    monkeypatch.setenv("MLTRAIL_ARTIFACTS", f"s3://{bucket}/objects")
    d = write(tmp_path / "ds", {"a.txt": "alpha", "sub/b.bin": os.urandom(2048)})
    run = new_run(store=f"sqlite:///{tmp_path / 'runs.db'}")
    v = run.log_artifact(d, name="ds")
    assert len(fs.find(f"{bucket}/objects")) == 3  # two files and the tree
    shutil.rmtree(Path(os.environ["MLTRAIL_CACHE_DIR"]) / "objects")  # a fresh machine
    got = run.use_artifact("ds", root=tmp_path / "out")
    assert (got / "sub" / "b.bin").read_bytes() == (d / "sub" / "b.bin").read_bytes()
    assert v.kind == "tree"
