"""Attestations: `mltrail attest` round trips on SQLite and PostgreSQL, what the statement
says, tamper cases for `mltrail attest verify`, interoperability with securesystemslib's DSSE
and in-toto's protobuf schemas, OpenSSF model signatures, the documentation pack."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mltrail.cli.main import app

runner = CliRunner()


def _cli(*args: str) -> Any:
    return runner.invoke(app, list(args))


@pytest.fixture
def keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """The local Ed25519 signing key (MLTRAIL_AUDIT_KEY) and its public key."""
    from mltrail.audit.keys import generate_key

    key = tmp_path / "keys" / "ed25519.pem"
    monkeypatch.setenv("MLTRAIL_AUDIT_KEY", str(key))
    return key, generate_key(key)


@pytest.fixture
def model_store(
    store_uri: str, code_repo: Path, new_run: Any, tmp_path: Path, keys: tuple[Path, Path]
) -> dict[str, Any]:
    """A store where run `train` used a dataset artifact and a base model, logged a model
    folder and metrics; the model is registered as fraud v1 with alias production (an alias
    move: the audit trail signs a checkpoint with the key)."""
    import mltrail

    (tmp_path / "base.bin").write_bytes(b"pretrained" * 10)
    (tmp_path / "features.csv").write_text("a,b\n1,2\n")
    with new_run(store_uri, code_repo) as prep:
        prep.log_artifact(tmp_path / "features.csv", name="features")
        prep.log_artifact(tmp_path / "base.bin", name="base", type="model")
    with new_run(store_uri, code_repo, config={"lr": 0.01, "depth": 4}) as run:
        run.use_artifact("features:latest", root=tmp_path / "in")
        run.use_artifact("base:v1", root=tmp_path / "in")
        for step in range(5):
            run.log({"val/auc": 0.8 + step / 100, "loss": 1.0 / (step + 1)}, step=step)
        model = tmp_path / "model"
        (model / "sub").mkdir(parents=True)
        (model / "weights.bin").write_bytes(bytes(range(256)) * 8)
        (model / "sub" / "config.json").write_text('{"depth": 4}')
        version = run.log_artifact(model, name="model", type="model")
    v = mltrail.register_model(
        "fraud", run=run.run_id, artifact=f"fraud/model:v{version.version}", store=store_uri
    )
    mltrail.set_alias("fraud", "production", v.version, store=store_uri)
    return {"uri": store_uri, "run_id": run.run_id, "model": model, "repo": code_repo}


def _statement(envelope_path: Path) -> dict[str, Any]:
    env = json.loads(envelope_path.read_text())
    got: dict[str, Any] = json.loads(base64.b64decode(env["payload"]))
    return got


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("store_uri", ["sqlite", "postgres"], indirect=True)
def test_attest_a_model_version_and_verify_it_offline(
    model_store: dict[str, Any], keys: tuple[Path, Path], tmp_path: Path
) -> None:
    """`mltrail attest fraud@production -o F` then `mltrail attest verify F --public-key
    --artifact DIR` (no store needed): ok; the statement carries what the issue lists."""
    import mltrail
    from mltrail.store.registry import open_store, resolve_location

    out = tmp_path / "fraud.intoto.json"
    got = _cli("attest", "fraud@production", "--store", model_store["uri"], "-o", str(out))
    assert got.exit_code == 0, got.output
    files = mltrail.load_model_ref(
        "models:/fraud@production", tmp_path / "checkout", store=model_store["uri"]
    )
    ok = _cli("attest", "verify", str(out), "--public-key", str(keys[1]), "--artifact", str(files))
    assert ok.exit_code == 0, ok.output
    assert "ok: signed by key" in ok.output and "2 file(s) match" in ok.output

    st = _statement(out)
    model = model_store["model"]
    assert st["_type"] == "https://in-toto.io/Statement/v1"
    assert st["predicateType"] == "https://slsa.dev/provenance/v1"
    assert st["subject"] == [
        {"name": "sub/config.json", "digest": {"sha256": _sha(model / "sub" / "config.json")}},
        {"name": "weights.bin", "digest": {"sha256": _sha(model / "weights.bin")}},
    ]
    build = st["predicate"]["buildDefinition"]
    ext = build["externalParameters"]
    assert ext["params"] == {"lr": 0.01, "depth": 4}
    assert ext["entryPoint"] == "train.py"
    assert ext["command"][1:] == [str(model_store["repo"] / "train.py"), "--epochs", "2"]
    sha = subprocess.run(
        ["git", "-C", str(model_store["repo"]), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    assert ext["code"][0]["commit"] == sha
    assert ext["code"][0]["repository"] == "https://git.example.com/team/proj.git"
    assert ext["model"]["ref"] == "models:/fraud/fraud/1" and ext["model"]["aliases"] == [
        "production"
    ]
    assert build["internalParameters"]["mltrailVersion"] == mltrail.__version__
    assert "packages" in build["internalParameters"]["environment"]
    deps = {d["name"]: d for d in build["resolvedDependencies"]}
    assert deps["data/train.csv"]["digest"]["blake3"]
    assert deps["fraud/features:v1"]["annotations"]["type"] == "dataset"
    assert deps["fraud/base:v1"]["annotations"]["type"] == "model"  # the base model
    code = [d for d in deps.values() if d["annotations"]["kind"] == "code"]
    assert code[0]["digest"] == {"gitCommit": sha}
    assert code[0]["uri"] == "git+https://git.example.com/team/proj.git"
    assert any(
        d["annotations"]["kind"] == "lockfile" and "sha256" in d["digest"] for d in deps.values()
    )
    details = st["predicate"]["runDetails"]
    assert details["metadata"]["invocationId"] == model_store["run_id"]
    loc = resolve_location(model_store["uri"])  # the store, without any password
    assert details["builder"]["id"] in (loc.display, f"file://{loc.display}")

    # the metrics digest is recomputed from the store's series by its documented method
    store = open_store(model_store["uri"])
    h = hashlib.sha256()
    for key in ("loss", "val/auc"):
        series = store.metric_history(model_store["run_id"], key)
        h.update(key.encode() + b"\x00" + series.steps.astype("<i8").tobytes())
        h.update(series.values.astype("<f8").tobytes())
    [metrics] = [b for b in details["byproducts"] if b["name"] == "metrics"]
    assert metrics["digest"] == {"sha256": h.hexdigest()}
    assert metrics["annotations"]["points"] == 10


@pytest.mark.parametrize("store_uri", ["sqlite"], indirect=True)
def test_tampering_is_detected_and_others_can_verify(
    model_store: dict[str, Any], keys: tuple[Path, Path], tmp_path: Path
) -> None:
    """verify exits 1 naming the cause: a changed file, a missing file, an extra file,
    another key, an edited statement with the old signature, a malformed envelope. Outside
    tools read the envelope and statement (below); the audit byproduct is the trail's."""
    import shutil

    from mltrail.audit.keys import generate_key

    out = tmp_path / "f.json"
    assert _cli("attest", "fraud@1", "--store", model_store["uri"], "-o", str(out)).exit_code == 0
    files = tmp_path / "files"
    shutil.copytree(model_store["model"], files)
    pub = str(keys[1])

    def verify(envelope: Path = out, key: str = pub, artifact: Path = files) -> Any:
        return _cli(
            "attest", "verify", str(envelope), "--public-key", key, "--artifact", str(artifact)
        )

    assert verify().exit_code == 0
    (files / "weights.bin").write_bytes(b"poisoned")
    bad = verify()
    assert bad.exit_code == 1 and "weights.bin: sha256" in bad.output
    shutil.copy(model_store["model"] / "weights.bin", files / "weights.bin")
    (files / "sub" / "config.json").unlink()
    bad = verify()
    assert bad.exit_code == 1 and "sub/config.json: missing" in bad.output
    shutil.copy(model_store["model"] / "sub" / "config.json", files / "sub" / "config.json")
    (files / "backdoor.py").write_text("x")
    bad = verify()
    assert bad.exit_code == 1 and "backdoor.py: under" in bad.output
    (files / "backdoor.py").unlink()
    assert verify().exit_code == 0

    other = generate_key(tmp_path / "other" / "k.pem")
    bad = verify(key=str(other))
    assert bad.exit_code == 1 and "no signature verifies" in bad.output

    env = json.loads(out.read_text())
    st = json.loads(base64.b64decode(env["payload"]))
    st["predicate"]["buildDefinition"]["externalParameters"]["params"]["lr"] = 0.5
    env["payload"] = base64.b64encode(json.dumps(st).encode()).decode()
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(env))
    bad = verify(envelope=edited)
    assert bad.exit_code == 1 and "no signature verifies" in bad.output
    env["payloadType"] = "application/json"
    env["payload"] = json.loads(out.read_text())["payload"]
    edited.write_text(json.dumps(env))
    assert verify(envelope=edited).exit_code == 1  # the type is signed too

    edited.write_text("{not json")
    bad = verify(envelope=edited)
    assert bad.exit_code == 1 and "envelope: not JSON" in bad.output
    assert "Traceback" not in bad.output
    _check_interop(model_store, keys, tmp_path)
    _check_audit_byproduct(model_store, keys[1])


