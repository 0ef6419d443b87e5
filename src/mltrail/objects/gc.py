"""Garbage collection: remove the objects nothing in ``keep`` reaches.

``gc(odb, keep)`` expands every tree in ``keep`` (the tree object and each file it lists are
kept) and removes every other object; ``dry_run=True`` only lists them. Deciding what to
keep (runs, artifact versions, pointer files in git revisions) is the caller's business:
objects/ knows nothing of runs or git.

Safety:

- a tree in ``keep`` that is missing from ``odb`` raises NotFoundError (its files cannot be
  told from garbage) unless ``missing_ok=True`` (a cache whose remote still has it);
- a kept tree whose manifest is corrupt raises CorruptObjectError; nothing is removed;
- ``grace_s`` spares local objects linked or written in the last ``grace_s`` seconds (by
  ``ctime``), for a gc that may race with another process adding objects;
- leftover temp files of crashed writes older than an hour are removed as well.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import TYPE_CHECKING

from mltrail.objects.odb import LocalObjectDB
from mltrail.objects.transfer import closure

if TYPE_CHECKING:
    from collections.abc import Iterable

    from mltrail.objects.odb import ObjectDB

__all__ = ["gc", "reachable"]

_TEMP_AGE_S = 3600.0


def reachable(odb: ObjectDB, keep: Iterable[str], *, missing_ok: bool = False) -> set[str]:
    """``keep`` plus every object the trees in it list."""
    missing: list[str] = []
    found = set(closure(odb, keep, missing=missing if missing_ok else None))
    return found | set(missing)


def gc(
    odb: ObjectDB,
    keep: Iterable[str],
    *,
    dry_run: bool = False,
    missing_ok: bool = False,
    grace_s: float = 0.0,
) -> list[str]:
    """Remove (or with ``dry_run`` list) the objects of ``odb`` not reachable from ``keep``.

    Returns the digests removed (or that would be), sorted.
    """
    live = reachable(odb, keep, missing_ok=missing_ok)
    now = time.time()
    garbage: list[str] = []
    for digest in odb.iter_digests():
        if digest in live:
            continue
        if grace_s > 0 and isinstance(odb, LocalObjectDB):
            try:
                if now - os.lstat(odb.path_str(digest)).st_ctime < grace_s:
                    continue
            except FileNotFoundError:
                continue
        garbage.append(digest)
    garbage.sort()
    if dry_run:
        return garbage
    for digest in garbage:
        odb.remove(digest)
    if isinstance(odb, LocalObjectDB):
        for tmp in odb.iter_temps():
            with contextlib.suppress(FileNotFoundError):
                if now - tmp.lstat().st_mtime > _TEMP_AGE_S:
                    tmp.unlink()
    return garbage
