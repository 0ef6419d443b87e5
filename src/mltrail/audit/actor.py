"""Who a change is recorded as: the token a server request carried, else the local user."""

from __future__ import annotations

import contextlib
import getpass
import socket
from contextvars import ContextVar
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["acting_as", "current_actor", "local_actor"]

_ACTOR: ContextVar[str | None] = ContextVar("mltrail_audit_actor", default=None)


@cache
def local_actor() -> str:
    """``local:<user>@<host>``: what changes made outside a server are recorded as."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"local:{user}@{socket.gethostname()}"


def current_actor() -> str:
    """The actor set by :func:`acting_as` in this context, else :func:`local_actor`."""
    return _ACTOR.get() or local_actor()


@contextlib.contextmanager
def acting_as(actor: str) -> Iterator[None]:
    """Record the changes made inside the block as ``actor`` (e.g. ``token:<id>``)."""
    reset = _ACTOR.set(actor)
    try:
        yield
    finally:
        _ACTOR.reset(reset)
