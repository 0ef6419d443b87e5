"""Garbage collection: remove the objects nothing in ``keep`` reaches.

``gc(odb, keep)`` expands every tree in ``keep`` (the tree object and each file it lists are
kept) and removes every other object; ``dry_run=True`` only lists them. Deciding what to
keep (runs, artifact versions, pointer files in git revisions) is the caller's business:
objects/ knows nothing of runs or git.

Safety:

- a tree in ``keep`` that is missing from ``odb`` raises NotFoundError (its files cannot be
  told from garbage) unless ``missing_ok=True`` (a cache whose remote still has it);
- a kept tree whose manifest is corrupt raises CorruptObjectError; nothing is removed;
- ``grace_s`` spares objects written in the last ``grace_s`` seconds (by ``ctime`` locally:
  a hardlink or a rename renews it; by the listing's modification time on a remote, where an
  object of unknown age is spared too), for a gc that may race with a writer that does not
  hold the cache lock (:mod:`mltrail.objects.lock`) or with a push from another machine;
- trees go before files, so a tree that is still there always finds its files (a gc killed
  half-way leaves no tree with holes for ``verify`` to report);
- stale temp files (a killed writer's, see :func:`mltrail.objects._fs.is_stale_temp`) are
  removed as well, on local stores and fsspec remotes alike.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, NamedTuple

from mltrail.errors import InvalidArgumentError
from mltrail.objects._fs import TEMP_GRACE_S
from mltrail.objects.base import PrunableObjectStore
from mltrail.objects.digest import is_tree
from mltrail.objects.fsspec_store import FsspecObjectStore
from mltrail.objects.local import LocalObjectStore
from mltrail.objects.transfer import closure

if TYPE_CHECKING:
    from collections.abc import Iterable

    from mltrail.objects.base import ObjectStore

__all__ = ["Collected", "collect", "gc", "reachable"]


class Collected(NamedTuple):
    """What :func:`collect` did: objects removed (sorted), their bytes, objects kept (live or
    inside the grace window), temp files removed."""

    removed: list[str]
    bytes: int
    kept: int
    temps: int


def reachable(odb: ObjectStore, keep: Iterable[str], *, missing_ok: bool = False) -> set[str]:
    """``keep`` plus every object the trees in it list."""
    missing: list[str] = []
    found = set(closure(odb, keep, missing=missing if missing_ok else None))
    return found | set(missing)


def gc(
    odb: ObjectStore,
    keep: Iterable[str],
    *,
    dry_run: bool = False,
    missing_ok: bool = False,
    grace_s: float = 0.0,
) -> list[str]:
    """Remove (or with ``dry_run`` list) the objects of ``odb`` not reachable from ``keep``.

    Returns the digests removed (or that would be), sorted.
    """
    return collect(odb, keep, dry_run=dry_run, missing_ok=missing_ok, grace_s=grace_s).removed


def collect(
    odb: ObjectStore,
    keep: Iterable[str],
    *,
    dry_run: bool = False,
    missing_ok: bool = False,
    grace_s: float = 0.0,
    temp_grace_s: float = TEMP_GRACE_S,
) -> Collected:
    """:func:`gc` with the figures: bytes freed, objects kept, temp files removed.

    Raises:
        InvalidArgumentError: ``odb`` cannot be listed and pruned (a server's objects: run
            gc on the server's own store).
    """
    live = reachable(odb, keep, missing_ok=missing_ok)
    if not isinstance(odb, PrunableObjectStore):
        raise InvalidArgumentError(
            f"{odb.url}: this store's objects cannot be listed and removed from here "
            "(a server's: run gc on the server's own store)"
        )
    now = time.time()
    sizes: dict[str, int] = {}
    kept = 0
    if isinstance(odb, FsspecObjectStore):
        listing = odb.scan()
        entries = ((d, size, mtime) for d, (size, mtime) in listing.objects.items())
    else:
        entries = ((d, None, None) for d in odb.iter_digests())
    for digest, size, mtime in entries:
        if digest in live:
            kept += 1
            continue
        if isinstance(odb, LocalObjectStore):
            try:
                st = os.lstat(odb.path_str(digest))
            except FileNotFoundError:
                continue
            size, mtime = st.st_size, st.st_ctime
        if grace_s > 0 and (mtime is None or now - mtime < grace_s):
            kept += 1
            continue
        sizes[digest] = size or 0
    # trees first: a tree left behind by an interrupted gc still has all of its files
    garbage = sorted(sizes, key=lambda d: (not is_tree(d), d))
    temps = 0
    if not dry_run:
        for digest in garbage:
            odb.remove(digest)
        temps = odb.sweep_temps(grace_s=temp_grace_s)
    return Collected(sorted(garbage), sum(sizes.values()), kept, temps)
