"""fsck: hash every object of a store and find every object that should be there but is not.

``fsck(odb, expected)`` reads every object ``odb`` holds (a local directory through ``os``, a
:class:`~mltrail.objects.base.BulkObjectStore` such as fsspec: small objects in concurrent
batches, large ones one by one through a temp file) and hashes it against its name; a tree
must also parse as a safe manifest. Then it lists what is *missing*: every file a stored
tree lists (a tree in a store promises its files: transfers write trees last and gc removes
them first) and every object in ``expected`` (digest -> who needs it, e.g. a pointer file),
trees expanded.

A store that cannot be listed (not a :class:`~mltrail.objects.base.ListableObjectStore`: a
server's objects API) is checked for ``expected`` only. Nothing is modified; objects removed
by a concurrent gc while fsck runs are skipped.
"""

from __future__ import annotations

import os
import tempfile
from typing import TYPE_CHECKING, NamedTuple

from mltrail.errors import InvalidArgumentError, NotFoundError
from mltrail.objects._progress import Bar
from mltrail.objects.base import BulkObjectStore, ListableObjectStore
from mltrail.objects.digest import (
    LARGE_FILE,
    hash_file,
    is_tree,
    make_digest,
    new_hasher,
    parse_digest,
)
from mltrail.objects.fsspec_store import FsspecObjectStore
from mltrail.objects.layout import object_key
from mltrail.objects.local import LocalObjectStore
from mltrail.objects.transfer import _download, _read_all

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mltrail.objects.base import ObjectStore
    from mltrail.objects.tree import Tree

__all__ = ["FsckReport", "Problem", "fsck"]

_BATCH = 256
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)


class Problem(NamedTuple):
    """A corrupt or missing object: its digest, where it is (or should be), what is wrong."""

    digest: str
    path: str
    detail: str

    def to_dict(self) -> dict[str, str]:
        """JSON-able."""
        return {"digest": self.digest, "path": self.path, "detail": self.detail}


class FsckReport(NamedTuple):
    """Objects hashed and their bytes; the corrupt and missing ones; whether the store could
    be listed (False: only ``expected`` was checked)."""

    checked: int
    bytes: int
    corrupt: list[Problem]
    missing: list[Problem]
    listed: bool

    @property
    def ok(self) -> bool:
        """Nothing corrupt, nothing missing."""
        return not self.corrupt and not self.missing


def where(odb: ObjectStore, digest: str) -> str:
    """The object's location: a local path, else the store's URL and the object's key."""
    if isinstance(odb, LocalObjectStore):
        return odb.path_str(digest)
    return f"{odb.url.rstrip('/')}/{object_key(digest)}"


def fsck(
    odb: ObjectStore, expected: Mapping[str, str] | None = None, *, progress: bool = False
) -> FsckReport:
    """Hash every object of ``odb``; report corrupt ones and missing ones (see the module).

    Args:
        odb: The store.
        expected: Objects that must be there (digest -> who needs them, for the report);
            trees are expanded.
        progress: Draw a Rich bar on stderr (objects hashed of the total).
    """
    expected = dict(expected or {})
    listed = isinstance(odb, ListableObjectStore)
    if isinstance(odb, ListableObjectStore):
        present = _listing(odb)
    else:  # a server's objects API cannot list
        present = {d: None for d in _closure_present(odb, expected)}
    corrupt: list[Problem] = []
    trees: dict[str, Tree] = {}
    checked = nbytes = 0
    with Bar(f"verifying {len(present)} objects", len(present), enabled=progress) as bar:
        for digest, size, data, actual in _hashed(odb, present, bar):
            if actual is None:  # removed meanwhile (a concurrent gc)
                continue
            checked += 1
            nbytes += size
            if actual != digest:
                detail = f"its content hashes to {actual}" if actual else "unreadable"
                corrupt.append(Problem(digest, where(odb, digest), detail))
            elif is_tree(digest) and data is not None:
                tree = _parse(digest, data, corrupt, odb)
                if tree is not None:
                    trees[digest] = tree
    bad = {p.digest for p in corrupt}
    needed: dict[str, str] = {}
    for d, who in expected.items():
        needed.setdefault(d, who)
    for t, tree in trees.items():
        name = expected.get(t)
        for e in tree:
            if not e.is_link:
                needed.setdefault(e.digest, f"{name}/{e.path}" if name else f"{e.path} in {t}")
    missing = [
        Problem(d, where(odb, d), f"needed by {who}")
        for d, who in sorted(needed.items())
        if d not in present and d not in bad
    ]
    return FsckReport(checked, nbytes, sorted(corrupt), missing, listed)


