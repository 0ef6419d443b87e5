"""The token store contract (SQLite and PostgreSQL) and ``mltrail token``."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mltrail.cli.main import app as cli_app
from mltrail.errors import AuthenticationError, InvalidArgumentError, NotFoundError
from mltrail.store.tokens import Scope, TokenStore, hash_secret, parse_token


@pytest.fixture
def tokens(store: object) -> TokenStore:
    found: TokenStore = store.tokens()  # type: ignore[attr-defined]
    assert isinstance(found, TokenStore)
    return found


def test_create_verify_list_revoke(tokens: TokenStore, store: object) -> None:
    record, plaintext = tokens.create("write", project="vision", name="ci")
    assert plaintext.startswith(f"mlt_{record.token_id}_")
    assert (record.scope, record.project, record.name) == (Scope.WRITE, "vision", "ci")
    assert tokens.verify(plaintext) == record
    assert [t.token_id for t in tokens.list()] == [record.token_id]
    revoked = tokens.revoke(record.token_id)
    assert revoked.revoked_ms is not None
    with pytest.raises(AuthenticationError):
        tokens.verify(plaintext)
    assert tokens.list() == [] and len(tokens.list(include_revoked=True)) == 1
    assert tokens.revoke(record.token_id).revoked_ms == revoked.revoked_ms  # idempotent
    with pytest.raises(NotFoundError):
        tokens.revoke("0000000000000000")


def test_only_a_hash_is_stored(tokens: TokenStore, store: object) -> None:
    import sqlalchemy as sa

    from mltrail.store.sql.schema import api_tokens

    _, plaintext = tokens.create("read")
    _, secret = parse_token(plaintext)
    with store._engine.connect() as conn:  # type: ignore[attr-defined]
        rows = conn.execute(sa.select(api_tokens)).all()
    assert all(secret not in str(tuple(r)) for r in rows)
    assert rows[0].secret_hash == hash_secret(secret)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "mlt_",
        "mlt_zz_x",
        "xyz_0123456789abcdef_" + "a" * 43,
        "mlt_0123456789abcdef_short",
        None,
    ],
)
def test_malformed_and_unknown_tokens(tokens: TokenStore, bad: object) -> None:
    with pytest.raises(AuthenticationError, match="invalid"):
        tokens.verify(bad)  # type: ignore[arg-type]


def test_wrong_secret_and_expiry(tokens: TokenStore) -> None:
    record, plaintext = tokens.create("admin")
    other = f"mlt_{record.token_id}_{'x' * 43}"
    with pytest.raises(AuthenticationError):
        tokens.verify(other)
    soon, token = tokens.create("read", expires_ms=time.time_ns() // 1_000_000 + 200)
    assert tokens.verify(token) == soon
    time.sleep(0.3)
    with pytest.raises(AuthenticationError):
        tokens.verify(token)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"scope": "root"}, "scope"),
        ({"scope": "read", "project": ""}, "project"),
        ({"scope": "read", "name": "a\x00"}, "NUL"),
        ({"scope": "read", "expires_ms": 1}, "future"),
    ],
)
def test_create_validates(tokens: TokenStore, kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(InvalidArgumentError, match=match):
        tokens.create(**kwargs)  # type: ignore[arg-type]


def test_scopes_are_ordered() -> None:
    assert Scope.ADMIN.allows(Scope.WRITE) and Scope.WRITE.allows(Scope.READ)
    assert not Scope.READ.allows(Scope.WRITE) and not Scope.WRITE.allows(Scope.ADMIN)


def test_token_cli(tmp_path: Path) -> None:
    runner = CliRunner()
    store = str(tmp_path / "store")
    created = runner.invoke(
        cli_app,
        [
            "token",
            "create",
            "--store",
            store,
            "--scope",
            "write",
            "--project",
            "p",
            "--name",
            "ci",
            "--expires-days",
            "2",
        ],
    )
    assert created.exit_code == 0, created.output
    token = created.output.strip().splitlines()[-1]
    token_id, _ = parse_token(token)
    listed = runner.invoke(cli_app, ["token", "list", "--store", store, "--json"])
    assert listed.exit_code == 0 and token_id in listed.output and '"project": "p"' in listed.output
    table = runner.invoke(cli_app, ["token", "list", "--store", store])
    assert token_id in table.output and token not in table.output
    revoked = runner.invoke(cli_app, ["token", "revoke", token_id, "--store", store])
    assert revoked.exit_code == 0 and token_id in revoked.output
    assert "no tokens" in runner.invoke(cli_app, ["token", "list", "--store", store]).output
    bad = runner.invoke(cli_app, ["token", "create", "--store", store, "--scope", "root"])
    assert bad.exit_code == 1 and "scope" in bad.output
    missing = runner.invoke(cli_app, ["token", "revoke", "ffffffffffffffff", "--store", store])
    assert missing.exit_code == 1
