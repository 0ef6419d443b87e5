"""``SqlTokenStore``: API tokens in the ``api_tokens`` table (SQLite and PostgreSQL).

See :mod:`mltrail.store.tokens` for the contract. Every ``verify`` is one primary-key lookup
and is never cached here, so a revocation is seen by every server process at once.
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from mltrail import _validation as v
from mltrail.errors import InvalidArgumentError, NotFoundError
from mltrail.store.sql.audit_hooks import rows_change
from mltrail.store.sql.driver import driver_errors
from mltrail.store.sql.engine import write_connection
from mltrail.store.sql.schema import api_tokens
from mltrail.store.tokens import (
    Scope,
    Token,
    hash_secret,
    invalid_token,
    new_token_parts,
    parse_token,
    secret_matches,
)

if TYPE_CHECKING:
    import builtins

__all__ = ["SqlTokenStore", "check_scope"]

_MAX_NAME_BYTES = 250


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def check_scope(scope: object) -> Scope:
    """``scope`` as a :class:`Scope`.

    Raises:
        InvalidArgumentError: not one of read, write, admin.
    """
    try:
        return Scope(scope.lower()) if isinstance(scope, str) else Scope(scope)  # type: ignore[arg-type]
    except ValueError:
        raise InvalidArgumentError(
            f"scope must be one of read, write, admin; got {scope!r}"
        ) from None


def _record(row: Any) -> Token:
    return Token(
        token_id=row.token_id,
        name=row.name,
        scope=Scope(row.scope),
        project=row.project,
        created_ms=int(row.created_ms),
        expires_ms=None if row.expires_ms is None else int(row.expires_ms),
        revoked_ms=None if row.revoked_ms is None else int(row.revoked_ms),
    )


class SqlTokenStore:
    """Tokens in the store's database; shares the tracking store's engine."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def create(
        self,
        scope: Scope | str,
        project: str | None = None,
        name: str = "",
        expires_ms: int | None = None,
    ) -> tuple[Token, str]:
        checked_scope = check_scope(scope)
        if project is not None:
            project = v.check_key(project, "project")
        if not isinstance(name, str):
            raise InvalidArgumentError(f"token name must be a str, got {type(name).__name__}")
        v._check_text(name, "token name", _MAX_NAME_BYTES)
        now = _now_ms()
        if expires_ms is not None and (isinstance(expires_ms, bool) or expires_ms <= now):
            raise InvalidArgumentError("token expiry must be in the future")
        token_id, secret, plaintext = new_token_parts()
        token = Token(token_id, name, checked_scope, project, now, expires_ms)
        row = {**token.to_dict(), "secret_hash": hash_secret(secret)}
        with driver_errors("creating a token"), write_connection(self._engine) as conn:
            conn.execute(sa.insert(api_tokens), row)
            where = {"token_id": token_id}
            rows_change(conn, "token.create", f"token:{token_id}", {"api_tokens": where})
        return token, plaintext

    def verify(self, plaintext: str) -> Token:
        token_id, secret = parse_token(plaintext)
        tc = api_tokens.c
        with driver_errors("verifying a token"), self._engine.connect() as conn:
            row = conn.execute(sa.select(api_tokens).where(tc.token_id == token_id)).first()
        if not secret_matches(secret, None if row is None else row.secret_hash):
            raise invalid_token()
        assert row is not None
        token = _record(row)
        if not token.is_active(_now_ms()):
            raise invalid_token()
        return token

    def list(self, include_revoked: bool = False) -> builtins.list[Token]:
        tc = api_tokens.c
        stmt = sa.select(api_tokens).order_by(tc.created_ms, tc.token_id)
        if not include_revoked:
            stmt = stmt.where(tc.revoked_ms.is_(None))
        with driver_errors("listing tokens"), self._engine.connect() as conn:
            return [_record(r) for r in conn.execute(stmt)]

    def revoke(self, token_id: str) -> Token:
        tc = api_tokens.c
        with driver_errors("revoking a token"), write_connection(self._engine) as conn:
            row = conn.execute(sa.select(api_tokens).where(tc.token_id == token_id)).first()
            if row is None:
                raise NotFoundError(f"no token with id {token_id!r}")
            if row.revoked_ms is None:
                now = _now_ms()
                conn.execute(
                    sa.update(api_tokens).where(tc.token_id == token_id).values(revoked_ms=now)
                )
                where = {"token_id": token_id}
                rows_change(conn, "token.revoke", f"token:{token_id}", {"api_tokens": where})
                return dataclasses.replace(_record(row), revoked_ms=now)
        return _record(row)