def _listing(odb: ListableObjectStore) -> dict[str, int | None]:
    if isinstance(odb, FsspecObjectStore):  # one detailed listing: sizes come with it
        return {d: size for d, (size, _mtime) in odb.scan().objects.items()}
    return {d: None for d in odb.iter_digests()}


def _closure_present(odb: ObjectStore, expected: Mapping[str, str]) -> set[str]:
    """What of ``expected`` (trees expanded, as far as they can be read) ``odb`` holds."""
    wanted = set(expected)
    for d in list(expected):
        if is_tree(d):
            try:
                wanted.update(e.digest for e in odb.read_tree(d) if not e.is_link)
            except Exception:  # noqa: BLE001 - missing or corrupt: reported below
                continue
    return odb.exists_many(wanted)


def _parse(digest: str, data: bytes, corrupt: list[Problem], odb: ObjectStore) -> Tree | None:
    from mltrail.objects.tree import Tree

    try:
        return Tree.from_bytes(data, algo=parse_digest(digest)[0])
    except InvalidArgumentError as exc:  # UnsafePathError too
        corrupt.append(Problem(digest, where(odb, digest), f"not a valid manifest: {exc}"))
        return None


def _hash(digest: str, data: bytes) -> str:
    algo = digest.partition(":")[0]  # digests here come from a listing: valid
    h = new_hasher(algo, threads=len(data) >= LARGE_FILE)
    h.update(data)
    return make_digest(algo, h.hexdigest(), tree=is_tree(digest))


# (digest, size, bytes for a tree, actual digest ('' unreadable, None vanished))
_Hashed = tuple[str, int, bytes | None, str | None]


def _hashed(odb: ObjectStore, present: dict[str, int | None], bar: Bar) -> list[_Hashed]:
    if isinstance(odb, LocalObjectStore):
        return [_hash_local(odb, d, bar) for d in sorted(present)]
    out: list[_Hashed] = []
    large = sorted(
        d for d, s in present.items() if s is not None and s >= LARGE_FILE and not is_tree(d)
    )
    small = sorted(set(present) - set(large))
    for i in range(0, len(small), _BATCH):
        got = _get_many(odb, small[i : i + _BATCH])
        for d in small[i : i + _BATCH]:
            value = got.get(d)
            if isinstance(value, (FileNotFoundError, NotFoundError)) or value is None:
                out.append((d, 0, None, None))
            elif isinstance(value, BaseException):
                out.append((d, 0, None, ""))
            else:
                out.append((d, len(value), value if is_tree(d) else None, _hash(d, value)))
            bar.advance()
    for d in large:
        out.append(_hash_remote_large(odb, d))
        bar.advance()
    return out


def _hash_local(odb: LocalObjectStore, digest: str, bar: Bar) -> _Hashed:
    algo, _, rest = digest.partition(":")
    path = f"{odb.url}/{algo}/{rest[:2]}/{rest[2:]}"  # odb.path_str without re-validating
    bar.advance()
    try:
        size = os.stat(path).st_size
        if size >= LARGE_FILE and not is_tree(digest):
            actual = hash_file(path, parse_digest(digest)[0])
            return digest, size, None, actual
        fd = os.open(path, _READ_FLAGS)
        try:
            data = _read_all(fd, size)
        finally:
            os.close(fd)
    except FileNotFoundError:
        return digest, 0, None, None
    except OSError:
        return digest, 0, None, ""
    return digest, len(data), data if is_tree(digest) else None, _hash(digest, data)


def _get_many(odb: ObjectStore, digests: list[str]) -> dict[str, bytes | BaseException]:
    if isinstance(odb, BulkObjectStore):
        return odb.get_many(digests)
    out: dict[str, bytes | BaseException] = {}
    for d in digests:
        try:
            out[d] = odb.read_bytes(d, verify=False)
        except Exception as exc:  # noqa: BLE001 - reported per object, as get_many does
            out[d] = exc
    return out


def _hash_remote_large(odb: ObjectStore, digest: str) -> _Hashed:
    with tempfile.TemporaryDirectory(prefix="mltrail-fsck-") as tmpdir:
        tmp = os.path.join(tmpdir, "object")
        try:
            _download(odb, digest, tmp)
        except NotFoundError:
            return digest, 0, None, None
        except OSError:
            return digest, 0, None, ""
        actual = hash_file(tmp, parse_digest(digest)[0])
        return digest, os.path.getsize(tmp), None, actual
