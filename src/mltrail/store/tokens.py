"""API tokens for ``mltrail server``: the record, the scopes, and the ``TokenStore`` protocol.

A token reads ``mlt_<token_id>_<secret>``: the id (16 hex digits) finds the row, the secret
(256 random bits, URL-safe base64) proves possession. Stores keep only ``sha256(secret)``;
secrets are random, so a slow password hash would add nothing.

Contract, for every ``TokenStore``:

- :meth:`TokenStore.create` returns the record and the plaintext token; the plaintext is
  never stored and cannot be recovered later.
- :meth:`TokenStore.verify` looks the token up by id and compares the SHA-256 of the secret in
  constant time (:func:`hmac.compare_digest`), also when the id is unknown. A malformed,
  unknown, expired or revoked token raises :class:`~mltrail.errors.AuthenticationError` with
  the same message, so a caller learns nothing about which check failed. A revocation is
  visible to every process that shares the store at its next ``verify``: implementations do
  not cache.
- :meth:`TokenStore.revoke` is idempotent for a known id and raises
  :class:`~mltrail.errors.NotFoundError` for an unknown one.
- Scopes are ordered ``read < write < admin``; a token with ``project`` set sees that
  project only.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from mltrail.errors import AuthenticationError

__all__ = [
    "TOKEN_PREFIX",
    "Scope",
    "Token",
    "TokenStore",
    "hash_secret",
    "new_token_parts",
    "parse_token",
    "secret_matches",
]

TOKEN_PREFIX = "mlt_"
_ID_RE = re.compile(r"^[0-9a-f]{16}$")
_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")
#: compared against when the id is unknown, so the timing does not reveal known ids
_DUMMY_HASH = hashlib.sha256(b"mltrail: no such token").hexdigest()


class Scope(enum.StrEnum):
    """What a token may do: ``read`` (GET/HEAD), ``write`` (everything else), ``admin``."""

    READ = "read"
    WRITE = "write"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        """0 for read, 1 for write, 2 for admin."""
        return _RANKS[self]

    def allows(self, needed: Scope) -> bool:
        """True when this scope includes ``needed`` (``admin`` includes ``write``...)."""
        return self.rank >= needed.rank


_RANKS = {Scope.READ: 0, Scope.WRITE: 1, Scope.ADMIN: 2}


@dataclass(frozen=True, slots=True)
class Token:
    """A stored API token (never its secret).

    Attributes:
        token_id: 16 hex digits; the public half of the token.
        name: a label for people (``ci``, ``alice laptop``).
        scope: read, write or admin.
        project: the one project the token may see; None for every project.
        created_ms, expires_ms, revoked_ms: epoch milliseconds; None when not set.
    """

    token_id: str
    name: str
    scope: Scope
    project: str | None
    created_ms: int
    expires_ms: int | None = None
    revoked_ms: int | None = None

    def is_active(self, now_ms: int) -> bool:
        """Not revoked and not expired at ``now_ms``."""
        return self.revoked_ms is None and (self.expires_ms is None or now_ms < self.expires_ms)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (no secret: the store has none)."""
        return {
            "token_id": self.token_id,
            "name": self.name,
            "scope": self.scope.value,
            "project": self.project,
            "created_ms": self.created_ms,
            "expires_ms": self.expires_ms,
            "revoked_ms": self.revoked_ms,
        }


def hash_secret(secret: str) -> str:
    """The stored form of a secret: SHA-256, hex."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_token_parts() -> tuple[str, str, str]:
    """A fresh ``(token_id, secret, plaintext token)``."""
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return token_id, secret, f"{TOKEN_PREFIX}{token_id}_{secret}"


def parse_token(plaintext: object) -> tuple[str, str]:
    """Split ``mlt_<id>_<secret>`` into ``(id, secret)``.

    Raises:
        AuthenticationError: not a string of that form.
    """
    if not isinstance(plaintext, str) or not plaintext.startswith(TOKEN_PREFIX):
        raise invalid_token()
    token_id, sep, secret = plaintext[len(TOKEN_PREFIX) :].partition("_")
    if not sep or not _ID_RE.match(token_id) or not _SECRET_RE.match(secret):
        raise invalid_token()
    return token_id, secret


def secret_matches(secret: str, stored_hash: str | None) -> bool:
    """Constant-time check of ``secret`` against a stored hash (None: an unknown id)."""
    expected = _DUMMY_HASH if stored_hash is None else stored_hash
    ok = hmac.compare_digest(hash_secret(secret).encode("ascii"), expected.encode("ascii"))
    return ok and stored_hash is not None


def invalid_token() -> AuthenticationError:
    """The one error every failed verification raises."""
    return AuthenticationError("missing, invalid, expired or revoked token")


@runtime_checkable
class TokenStore(Protocol):
    """Where API tokens are kept. See the module docstring for the contract."""

    def create(
        self,
        scope: Scope | str,
        project: str | None = None,
        name: str = "",
        expires_ms: int | None = None,
    ) -> tuple[Token, str]:
        """Create a token; returns the record and the plaintext (shown once).

        Raises:
            InvalidArgumentError: unknown scope, bad project or name, expiry in the past.
        """
        ...

    def verify(self, plaintext: str) -> Token:
        """The active token ``plaintext`` names.

        Raises:
            AuthenticationError: malformed, unknown, wrong secret, expired or revoked.
        """
        ...

    def list(self, include_revoked: bool = False) -> list[Token]:
        """Every token, oldest first (revoked ones only when asked)."""
        ...

    def revoke(self, token_id: str) -> Token:
        """Revoke a token (effective at the next ``verify`` anywhere); returns the record.

        Raises:
            NotFoundError: no such token id.
        """
        ...
