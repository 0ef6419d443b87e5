"""The remote verbs: push, pull and gc of the data the pointer files name.

Transfers and collection go through :mod:`mltrail.objects` (verified on arrival, Rich
progress); this module picks the objects from the pointer files and the remote from the
repository's configuration. ``pull`` ends with a :func:`mltrail.data.ops.checkout`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mltrail.data._edge import locked, os_errors
from mltrail.data.ops import _entries, checkout_locked
from mltrail.data.workspace import open_cache
from mltrail.errors import InvalidArgumentError, NotFoundError

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from mltrail.data.repo import DataRepo
    from mltrail.objects.transfer import TransferResult as ObjTransferResult

__all__ = ["GcResult", "TransferResult", "gc", "pull", "push"]


# -- push / pull ------------------------------------------------------------------------


@dataclass(slots=True)
class TransferResult:
    """What moved: objects and bytes transferred, objects already there."""

    remote: str
    objects: int = 0
    bytes: int = 0
    skipped: int = 0
    updated: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able."""
        return {
            "remote": self.remote,
            "objects": self.objects,
            "bytes": self.bytes,
            "skipped": self.skipped,
            "updated": self.updated,
        }


def _remote_odb(repo: DataRepo, name: str | None) -> tuple[str, Any]:
    from mltrail.data.config import resolve_remote
    from mltrail.objects.registry import open_object_store

    remote = resolve_remote(repo.config(), name)
    url = remote.url
    if "://" not in url and not os.path.isabs(url):
        url = str(repo.root / url)  # a relative local remote is relative to the git root
    return remote.name, open_object_store(url)


def _apply(out: TransferResult, got: ObjTransferResult, where: str) -> None:
    out.objects, out.bytes, out.skipped = got.transferred, got.bytes, got.skipped
    if got.missing:
        first = sorted(got.missing)[0]
        raise NotFoundError(
            f"{len(got.missing)} object(s) not found in {where}, e.g. {first}; the "
            "transfer of the others completed"
        )


@os_errors("data push")
def push(
    repo: DataRepo,
    paths: Sequence[Path | str] | None = None,
    *,
    remote: str | None = None,
    jobs: int = 8,
    progress: bool = True,
) -> TransferResult:
    """Upload the objects the pointers name (trees with their files) to a remote.

    Every object is hashed before it is sent. Temp files a killed push left where this one
    writes are removed (their writer is dead, or they are older than an hour).

    Raises:
        NotFoundError: no such remote, or an object is not in the cache.
        CorruptObjectError: a cached object does not match its digest (names it).
        StoreError: the disk is full, or another I/O error (the message names the path).
    """
    from mltrail.data.progress import progress_enabled
    from mltrail.objects import transfer

    entries = _entries(repo, paths)
    name, dst = _remote_odb(repo, remote)
    out = TransferResult(name)
    digests = sorted({e.pointer.digest for e in entries})
    if digests:
        with open_cache(repo) as cache, locked(cache):
            got = transfer.push(cache, dst, digests, jobs=jobs, progress=progress_enabled(progress))
        _apply(out, got, "the local cache (was the data added on another machine?)")
    return out


@os_errors("data pull")
def pull(
    repo: DataRepo,
    paths: Sequence[Path | str] | None = None,
    *,
    remote: str | None = None,
    jobs: int = 8,
    force: bool = False,
    progress: bool = True,
) -> TransferResult:
    """Fetch the objects the pointers name from a remote (verified), then check them out
    (every object hashed again, those already cached included), under one cache lock.

    Raises:
        CorruptObjectError: a fetched or cached object does not match its digest (names it).
        NotFoundError: no such remote, or the remote lacks an object.
        StoreError: the disk is full, or another I/O error (the message names the path).
    """
    from mltrail.data.progress import progress_enabled
    from mltrail.objects import transfer

    entries = _entries(repo, paths)
    name, src = _remote_odb(repo, remote)
    out = TransferResult(name)
    digests = sorted({e.pointer.digest for e in entries})
    with open_cache(repo) as cache, locked(cache):
        if digests:
            got = transfer.pull(src, cache, digests, jobs=jobs, progress=progress_enabled(progress))
            _apply(out, got, f"remote {name!r}")
        done = checkout_locked(repo, cache, entries, force=force, progress=progress)
    out.updated = done.updated
    return out


