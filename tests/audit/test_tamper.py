"""Tampering with a store, eight ways: each is detected and named by ``audit verify``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from _audit_trail import BLOB_DIGEST, Trail, populate
from typer.testing import CliRunner

from mltrail.audit.checkpoints import read_checkpoints
from mltrail.audit.entries import GENESIS, canonical, digest, entry_hash
from mltrail.audit.keys import generate_key, load_private_key, load_public_key, public_key_path
from mltrail.audit.verify import Report, verify_log
from mltrail.cli.main import app


def _verify(trail: Trail, store: Any = None) -> Report:
    return verify_log(
        store if store is not None else trail.store,
        extra_checkpoints=read_checkpoints(str(trail.offbox)),
        public_key=load_public_key(public_key_path(trail.key)),
    )


def _cli_verify(trail: Trail, uri: str) -> tuple[int, str]:
    out = CliRunner().invoke(
        app,
        [
            "audit",
            "verify",
            "--store",
            uri,
            "--checkpoint",
            str(trail.offbox),
            "--public-key",
            str(public_key_path(trail.key)),
        ],
    )
    return out.exit_code, out.output


def _first_seq(trail: Trail, action: str) -> int:
    return next(e.seq for e in trail.store.audit_entries() if e.action == action)


def test_untouched_store_verifies(trail: Trail, store_uri: str) -> None:
    code, output = _cli_verify(trail, store_uri)
    assert code == 0 and output.startswith("ok: 15 entries"), output


def test_edit_a_param_value(trail: Trail, store_uri: str) -> None:
    trail.sql("UPDATE params SET value = '0.2' WHERE key = 'lr' AND run_id = :r", r=trail.runs[0])
    report = _verify(trail)
    first = report.first
    assert first is not None and first.seq == 1
    assert "params" in first.reason and "lr" in first.reason and "'0.2'" in first.reason
    code, output = _cli_verify(trail, store_uri)
    assert code == 1 and output.startswith("FAILED at entry 1: params")


def test_delete_a_metric_chunk(trail: Trail) -> None:
    chunks = trail.scalar(
        "SELECT COUNT(*) FROM metric_chunks WHERE run_id = :r AND key = 'loss'", r=trail.runs[0]
    )
    assert chunks == 3
    trail.sql(
        "DELETE FROM metric_chunks WHERE run_id = :r AND key = 'loss' AND seq = 1",
        r=trail.runs[0],
    )
    first = _verify(trail).first
    # the second batch's points are now the third's: its entry is named
    assert first is not None and first.seq == trail.metric_seqs[1]
    assert f"metrics of run {trail.runs[0]} ('loss'): the stored points differ" in first.reason


def test_insert_a_forged_entry(trail: Trail) -> None:
    """A well-formed entry slipped in after entry 3, claiming a param the run never had."""
    at = 4
    with trail.engine.begin() as conn:
        rows = conn.execute(
            sa.text("SELECT seq FROM audit_log WHERE seq >= :s ORDER BY seq DESC"), {"s": at}
        ).all()
        for (seq,) in rows:
            conn.execute(
                sa.text("UPDATE audit_log SET seq = :n WHERE seq = :o"), {"n": seq + 1, "o": seq}
            )
        prev = conn.execute(
            sa.text("SELECT hash FROM audit_log WHERE seq = :s"), {"s": at - 1}
        ).scalar()
        cols = ["run_id", "key", "value", "vtype", "value_num"]
        row = [trail.runs[0], "approved_by", "cfo", "s", None]
        spec = {"cols": cols, "pk": ["run_id", "key"], "rows": [row], "deleted": []}
        payload = canonical({"run": trail.runs[0], "rows": {"params": spec}})
        pdig = digest(payload)
        ts, actor, action, subject = 1, "local:mallory@x", "run.params", f"run:{trail.runs[0]}"
        h = entry_hash(at, ts, actor, action, subject, pdig, (), prev)
        conn.execute(
            sa.text(
                "INSERT INTO audit_log (seq, ts_ms, actor, action, subject, payload, "
                "payload_digest, blobs, prev_hash, hash) VALUES (:seq, :ts, :actor, :action, "
                ":subject, :payload, :pdig, '[]', :prev, :h)"
            ),
            {
                "seq": at,
                "ts": ts,
                "actor": actor,
                "action": action,
                "subject": subject,
                "payload": payload,
                "pdig": pdig,
                "prev": prev,
                "h": h,
            },
        )
    report = _verify(trail)
    first = report.first
    assert first is not None and first.seq == at
    assert "params" in first.reason and "approved_by" in first.reason and "missing" in first.reason
    reasons = " | ".join(str(p) for p in report.problems)
    assert f"entry {at + 1}: the entry's hash does not match" in reasons  # renumbered after it
    assert "differs from the signed root" in reasons  # and the signed roots no longer match


def test_truncate_the_last_entries(trail: Trail, store_uri: str) -> None:
    """The last 3 entries and the store's checkpoints over them are deleted: the off-box
    checkpoint still covers them."""
    n = trail.store.audit_size()
    k = 3
    trail.sql("DELETE FROM audit_log WHERE seq > :m", m=n - k)
    trail.sql("DELETE FROM audit_checkpoints WHERE tree_size > :m", m=n - k)
    report = _verify(trail)
    truncated = [p for p in report.problems if "truncated" in p.reason]
    assert truncated and truncated[0].seq == n - k + 1
    assert f"the log has {n - k} entries but a checkpoint" in truncated[0].reason
    assert any(p.reason.endswith(f"covers {n} (truncated or rolled back)") for p in truncated)
    # without the off-box copies the store alone still shows rows no entry wrote
    alone = verify_log(trail.store)
    assert not any("truncated" in p.reason for p in alone.problems)
    code, output = _cli_verify(trail, store_uri)
    assert code == 1


def test_reorder_two_entries(trail: Trail) -> None:
    with trail.engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_log SET seq = -1 WHERE seq = 2"))
        conn.execute(sa.text("UPDATE audit_log SET seq = 2 WHERE seq = 3"))
        conn.execute(sa.text("UPDATE audit_log SET seq = 3 WHERE seq = -1"))
    first = _verify(trail).first
    assert first is not None and first.seq == 2
    assert "hash does not match its fields" in first.reason


def test_change_a_blobs_bytes(trail: Trail) -> None:
    trail.sql("UPDATE blobs SET data = :d WHERE digest = :g", d=b"rm -rf /\n", g=BLOB_DIGEST)
    first = _verify(trail).first
    assert first is not None and first.seq == 1
    assert first.reason.startswith(f"blob {BLOB_DIGEST}: its bytes hash to sha256:")


def test_resign_with_another_key(trail: Trail, tmp_path: Path) -> None:
    """History rewritten consistently (a param edited, its entry, every later hash and
    checkpoint recomputed) and re-signed with the attacker's key."""
    from mltrail.audit.checkpoints import sign_checkpoint
    from mltrail.audit.merkle import MerkleTree, leaf_hash

    trail.sql("UPDATE params SET value = '0.9' WHERE key = 'lr' AND run_id = :r", r=trail.runs[0])
    with trail.engine.begin() as conn:
        rows = conn.execute(sa.text("SELECT * FROM audit_log ORDER BY seq")).mappings().all()
        prev = GENESIS
        hashes = []
        for r in rows:
            payload = r["payload"]
            if r["seq"] == 1:
                payload = payload.replace('"lr","0.1"', '"lr","0.9"')
            pdig = digest(payload)
            blobs = tuple(json.loads(r["blobs"]))
            h = entry_hash(
                r["seq"], r["ts_ms"], r["actor"], r["action"], r["subject"], pdig, blobs, prev
            )
            conn.execute(
                sa.text(
                    "UPDATE audit_log SET payload = :p, payload_digest = :d, prev_hash = :v, "
                    "hash = :h WHERE seq = :s"
                ),
                {"p": payload, "d": pdig, "v": prev, "h": h, "s": r["seq"]},
            )
            hashes.append(h)
            prev = h
        tree = MerkleTree(leaf_hash(bytes.fromhex(h)) for h in hashes)
        mallory = tmp_path / "mallory.pem"
        generate_key(mallory)
        priv = load_private_key(mallory)
        for (size,) in conn.execute(sa.text("SELECT tree_size FROM audit_checkpoints")).all():
            cp = sign_checkpoint(priv, size, tree.root(size).hex(), 1, hashes[size - 1])
            conn.execute(
                sa.text(
                    "UPDATE audit_checkpoints SET root = :r, key_id = :k, signature = :g, "
                    "head_hash = :h WHERE tree_size = :s"
                ),
                {"r": cp.root, "k": cp.key_id, "g": cp.signature, "h": cp.head_hash, "s": size},
            )
    # the store alone, checked against the rightful public key: every signature is foreign
    alone = verify_log(trail.store, public_key=load_public_key(public_key_path(trail.key)))
    first = alone.first
    assert first is not None and "the signature is not the given key's" in first.reason
    # with the off-box copies: their roots no longer match the rewritten entries
    report = _verify(trail)
    assert any("differs from the signed root" in p.reason for p in report.problems)