def _check_interop(model_store: dict[str, Any], keys: tuple[Path, Path], tmp_path: Path) -> None:
    """securesystemslib's DSSE verifies the envelope with the same public key; in-toto's
    protobuf Statement and SLSA v1 Provenance parse the statement strictly (no unknown
    field) and the Statement validates; a run target's subjects are ARTIFACT/path."""
    from cryptography.hazmat.primitives.serialization import load_pem_public_key
    from google.protobuf import json_format
    from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
    from in_toto_attestation.v1 import statement_pb2
    from in_toto_attestation.v1.statement import Statement
    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import SSlibKey

    from mltrail.audit.keys import public_key_id

    out = tmp_path / "run.json"
    got = _cli("attest", model_store["run_id"][:8], "--store", model_store["uri"], "-o", str(out))
    assert got.exit_code == 0, got.output
    pub = load_pem_public_key(keys[1].read_bytes())
    key = SSlibKey.from_crypto(pub, keyid=public_key_id(pub))  # type: ignore[arg-type]
    envelope = Envelope.from_dict(json.loads(out.read_text()))
    assert list(envelope.verify([key], 1)) == [public_key_id(pub)]  # type: ignore[arg-type]

    st = _statement(out)
    assert [s["name"] for s in st["subject"]] == ["model/sub/config.json", "model/weights.bin"]
    pb = json_format.ParseDict(st, statement_pb2.Statement())
    Statement.copy_from_pb(pb).validate()
    json_format.ParseDict(st["predicate"], provenance_pb2.Provenance())