# -- gc ---------------------------------------------------------------------------------


@dataclass(slots=True)
class GcResult:
    """Objects removed (or that would be, in a dry run), bytes, how many were kept (live or
    inside the grace window), stale temp files removed, and where (``cache`` or a remote)."""

    removed: list[str]
    bytes: int
    kept: int
    dry_run: bool
    temps: int = 0
    where: str = "cache"
    grace_minutes: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able."""
        return {
            "removed": self.removed,
            "bytes": self.bytes,
            "kept": self.kept,
            "dry_run": self.dry_run,
            "temps": self.temps,
            "where": self.where,
            "grace_minutes": self.grace_minutes,
        }


@os_errors("data gc")
def gc(
    repo: DataRepo,
    *,
    revs: Sequence[str] = ("HEAD",),
    workspace: bool = True,
    dry_run: bool = False,
    store: str | None = None,
    remote: str | None = None,
    grace_minutes: float | None = None,
) -> GcResult:
    """Remove objects that no pointer (in ``revs`` and the workspace), run or artifact
    version references, from the cache or (``remote``) a remote.

    Safe against concurrent writers: on the cache, gc holds the cache lock exclusive while it
    decides what is live and removes the rest (add, checkout, push and pull hold it shared),
    and objects younger than the grace window are never removed, nor on a remote (which
    other machines push to without any lock). Stale temp files are removed too.

    Args:
        repo: The repository.
        revs: Git revisions whose pointer files keep their objects.
        workspace: Also keep what the workspace's pointer files name (committed or not, and
            those in git-ignored folders).
        dry_run: Only list what would be removed.
        store: The tracking store whose runs and artifact versions keep objects (default: the
            usual resolution; none is fine).
        remote: Collect on this remote instead of the cache.
        grace_minutes: The grace window (default: ``[gc] grace_minutes`` of the repository's
            configuration, else 60). 0 collects everything unreferenced at once: safe on the
            cache (the lock), not on a remote others may be pushing to.

    Raises:
        NotFoundError: a revision or the remote does not exist.
    """
    from mltrail.objects.gc import collect

    if grace_minutes is None:
        grace_minutes = repo.config().gc_grace_minutes
    if not grace_minutes >= 0:
        raise InvalidArgumentError(f"grace: {grace_minutes} minutes; give a number >= 0")
    for rev in revs:
        repo.resolve_rev(rev)  # fail before taking any lock
    grace_s = grace_minutes * 60.0
    if remote is not None:
        name, odb = _remote_odb(repo, remote)
        keep = _live(repo, revs, workspace, store)
        got = collect(odb, keep, dry_run=dry_run, missing_ok=True, grace_s=grace_s)
        where = f"remote {name!r}"
    else:
        with open_cache(repo) as cache, locked(cache, exclusive=True):
            keep = _live(repo, revs, workspace, store)  # only now: no writer is running
            got = collect(cache, keep, dry_run=dry_run, missing_ok=True, grace_s=grace_s)
        where = "cache"
    return GcResult(got.removed, got.bytes, got.kept, dry_run, got.temps, where, grace_minutes)


def _live(repo: DataRepo, revs: Sequence[str], workspace: bool, store: str | None) -> set[str]:
    """The digests gc must keep: pointers of ``revs`` (and the workspace), the store's."""
    from mltrail.data.refs import store_digests

    keep: set[str] = set()
    for rev in revs:
        keep |= {e.pointer.digest for e in repo.pointers(rev=rev)}
    if workspace:
        keep |= {e.pointer.digest for e in repo.pointers()}
        keep |= {e.pointer.digest for e in repo.ignored_pointers()}
    keep |= store_digests(store, repo)
    return {d for d in keep if _valid_digest(d)}  # DVC's md5 .dir names are not ours


def _valid_digest(digest: str) -> bool:
    from mltrail.objects.digest import parse_digest

    try:
        parse_digest(digest)
    except InvalidArgumentError:
        return False
    return True