def test_roll_back_the_whole_database(
    trail: Trail, store_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A copy taken earlier replaces the database; later checkpoints went off-box."""
    from _audit_trail import run_batches

    from mltrail.store.registry import open_store

    old_uri = _copy_database(trail, store_uri, tmp_path)
    size_then = trail.store.audit_size()
    for batch in run_batches("later0run1", 1_700_000_000_000):
        trail.store.apply_batch(batch)
    cp = trail.store.audit_checkpoint()
    assert cp is not None and cp.tree_size == size_then + 5
    old = open_store(old_uri, shared=False)
    try:
        report = _verify(trail, old)
        first = report.first
        assert first is not None and first.seq == size_then + 1
        assert f"the log has {size_then} entries" in first.reason
        assert "rolled back" in first.reason
    finally:
        old.close()
    code, output = _cli_verify(trail, old_uri)
    assert code == 1 and f"FAILED at entry {size_then + 1}" in output


def _copy_database(trail: Trail, store_uri: str, tmp_path: Path) -> str:
    """A copy of the store's database as it is now; its URI."""
    url = trail.engine.url
    if url.get_backend_name() == "sqlite":
        import sqlite3

        target = tmp_path / "rolled-back.db"
        src = sqlite3.connect(str(url.database))
        dst = sqlite3.connect(str(target))
        src.backup(dst)
        src.close()
        dst.close()
        return f"sqlite:///{target}"
    name = str(url.database)
    copy = f"{name}_old"
    trail.engine.dispose()  # CREATE DATABASE ... TEMPLATE needs the source idle
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{copy}" TEMPLATE "{name}"'))
    admin.dispose()
    return store_uri.rsplit("/", 1)[0] + "/" + copy


__all__ = ["populate"]