def _check_audit_byproduct(model_store: dict[str, Any], public_key: Path) -> None:
    """The statement carries the audit trail's latest signed checkpoint and the inclusion
    proofs of the run's entries, exactly run_inclusion's; an auditor checks the checkpoint's
    signature and every proof offline."""
    from mltrail.attest.api import attest
    from mltrail.audit.api import run_inclusion
    from mltrail.audit.checkpoints import Checkpoint
    from mltrail.audit.keys import load_public_key
    from mltrail.audit.merkle import leaf_hash, verify_inclusion
    from mltrail.store.registry import open_store

    signed = attest("fraud@1", store=model_store["uri"])
    byproducts = {b["name"]: b for b in signed.statement["predicate"]["runDetails"]["byproducts"]}
    proof = run_inclusion(open_store(model_store["uri"]), model_store["run_id"])
    assert proof is not None  # the alias move signed a checkpoint
    content = base64.b64decode(byproducts["audit-inclusion"]["content"])
    assert byproducts["audit-inclusion"]["digest"]["sha256"] == hashlib.sha256(content).hexdigest()
    got = json.loads(content)
    assert got == json.loads(json.dumps(proof))
    checkpoint = Checkpoint.from_dict(got["checkpoint"])
    assert checkpoint.verify_signature(load_public_key(public_key))
    assert got["entries"], "the run's entries are covered by the checkpoint"
    for e in got["entries"]:
        assert verify_inclusion(
            leaf_hash(bytes.fromhex(e["entry_hash"])),
            e["leaf_index"],
            got["tree_size"],
            [bytes.fromhex(p) for p in e["proof"]],
            bytes.fromhex(checkpoint.root),
        )


@pytest.mark.parametrize("store_uri", ["sqlite"], indirect=True)
def test_openssf_model_signature_round_trip(model_store: dict[str, Any], tmp_path: Path) -> None:
    """`mltrail models sign fraud@production --new-key` signs the model's files in the OpenSSF
    format; model-signing's own verifier accepts them, and refuses a changed file and
    another key."""
    from model_signing import verifying

    key = tmp_path / "ec" / "p256.pem"
    sig = tmp_path / "fraud.sig"
    files = tmp_path / "signed-files"
    got = _cli(
        "models", "sign", "fraud@production", "--key", str(key), "--new-key", "-o", str(sig),
        "--to", str(files), "--store", model_store["uri"],
    )  # fmt: skip
    assert got.exit_code == 0, got.output
    pub = key.with_name(key.name + ".pub")
    verifying.Config().use_elliptic_key_verifier(public_key=pub).verify(files, sig)
    (files / "weights.bin").chmod(0o644)
    (files / "weights.bin").write_bytes(b"poisoned")
    with pytest.raises(ValueError, match="weights.bin"):
        verifying.Config().use_elliptic_key_verifier(public_key=pub).verify(files, sig)
    again = _cli(
        "models", "sign", "fraud@1", "--key", str(key), "--new-key", "--store", model_store["uri"]
    )
    assert again.exit_code == 1 and "already exists" in again.output


