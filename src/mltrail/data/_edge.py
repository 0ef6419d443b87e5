"""What every data verb does at its edge: OS errors become one clear line, the cache lock.

- :func:`os_errors`: an ``OSError`` (a full disk, an I/O error, a permission) escaping a verb
  becomes a :class:`~mltrail.errors.StoreError` that says what failed, why and where, e.g.
  ``data add: disk full (ENOSPC) at /repo/.mltrail/cache/blake3/ab``, chained to the
  original; the CLI prints it as one ``error:`` line, never a traceback.
- :func:`locked`: the cache lock (:mod:`mltrail.objects.lock`), shared for writers (add,
  checkout, push, pull, verify) and exclusive for gc, with a note on stderr when it has to
  wait for another process.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from mltrail.errors import MltrailError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from mltrail.objects.cache import Cache

__all__ = ["locked", "os_errors"]

P = ParamSpec("P")
R = TypeVar("R")


@contextlib.contextmanager
def _translated(doing: str) -> Iterator[None]:
    try:
        yield
    except MltrailError:
        raise
    except OSError as exc:
        from mltrail.objects._fs import io_error

        raise io_error(exc, doing) from exc


def os_errors(doing: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a verb so that an ``OSError`` leaves it as a ``StoreError`` naming ``doing``."""

    def wrap(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def inner(*args: P.args, **kwargs: P.kwargs) -> R:
            with _translated(doing):
                return fn(*args, **kwargs)

        return inner

    return wrap


def _note_waiting(exclusive: bool) -> Callable[[], None]:
    def note() -> None:
        if sys.stderr.isatty():
            who = "add/checkout/push/pull" if exclusive else "gc"
            sys.stderr.write(f"waiting for another mltrail process ({who}) to release the cache\n")
            sys.stderr.flush()

    return note


def locked(cache: Cache, *, exclusive: bool = False) -> contextlib.AbstractContextManager[None]:
    """Hold ``cache``'s lock: shared (writers) or ``exclusive`` (gc); waits as long as needed."""
    return cache.lock(exclusive=exclusive, on_wait=_note_waiting(exclusive))
