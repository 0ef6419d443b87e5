"""The remote verbs: push, pull and gc of the data the pointer files name.

Transfers and collection go through :mod:`mltrail.objects` (verified on arrival, Rich
progress); this module picks the objects from the pointer files and the remote from the
repository's configuration. ``pull`` ends with a :func:`mltrail.data.ops.checkout`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mltrail.data.ops import _entries, checkout, open_cache
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
    from mltrail.objects.odb import ObjectDB

    remote = resolve_remote(repo.config(), name)
    url = remote.url
    if "://" not in url and not os.path.isabs(url):
        url = str(repo.root / url)  # a relative local remote is relative to the git root
    return remote.name, ObjectDB(url)


def _apply(out: TransferResult, got: ObjTransferResult, where: str) -> None:
    out.objects, out.bytes, out.skipped = got.transferred, got.bytes, got.skipped
    if got.missing:
        first = sorted(got.missing)[0]
        raise NotFoundError(
            f"{len(got.missing)} object(s) not found in {where}, e.g. {first}; the "
            "transfer of the others completed"
        )


def push(
    repo: DataRepo,
    paths: Sequence[Path | str] | None = None,
    *,
    remote: str | None = None,
    jobs: int = 8,
    progress: bool = True,
) -> TransferResult:
    """Upload the objects the pointers name (trees with their files) to a remote.

    Raises:
        NotFoundError: no such remote, or an object is not in the cache.
        CorruptObjectError: a cached object does not match its digest (names it).
    """
    from mltrail.data.progress import progress_enabled
    from mltrail.objects import transfer

    entries = _entries(repo, paths)
    name, dst = _remote_odb(repo, remote)
    out = TransferResult(name)
    digests = sorted({e.pointer.digest for e in entries})
    if digests:
        with open_cache(repo) as cache:
            got = transfer.push(cache, dst, digests, jobs=jobs, progress=progress_enabled(progress))
        _apply(out, got, "the local cache (was the data added on another machine?)")
    return out


def pull(
    repo: DataRepo,
    paths: Sequence[Path | str] | None = None,
    *,
    remote: str | None = None,
    jobs: int = 8,
    force: bool = False,
    progress: bool = True,
) -> TransferResult:
    """Fetch the objects the pointers name from a remote (verified), then check them out.

    Raises:
        CorruptObjectError: a fetched object does not match its digest (names it).
        NotFoundError: no such remote, or the remote lacks an object.
    """
    from mltrail.data.progress import progress_enabled
    from mltrail.objects import transfer

    entries = _entries(repo, paths)
    name, src = _remote_odb(repo, remote)
    out = TransferResult(name)
    digests = sorted({e.pointer.digest for e in entries})
    if digests:
        with open_cache(repo) as cache:
            got = transfer.pull(src, cache, digests, jobs=jobs, progress=progress_enabled(progress))
        _apply(out, got, f"remote {name!r}")
    done = checkout(repo, paths, force=force, progress=progress)
    out.updated = done.updated
    return out


# -- gc ---------------------------------------------------------------------------------


@dataclass(slots=True)
class GcResult:
    """Objects removed (or that would be, in a dry run), bytes, and how many were kept."""

    removed: list[str]
    bytes: int
    kept: int
    dry_run: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-able."""
        return {
            "removed": self.removed,
            "bytes": self.bytes,
            "kept": self.kept,
            "dry_run": self.dry_run,
        }


def gc(
    repo: DataRepo,
    *,
    revs: Sequence[str] = ("HEAD",),
    workspace: bool = True,
    dry_run: bool = False,
    store: str | None = None,
) -> GcResult:
    """Remove cached objects that no pointer (in ``revs`` and the workspace), run or artifact
    version references.

    Args:
        repo: The repository.
        revs: Git revisions whose pointer files keep their objects.
        workspace: Also keep what the workspace's pointer files name.
        dry_run: Only list what would be removed.
        store: The tracking store whose runs and artifact versions keep objects (default: the
            usual resolution; none is fine).

    Raises:
        NotFoundError: a revision does not exist.
    """
    from mltrail.data.refs import store_digests
    from mltrail.objects.gc import gc as collect

    keep: set[str] = set()
    for rev in revs:
        repo.resolve_rev(rev)
        keep |= {e.pointer.digest for e in repo.pointers(rev=rev)}
    if workspace:
        keep |= {e.pointer.digest for e in repo.pointers()}
    keep |= store_digests(store, repo)
    keep = {d for d in keep if _valid_digest(d)}  # DVC's md5 .dir names are not ours
    with open_cache(repo) as cache:
        before = {d: cache.size(d) for d in cache.iter_digests()}
        removed = sorted(collect(cache, keep, dry_run=dry_run, missing_ok=True))
    freed = sum(before.get(d, 0) for d in removed)
    return GcResult(removed, freed, len(before) - len(removed), dry_run)


def _valid_digest(digest: str) -> bool:
    from mltrail.objects.digest import parse_digest

    try:
        parse_digest(digest)
    except InvalidArgumentError:
        return False
    return True
