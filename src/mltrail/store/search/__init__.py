"""The run filter language: a small frozen AST, its parser, and page tokens.

Pure Python, no SQL: ``mltrail.store.sql.filters`` compiles the AST to bound SQLAlchemy
statements. The page-token codec lives here so every backend pages the same way: a token is
url-safe base64 of JSON carrying a backend-defined position plus a fingerprint of the search,
so a token from another search is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from mltrail.errors import InvalidArgumentError

__all__ = [
    "ATTRIBUTES",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "MAX_ORDER_KEYS",
    "And",
    "Compare",
    "Ident",
    "In",
    "IsNull",
    "Node",
    "Not",
    "Or",
    "OrderKey",
    "Value",
    "decode_page_token",
    "encode_page_token",
    "page_fingerprint",
    "page_token_error",
    "parse_filter",
    "parse_order_by",
]

#: A literal in a filter (ISO dates are already converted to epoch ms).
Value = str | int | float | bool
_MAX_TOKEN = 300_000


@dataclass(frozen=True, slots=True)
class Ident:
    """A column: ``kind`` is ``param``, ``metric``, ``tag`` or ``attr``; ``key`` its name."""

    kind: str
    key: str


@dataclass(frozen=True, slots=True)
class Compare:
    """``ident op value``; op is one of = != < <= > >= LIKE ILIKE NOT LIKE NOT ILIKE."""

    ident: Ident
    op: str
    value: Value


@dataclass(frozen=True, slots=True)
class In:
    """``ident [NOT] IN (values...)``."""

    ident: Ident
    values: tuple[Value, ...]
    negated: bool = False


@dataclass(frozen=True, slots=True)
class IsNull:
    """``ident IS [NOT] NULL``: whether the run lacks (has) the key."""

    ident: Ident
    negated: bool = False


@dataclass(frozen=True, slots=True)
class And:
    """All of ``items`` (flattened: never directly contains another ``And``)."""

    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    """Any of ``items`` (flattened: never directly contains another ``Or``)."""

    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    """The negation of ``item``."""

    item: Node


@dataclass(frozen=True, slots=True)
class OrderKey:
    """One ``order_by`` term."""

    ident: Ident
    descending: bool = False


Node = Compare | In | IsNull | And | Or | Not


def page_fingerprint(filter: str | None, order_by: str | None, project: str | None) -> str:
    """A short hash naming one search, stored in its page tokens.

    Args:
        filter: the filter text as given.
        order_by: the order-by text as given.
        project: the project scope (name or id), or None.

    Returns:
        16 hex digits.
    """
    blob = json.dumps([filter or "", order_by or "", project or ""]).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def encode_page_token(fingerprint: str, position: dict[str, Any]) -> str:
    """An opaque page token for ``position`` (JSON-serialisable) within one search.

    Args:
        fingerprint: from :func:`page_fingerprint`.
        position: where the next page starts, in the backend's own terms.

    Returns:
        URL-safe base64 text without padding.
    """
    blob = json.dumps({"v": 1, "fp": fingerprint, **position}, separators=(",", ":"))
    return base64.urlsafe_b64encode(blob.encode()).decode().rstrip("=")


def decode_page_token(token: object, fingerprint: str) -> dict[str, Any]:
    """The position inside ``token``, checked to belong to the search ``fingerprint``.

    Args:
        token: the client's page token.
        fingerprint: from :func:`page_fingerprint` for the current search.

    Returns:
        The position dict given to :func:`encode_page_token` (plus ``v`` and ``fp``); the
        backend still validates its fields.

    Raises:
        InvalidArgumentError: the token is malformed, or from a different search.
    """
    bad = page_token_error()
    if not isinstance(token, str) or len(token) > _MAX_TOKEN:
        raise bad
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, binascii.Error, RecursionError):
        raise bad from None
    if not isinstance(data, dict) or data.get("v") != 1:
        raise bad
    if data.get("fp") != fingerprint:
        raise InvalidArgumentError(
            "page_token belongs to a different search (filter, order_by or project changed)"
        )
    return data


def page_token_error() -> InvalidArgumentError:
    """The error for a page token this search did not issue."""
    return InvalidArgumentError("page_token is not a page token issued by this search")


# the parser builds the AST above, so it is imported after it
from mltrail.store.search.parser import (  # noqa: E402
    ATTRIBUTES,
    MAX_DEPTH,
    MAX_LENGTH,
    MAX_ORDER_KEYS,
    parse_filter,
    parse_order_by,
)
