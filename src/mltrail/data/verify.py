"""``mltrail data verify``: fsck of the cache (or of a remote) against the pointer files.

Every object the store holds is read and hashed (:func:`mltrail.objects.fsck.fsck`); every
object the workspace's pointer files name (trees expanded) and every file a stored tree lists
must be there. Corrupt and missing objects are reported with their digest and path; the
command exits 1 when there is any. ``status`` stays fast because it trusts the hash index
(size, mtime, inode); this is the command that reads every byte.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mltrail.data._edge import locked, os_errors
from mltrail.data.workspace import open_cache

if TYPE_CHECKING:
    from mltrail.data.repo import DataRepo
    from mltrail.objects.base import ObjectStore
    from mltrail.objects.fsck import FsckReport, Problem

__all__ = ["VerifyResult", "verify"]


@dataclass(slots=True)
class VerifyResult:
    """What ``verify`` found in one store (``cache`` or ``remote 'NAME'``)."""

    where: str
    url: str
    checked: int
    bytes: int
    corrupt: list[Problem]
    missing: list[Problem]
    listed: bool = True
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Nothing corrupt, nothing missing, every pointer file readable."""
        return not self.corrupt and not self.missing and not self.errors

    def to_dict(self) -> dict[str, Any]:
        """JSON-able."""
        return {
            "where": self.where,
            "url": self.url,
            "ok": self.ok,
            "checked": self.checked,
            "bytes": self.bytes,
            "corrupt": [p.to_dict() for p in self.corrupt],
            "missing": [p.to_dict() for p in self.missing],
            "listed": self.listed,
            "errors": self.errors,
        }


@os_errors("data verify")
def verify(repo: DataRepo, *, remote: str | None = None, progress: bool = True) -> VerifyResult:
    """Hash every object of the cache (or ``remote``); list corrupt and missing objects.

    Raises:
        NotFoundError: no such remote.
        StoreError: an I/O error that stops the whole check (the message names the path).
    """
    from mltrail.data.progress import progress_enabled
    from mltrail.data.remotes import _remote_odb

    errors: list[str] = []
    expected: dict[str, str] = {}
    for entry in repo.pointers(errors=errors):
        expected.setdefault(entry.pointer.digest, entry.data_path)
    shown = progress_enabled(progress)
    if remote is not None:
        name, odb = _remote_odb(repo, remote)
        return _result(f"remote {name!r}", odb, _fsck(odb, expected, shown), errors)
    with open_cache(repo) as cache, locked(cache):
        return _result("cache", cache, _fsck(cache, expected, shown), errors)


def _fsck(odb: ObjectStore, expected: dict[str, str], progress: bool) -> FsckReport:
    from mltrail.objects.fsck import fsck

    return fsck(odb, expected, progress=progress)


def _result(where: str, odb: ObjectStore, got: FsckReport, errors: list[str]) -> VerifyResult:
    return VerifyResult(
        where, odb.url, got.checked, got.bytes, got.corrupt, got.missing, got.listed, errors
    )
