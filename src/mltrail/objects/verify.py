"""Verification on write and on read: does this content hash to the digest it claims?

Every backend and every transfer checks content through these helpers, so a mismatch reads
the same wherever it is found (``object <digest> at <where> is corrupt: its content hashes
to <actual>``). A leaf module: it imports only :mod:`~mltrail.objects.digest` and the errors.
"""

from __future__ import annotations

import os

from mltrail.errors import CorruptObjectError
from mltrail.objects.digest import (
    DEFAULT_ALGO,
    TREE_SUFFIX,
    hash_bytes,
    hash_file,
    is_tree,
    parse_digest,
)

__all__ = [
    "SourceChangedError",
    "checked_file_digest",
    "corrupt_error",
    "verify_bytes",
    "verify_file",
]


class SourceChangedError(Exception):
    """A file changed between hashing and storing it (the caller hashes it again)."""


def corrupt_error(
    digest: str, where: str, actual: str, *, received: bool = False
) -> CorruptObjectError:
    """The error for content at ``where`` that hashes to ``actual`` instead of ``digest``.

    Args:
        digest: The digest the content was stored or sent under.
        where: A path, a URL, or a phrase (``"the data received"``).
        actual: What the content hashes to.
        received: The content came *from* ``where`` (a transfer's source) rather than
            being found *at* it.
    """
    place = f"from {where}" if received else f"at {where}"
    return CorruptObjectError(f"object {digest} {place} is corrupt: its content hashes to {actual}")


def verify_bytes(digest: str, data: bytes, where: str, *, received: bool = False) -> None:
    """Raise :class:`~mltrail.errors.CorruptObjectError` unless ``data`` hashes to ``digest``
    (a ``.tree`` digest is checked as a tree).

    Raises:
        CorruptObjectError: the content does not match; the message names ``digest``.
        InvalidArgumentError: ``digest`` is malformed.
    """
    algo, _ = parse_digest(digest)
    actual = hash_bytes(data, algo, tree=is_tree(digest))
    if actual != digest:
        raise corrupt_error(digest, where, actual, received=received)


def _file_digest(path: str | os.PathLike[str], like: str) -> str:
    """The digest of the file at ``path`` in the algorithm (and file/tree kind) of ``like``."""
    algo, _ = parse_digest(like)
    actual = hash_file(path, algo)
    return actual + TREE_SUFFIX if is_tree(like) else actual


def checked_file_digest(path: str | os.PathLike[str], digest: str | None = None) -> str:
    """The digest of the file at ``path``: hashed in the algorithm of ``digest`` (which it
    must then match), else with the default algorithm.

    Raises:
        CorruptObjectError: ``digest`` was given and the file does not hash to it.
    """
    if digest is None:
        return hash_file(path, DEFAULT_ALGO)
    verify_file(digest, path)
    return digest


def verify_file(
    digest: str,
    path: str | os.PathLike[str],
    where: str | None = None,
    *,
    received: bool = False,
) -> None:
    """:func:`verify_bytes` for the file at ``path`` (hashed in place: mmap and every core
    for a large one); ``where`` defaults to ``path``.

    Raises:
        CorruptObjectError: the file does not hash to ``digest``.
    """
    actual = _file_digest(path, digest)
    if actual != digest:
        raise corrupt_error(
            digest, os.fspath(path) if where is None else where, actual, received=received
        )