@pytest.mark.parametrize(
    "store_uri", ["sqlite", pytest.param("postgres", marks=pytest.mark.slow)], indirect=True
)
def test_export_docs_pack(
    model_store: dict[str, Any], keys: tuple[Path, Path], tmp_path: Path
) -> None:
    """`mltrail models export-docs fraud@production -o X.zip` (and to a folder): card,
    signed provenance that verifies with the pack's key, evaluation, data inputs, sums."""
    import mltrail

    pack = tmp_path / "fraud-docs.zip"
    got = _cli(
        "models", "export-docs", "fraud@production", "-o", str(pack), "--store", model_store["uri"]
    )
    assert got.exit_code == 0, got.output
    with zipfile.ZipFile(pack) as z:
        names = set(z.namelist())
        z.extractall(tmp_path / "unzipped")
    assert {
        "README.md", "model_card.md", "model_card.html", "model_card.json", "SHA256SUMS",
        "provenance.intoto.json", "public_key.pem", "evaluation.json", "data_inputs.json",
        "audit_proof.json",
    } <= names  # fmt: skip
    root = tmp_path / "unzipped"
    for line in (root / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split("  ")
        assert _sha(root / name) == digest, name
    card = json.loads((root / "model_card.json").read_text())
    assert "fraud/features:v1" in json.dumps(card)  # training data filled from the run
    evaluation = json.loads((root / "evaluation.json").read_text())
    assert evaluation["metrics"]["val/auc"]["last"] == pytest.approx(0.84)
    assert "system/cpu_percent" not in evaluation["metrics"]
    data = json.loads((root / "data_inputs.json").read_text())
    assert {d.get("path") or d.get("name") for d in data} >= {"data/train.csv", "fraud/features:v1"}
    files = mltrail.load_model_ref(
        "models:/fraud@production", tmp_path / "m", store=model_store["uri"]
    )
    ok = _cli(
        "attest", "verify", str(root / "provenance.intoto.json"),
        "--public-key", str(root / "public_key.pem"), "--artifact", str(files),
    )  # fmt: skip
    assert ok.exit_code == 0, ok.output

    folder = tmp_path / "pack"
    assert (
        _cli(
            "models", "export-docs", "fraud@1", "-o", str(folder), "--store", model_store["uri"]
        ).exit_code
        == 0
    )
    assert (
        (folder / "README.md").read_text().startswith("# Technical documentation: fraud/fraud v1")
    )
    again = _cli(
        "models", "export-docs", "fraud@1", "-o", str(folder), "--store", model_store["uri"]
    )
    assert again.exit_code == 1 and "not an empty folder" in again.output


def test_attest_names_bad_input(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    """No key, no store, a run target without files: one error line each."""
    missing_key = _cli(
        "attest", "fraud@1", "--key", str(tmp_path / "nokey.pem"), "--store", str(tmp_path)
    )
    assert missing_key.exit_code == 1 and "no audit key at" in missing_key.output
    no_pub = _cli(
        "attest", "verify", str(tmp_path / "x.json"), "--public-key", str(tmp_path / "none.pub")
    )
    assert no_pub.exit_code == 1 and "no public key at" in no_pub.output
    no_file = _cli("attest", "verify", str(tmp_path / "x.json"), "--public-key", str(keys[1]))
    assert no_file.exit_code == 1 and "no envelope at" in no_file.output


def test_attest_and_export_lineage_through_a_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keys: tuple[Path, Path]
) -> None:
    """With a server store (http://, a token) the model's files come from the server
    (verified), the statement names the server as builder, and a run's OpenLineage events
    are read through the REST API."""
    import mltrail
    from mltrail.attest.api import attest, verify
    from mltrail.lineage_export.events import to_dict
    from mltrail.lineage_export.export import run_events
    from mltrail.store.registry import forget_open_stores, open_store
    from mltrail.testing.server import ThreadedServer

    monkeypatch.chdir(tmp_path)
    (tmp_path / ".git").mkdir()
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"remote weights" * 100)
    with ThreadedServer(str(tmp_path / "srv-store"), str(tmp_path / "srv-art")) as srv:
        _, token = srv.app.state.store.tokens().create("admin", name="ci-bot")
        monkeypatch.setenv("MLTRAIL_TOKEN", token)
        monkeypatch.setenv("MLTRAIL_STORE", srv.url)
        with mltrail.init(project="proj", capture=False, console=False, system_metrics_s=0) as run:
            run.log({"val/auc": 0.91}, step=0)
            mltrail.register_model("fraud", run=run, artifact=weights)
        forget_open_stores()
        monkeypatch.setenv("MLTRAIL_CACHE_DIR", str(tmp_path / "fresh-cache"))
        signed = attest("proj/fraud@1")
        events = [to_dict(e) for e in run_events(open_store(srv.url), run.run_id, "mltrail")]
        forget_open_stores()
    assert signed.statement["predicate"]["runDetails"]["builder"]["id"] == srv.url
    assert signed.statement["subject"] == [
        {"name": "weights.bin", "digest": {"sha256": _sha(weights)}}
    ]
    envelope = tmp_path / "remote.json"
    envelope.write_text(signed.to_json())
    assert verify(envelope, keys[1], weights).files_checked == ["weights.bin"]
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    assert events[1]["outputs"][0]["name"] == "artifacts/proj/fraud"
