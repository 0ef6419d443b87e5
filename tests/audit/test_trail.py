"""The trail of a store: every kind of change leaves a verified entry; checkpoints, proofs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _audit_trail import BLOB_DIGEST, Trail, audit_env, run_batches
from typer.testing import CliRunner

from mltrail.audit.api import run_inclusion
from mltrail.audit.checkpoints import read_checkpoints
from mltrail.audit.keys import load_public_key, public_key_path
from mltrail.audit.merkle import leaf_hash, verify_inclusion
from mltrail.audit.verify import verify_log
from mltrail.cli.main import app


def test_every_change_is_in_the_trail_and_verifies(trail: Trail) -> None:
    store = trail.store
    entries = list(store.audit_entries())
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    actions = [e.action for e in entries]
    assert actions[0] == "run.create+params+tags+state+blobs"
    assert actions[1:4] == ["run.metrics"] * 3 and actions[4] == "run.status"
    for kind in (
        "artifact.version",
        "model.version_created",
        "model.alias_set",
        "token.create",
        "token.revoke",
    ):
        assert kind in actions
    assert entries[0].blobs == (BLOB_DIGEST,)
    alias = next(e for e in entries if e.action == "model.alias_set")
    assert alias.actor == "alice" and alias.subject == "model:audit/fraud"
    assert entries[0].actor.startswith("local:")
    # checkpoints: every 5 entries, at the alias move, and the final one; also off-box
    cps = store.audit_checkpoints()
    assert "alias" in {c.reason for c in cps} and "every" in {c.reason for c in cps}
    assert cps[-1].tree_size == len(entries)
    offbox = read_checkpoints(str(trail.offbox))
    assert {c.tree_size for c in offbox} == {c.tree_size for c in cps}
    report = verify_log(
        store, extra_checkpoints=offbox, public_key=load_public_key(public_key_path(trail.key))
    )
    assert report.ok, report.problems
    assert report.checkpoints == report.signatures_checked == len(cps)  # copies merged
    assert report.series == 2 and report.blobs == 1 and report.entries == len(entries)


def test_run_inclusion_proofs_reach_the_signed_root(trail: Trail) -> None:
    got = run_inclusion(trail.store, trail.runs[0])
    assert got is not None
    json.dumps(got)  # JSON-ready
    cp = got["checkpoint"]
    pub = load_public_key(public_key_path(trail.key))
    from mltrail.audit.checkpoints import Checkpoint

    assert Checkpoint.from_dict(cp).verify_signature(pub)
    assert [e["seq"] for e in got["entries"]] == [1, 2, 3, 4, 5]
    root = bytes.fromhex(cp["root"])
    for item in got["entries"]:
        leaf = leaf_hash(bytes.fromhex(item["entry_hash"]))
        proof = [bytes.fromhex(p) for p in item["proof"]]
        assert verify_inclusion(leaf, item["leaf_index"], cp["tree_size"], proof, root)
        assert not verify_inclusion(leaf, item["leaf_index"] + 1, cp["tree_size"], proof, root)
    assert run_inclusion(trail.store, "no-such-run") == {
        **got,
        "run_id": "no-such-run",
        "entries": [],
    }


def test_no_key_chains_entries_but_skips_checkpoints(
    store_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mltrail.store.registry import open_store

    monkeypatch.setenv("MLTRAIL_AUDIT_KEY", str(tmp_path / "absent.pem"))
    monkeypatch.setenv("MLTRAIL_AUDIT_CHECKPOINT_EVERY", "2")
    store = open_store(store_uri, shared=False)
    try:
        for batch in run_batches("nokeyrun01", 1_700_000_000_000):
            store.apply_batch(batch)
        assert store.audit_size() == 5
        assert store.audit_checkpoints() == []
        assert store.audit_checkpoint() is None
        assert run_inclusion(store, "nokeyrun01") is None
        report = verify_log(store)
        assert report.ok and any("no signed checkpoint" in n for n in report.notes)
    finally:
        store.close()


def test_cli_init_verify_log_prove(
    store_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mltrail.store.registry import open_store

    monkeypatch.setenv("MLTRAIL_AUDIT_KEY", str(tmp_path / "k" / "key.pem"))
    monkeypatch.setenv("MLTRAIL_AUDIT_CHECKPOINTS", str(tmp_path / "offbox"))
    store = open_store(store_uri, shared=False)
    # a store that held runs before its trail began: `audit init` records a baseline
    for batch in run_batches("beforetrail1", 1_700_000_000_000):
        store.apply_batch(batch)
    trail_rows = store._engine  # noqa: SLF001
    with trail_rows.begin() as conn:
        import sqlalchemy as sa

        conn.execute(sa.text("DELETE FROM audit_log"))
    store.close()
    runner = CliRunner()
    out = runner.invoke(app, ["audit", "verify", "--store", store_uri])
    assert out.exit_code == 1 and "a row the trail never wrote" in out.output
    out = runner.invoke(app, ["audit", "init", "--store", store_uri])
    assert out.exit_code == 0, out.output
    assert "public key:" in out.output and "audit.baseline" in out.output
    out = runner.invoke(app, ["audit", "verify", "--store", store_uri])
    assert out.exit_code == 0, out.output
    assert out.output.startswith("ok: 1 entries, 1 checkpoints (1 signatures checked)")
    out = runner.invoke(app, ["audit", "log", "--store", store_uri, "--json"])
    assert [e["action"] for e in json.loads(out.output)] == ["audit.baseline"]
    store = open_store(store_uri, shared=False)
    for batch in run_batches("aftertrail01", 1_700_000_000_000):
        store.apply_batch(batch)
    store.close()
    out = runner.invoke(app, ["audit", "checkpoint", "--store", store_uri])
    assert out.exit_code == 0 and "checkpoint: 6 entries" in out.output
    out = runner.invoke(app, ["audit", "log", "--store", store_uri, "--subject", "aftertrail01"])
    assert out.exit_code == 0 and out.output.count("run:aftertrail01") == 5
    out = runner.invoke(app, ["audit", "prove", "aftertrail01", "--store", store_uri, "--json"])
    assert out.exit_code == 0, out.output
    assert [e["seq"] for e in json.loads(out.output)["entries"]] == [2, 3, 4, 5, 6]
    out = runner.invoke(app, ["audit", "log", "--store", store_uri, "--subject", "nothing"])
    assert out.exit_code == 1 and "--subject nothing" in out.output


def test_audit_env_key_is_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key, _ = audit_env(monkeypatch, tmp_path)
    assert oct(key.stat().st_mode & 0o777) == "0o600"
