"""Identifiers: run ids (short, random, URL-safe)."""

from __future__ import annotations

import secrets

__all__ = ["new_run_id"]

_ID_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def new_run_id() -> str:
    """A short (12 characters), URL-safe, random run id (62 bits)."""
    n = secrets.randbits(62)
    out = []
    for _ in range(12):
        n, r = divmod(n, 36)
        out.append(_ID_ALPHABET[r])
    return "".join(out)
