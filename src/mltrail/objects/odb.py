"""Object databases: content-addressed storage over a local directory or any fsspec URL.

Layout (both kinds)::

    <root>/<algo>/<first 2 hex>/<remaining hex>[.tree]

so ``blake3:ab12...`` lives at ``blake3/ab/12...`` and the tree ``blake3:cd34....tree`` at
``blake3/cd/34....tree``. ``ObjectDB(url)`` picks the implementation: a local path (or
``file://``) gets :class:`LocalObjectDB` (plain ``os`` calls, the fast path), a server URL
:class:`~mltrail.objects.http.HttpObjectDB`, anything else
:class:`~mltrail.objects.remote.FsspecObjectDB` (``s3://bucket/prefix`` with
``MLTRAIL_S3_ENDPOINT`` and the usual ``AWS_*`` credentials from the environment, ``gs://``,
``memory://``, ...).

Local writes are crash-safe: an object is written under a temp name in its own shard
directory, made durable, verified against its digest and only then renamed to its real name,
so a crash never leaves a partial object under a real name. Batches of objects go through one
:class:`~mltrail.objects.writer.ObjectWriter`, which makes the whole batch durable with one
``syncfs(2)`` before the renames (and once more after them) instead of an ``fsync`` per file:
the same guarantee for 10,000 small files at the cost of two filesystem syncs. An object that
is already present (with the expected size, when known) is not rewritten.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat as stat_mod
import threading
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from mltrail.errors import CorruptObjectError, InvalidArgumentError, NotFoundError
from mltrail.objects._fs import TEMP_GRACE_S, TEMP_PREFIX, is_stale_temp, temp_name
from mltrail.objects.digest import (
    ALGORITHMS,
    DEFAULT_ALGO,
    LARGE_FILE,
    TREE_SUFFIX,
    hash_bytes,
    hash_file,
    is_tree,
    make_digest,
    parse_digest,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from mltrail.objects.tree import Tree
    from mltrail.objects.writer import ObjectWriter

__all__ = ["LocalObjectDB", "ObjectDB", "SourceChangedError", "is_regular", "object_key"]

# Protocols whose single PUT is atomic (an object appears whole or not at all).
_ATOMIC_PROTOCOLS = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "memory"})
_VALID_DIGEST = re.compile(r"(?:(?:blake3|sha256):[0-9a-f]{64}|md5:[0-9a-f]{32})(?:\.tree)?")
_TREE_MEMO = 8  # parsed trees kept per ODB object
_FEW = 16  # batches up to this size fsync each object instead of syncing the filesystem
_WRITERS = ".writers"  # markers of batch writers at work (see LocalObjectDB.register_writer)


class SourceChangedError(Exception):
    """A file changed between hashing and storing it (the caller hashes it again)."""


def object_key(digest: str) -> str:
    """The object's path relative to an ODB root: ``algo/ab/cdef...[.tree]``."""
    algo, hexd = parse_digest(digest)
    suffix = TREE_SUFFIX if is_tree(digest) else ""
    return f"{algo}/{hexd[:2]}/{hexd[2:]}{suffix}"


def _digest_from_parts(algo: str, shard: str, name: str) -> str | None:
    """The digest a stored file's name encodes, or None for anything else (temps, junk)."""
    tree = name.endswith(TREE_SUFFIX)
    rest = name[: -len(TREE_SUFFIX)] if tree else name
    hexd = shard + rest
    if (
        algo not in ALGORITHMS
        or len(shard) != 2
        or len(hexd) != ALGORITHMS[algo]
        or hexd.strip("0123456789abcdef")
    ):
        return None
    return make_digest(algo, hexd, tree=tree)


def _corrupt(digest: str, where: str, actual: str) -> CorruptObjectError:
    return CorruptObjectError(
        f"object {digest} at {where} is corrupt: its content hashes to {actual}"
    )


def _verify_bytes(digest: str, data: bytes, where: str) -> None:
    algo, _ = parse_digest(digest)
    actual = hash_bytes(data, algo, tree=is_tree(digest))
    if actual != digest:
        raise _corrupt(digest, where, actual)


def _is_local_url(url: str | os.PathLike[str]) -> bool:
    if not isinstance(url, str):
        return True
    return url.startswith("file://") or "://" not in url


class ObjectDB:
    """A content-addressed object store; ``ObjectDB(url)`` returns the right kind."""

    url: str
    is_local: bool = False
    _tree_memo: dict[str, Tree] | None = None

    def __new__(cls, url: str | os.PathLike[str], **storage_options: Any) -> ObjectDB:
        if cls is ObjectDB:
            if _is_local_url(url):
                cls = LocalObjectDB
            else:
                from mltrail.objects.http import HttpObjectDB, is_http_url
                from mltrail.objects.remote import FsspecObjectDB

                cls = HttpObjectDB if is_http_url(url) else FsspecObjectDB
        return super().__new__(cls)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    # -- the interface every ODB implements --------------------------------------------
    def exists(self, digest: str) -> bool:
        """Whether the object is stored (its content is not checked)."""
        raise NotImplementedError

    def exists_many(self, digests: Iterable[str]) -> set[str]:
        """The subset of ``digests`` that is stored (batched: one listing or parallel checks)."""
        raise NotImplementedError

    def size(self, digest: str) -> int:
        """Stored size of the object in bytes (NotFoundError if absent)."""
        raise NotImplementedError

    def add_bytes(self, data: bytes, *, algo: str = DEFAULT_ALGO, tree: bool = False) -> str:
        """Store ``data``; return its digest (a ``.tree`` digest when ``tree``)."""
        raise NotImplementedError

    def add_file(self, path: str | os.PathLike[str], digest: str | None = None) -> str:
        """Store a copy of the file at ``path``; a given ``digest`` is verified, not trusted."""
        raise NotImplementedError

    def read_bytes(self, digest: str, *, verify: bool = True) -> bytes:
        """The object's content, verified against its digest unless ``verify=False``."""
        raise NotImplementedError

    def open(self, digest: str) -> IO[bytes]:
        """A binary read stream of the object (not verified: see :meth:`verify`)."""
        raise NotImplementedError

    def iter_digests(self) -> Iterator[str]:
        """Every stored object's digest (temp files and strangers are skipped)."""
        raise NotImplementedError

    def remove(self, digest: str) -> None:
        """Delete the object (no error if absent)."""
        raise NotImplementedError

    def local_path(self, digest: str) -> Path:
        """Where a local ODB keeps the object (InvalidArgumentError on a remote ODB)."""
        raise InvalidArgumentError(f"{self.url}: not a local object store")

    def sweep_temps(self, dirs: Iterable[str] | None = None, *, grace_s: float = 3600.0) -> int:
        """Remove stale temp files (see :func:`~mltrail.objects._fs.is_stale_temp`) from the
        shard directories ``dirs`` (None: all of them); returns how many. Best effort: an
        error listing or removing is skipped. Stores that never write temps return 0."""
        return 0

    # -- shared conveniences ------------------------------------------------------------
    def verify(self, digest: str) -> None:
        """Hash the stored object; raise CorruptObjectError naming it if it does not match."""
        self.read_bytes(digest, verify=True)

    def add_tree(self, tree: Tree) -> str:
        """Store a tree's manifest; return the tree's digest."""
        digest = self.add_bytes(tree.to_bytes(), algo=tree.algo, tree=True)
        if digest != tree.digest:  # pragma: no cover - to_bytes is deterministic
            raise CorruptObjectError(f"tree {tree.digest} serialised to {digest}")
        return digest

    def read_tree(self, digest: str) -> Tree:
        """Read, verify and parse the tree ``digest`` (an untrusted manifest: checked)."""
        from mltrail.objects.tree import Tree

        if not is_tree(digest):
            raise InvalidArgumentError(f"digest: {digest} names a file, not a tree")
        # Trees are immutable: one parsed (verified, checked) tree is reused by the later
        # reads of this ODB object (push/checkout read a manifest more than once).
        memo: dict[str, Tree] | None = getattr(self, "_tree_memo", None)
        if memo is None:
            memo = {}
            self._tree_memo = memo
        tree = memo.get(digest)
        if tree is None:
            algo, _ = parse_digest(digest)
            tree = Tree.from_bytes(self.read_bytes(digest), algo=algo)
            if len(memo) >= _TREE_MEMO:
                memo.pop(next(iter(memo)))
            memo[digest] = tree
        return tree


class LocalObjectDB(ObjectDB):
    """An ODB in a local directory, through plain ``os`` calls."""

    is_local = True

    def __init__(self, url: str | os.PathLike[str], **storage_options: Any) -> None:
        if storage_options:
            raise InvalidArgumentError(
                f"storage options {sorted(storage_options)} do not apply to a local path"
            )
        text = os.fspath(url)
        if text.startswith("file://"):
            text = text[len("file://") :]
        self.root = Path(text).expanduser().absolute()
        self.url = str(self.root)
        self._dirs: set[str] = set()
        self._dirs_lock = threading.Lock()

    def path(self, digest: str) -> Path:
        """Where the object is (or would be) stored."""
        return Path(self.path_str(digest))

    def path_str(self, digest: str) -> str:
        """:meth:`path` as a string (cheaper, for hot loops)."""
        return f"{self.url}/{object_key(digest)}"

    def shard_dir(self, digest: str) -> str:
        """The directory the object ``digest`` is stored in."""
        return self.path_str(digest).rsplit("/", 1)[0]

    def local_path(self, digest: str) -> Path:  # noqa: D102
        return self.path(digest)

    def ensure_dir(self, directory: str) -> None:
        """Create a shard directory once per process."""
        if directory in self._dirs:
            return
        os.makedirs(directory, exist_ok=True)
        with self._dirs_lock:
            self._dirs.add(directory)

    def exists(self, digest: str) -> bool:  # noqa: D102
        try:
            os.stat(self.path_str(digest))
        except FileNotFoundError:
            return False
        return True

    def exists_many(self, digests: Iterable[str]) -> set[str]:  # noqa: D102
        wanted = set(digests)
        if len(wanted) <= 512:
            return {d for d in wanted if self.exists(d)}
        # Many: list each shard directory once instead of one stat per object.
        by_dir: dict[str, dict[str, str]] = {}
        valid = _VALID_DIGEST.fullmatch
        for d in wanted:
            if valid(d) is None:
                object_key(d)  # raises, naming what is wrong
            algo, _, rest = d.partition(":")
            names = by_dir.get(head := f"{algo}/{rest[:2]}")
            if names is None:
                names = by_dir[head] = {}
            names[rest[2:]] = d
        found: set[str] = set()
        for head, names in by_dir.items():
            try:
                present = os.listdir(self.root / head)
            except FileNotFoundError:
                continue
            found.update(names[n] for n in names.keys() & set(present))
        return found

    def size(self, digest: str) -> int:  # noqa: D102
        try:
            return os.stat(self.path(digest)).st_size
        except FileNotFoundError:
            raise NotFoundError(f"object {digest} is not in {self.url}") from None

    def writer(self) -> ObjectWriter:
        """A batch writer: objects become visible together, durably, on commit."""
        from mltrail.objects.writer import ObjectWriter

        return ObjectWriter(self)

    def add_bytes(  # noqa: D102
        self, data: bytes, *, algo: str = DEFAULT_ALGO, tree: bool = False
    ) -> str:
        digest = hash_bytes(data, algo, tree=tree)
        with self.writer() as w:
            w.put_bytes(digest, data, verified=True)
        return digest

    def add_file(  # noqa: D102
        self, path: str | os.PathLike[str], digest: str | None = None
    ) -> str:
        if digest is None:
            digest = hash_file(path)
        with self.writer() as w:
            w.put_file(digest, path)
        return digest

    def read_bytes(self, digest: str, *, verify: bool = True) -> bytes:  # noqa: D102
        path = self.path(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"object {digest} is not in {self.url}") from None
        if verify:
            _verify_bytes(digest, data, str(path))
        return data

    def verify(self, digest: str) -> None:  # noqa: D102
        path = self.path(digest)
        try:
            size = os.stat(path).st_size
        except FileNotFoundError:
            raise NotFoundError(f"object {digest} is not in {self.url}") from None
        if size < LARGE_FILE or is_tree(digest):
            self.read_bytes(digest, verify=True)
            return
        algo, _ = parse_digest(digest)
        actual = hash_file(path, algo)
        if actual != digest:
            raise _corrupt(digest, str(path), actual)

    def open(self, digest: str) -> IO[bytes]:  # noqa: D102
        try:
            return open(self.path(digest), "rb")  # noqa: SIM115
        except FileNotFoundError:
            raise NotFoundError(f"object {digest} is not in {self.url}") from None

    def iter_digests(self) -> Iterator[str]:  # noqa: D102
        for algo in ALGORITHMS:
            base = self.root / algo
            try:
                shards = sorted(os.listdir(base))
            except FileNotFoundError:
                continue
            for shard in shards:
                try:
                    names = sorted(os.listdir(base / shard))
                except (FileNotFoundError, NotADirectoryError):
                    continue
                for name in names:
                    digest = _digest_from_parts(algo, shard, name)
                    if digest is not None:
                        yield digest

    def iter_temps(self) -> Iterator[Path]:
        """Leftover temp files (from a crash mid-write) under the shard directories."""
        for shard in self._shard_dirs():
            try:
                names = os.listdir(shard)
            except OSError:
                continue
            yield from (Path(shard, n) for n in names if n.startswith(TEMP_PREFIX))

    def _shard_dirs(self) -> list[str]:
        out: list[str] = []
        for algo in ALGORITHMS:
            base = f"{self.url}/{algo}"
            try:
                shards = os.listdir(base)
            except OSError:
                continue
            out.extend(f"{base}/{s}" for s in shards if len(s) == 2)
        return out

    def sweep_temps(  # noqa: D102
        self, dirs: Iterable[str] | None = None, *, grace_s: float = TEMP_GRACE_S
    ) -> int:
        import time

        now = time.time()
        dead = self._dead_writers(now, grace_s) if dirs is None else []
        removed = 0
        for shard in self._shard_dirs() if dirs is None else dirs:
            try:
                names = [n for n in os.listdir(shard) if n.startswith(TEMP_PREFIX)]
            except OSError:
                continue
            for name in names:
                path = f"{shard}/{name}"
                try:
                    age = now - os.lstat(path).st_mtime
                    if is_stale_temp(name, age, grace_s=grace_s):
                        os.unlink(path)
                        removed += 1
                except OSError:
                    continue
        for marker in dead:  # only once their temps are gone
            with contextlib.suppress(OSError):
                os.unlink(marker)
        return removed

    # -- writer markers: a full sweep only after a writer died ---------------------------
    def register_writer(self) -> str:
        """Create a marker for a batch writer about to write temps (``<root>/.writers/``,
        named like a temp: host tag and pid); remove it with :meth:`unregister_writer`.

        A marker left behind means its writer died mid-batch, its temps anywhere in the
        store: :meth:`recover` then sweeps every shard directory, which the next writer does
        (a listing of the small ``.writers`` folder per batch otherwise).
        """
        folder = f"{self.url}/{_WRITERS}"
        os.makedirs(folder, exist_ok=True)
        path = f"{folder}/{temp_name('writer')}"
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644))
        return path

    @staticmethod
    def unregister_writer(marker: str) -> None:
        """Remove a writer's marker (its temps are all renamed or removed)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(marker)

    def recover(self, *, grace_s: float = TEMP_GRACE_S) -> int:
        """If a writer died mid-batch (a stale marker), sweep every shard directory of its
        temps and drop the marker; returns the temps removed (usually one ``listdir``)."""
        import time

        if not self._dead_writers(time.time(), grace_s):
            return 0
        return self.sweep_temps(None, grace_s=grace_s)

    def _dead_writers(self, now: float, grace_s: float) -> list[str]:
        folder = f"{self.url}/{_WRITERS}"
        try:
            names = os.listdir(folder)
        except OSError:
            return []
        dead = []
        for name in names:
            path = f"{folder}/{name}"
            try:
                age = now - os.lstat(path).st_mtime
            except OSError:
                continue
            if is_stale_temp(name, age, grace_s=grace_s):
                dead.append(path)
        return dead

    def remove(self, digest: str) -> None:  # noqa: D102
        if self._tree_memo:
            self._tree_memo.pop(digest, None)
        path = self.path(digest)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def is_regular(st: os.stat_result) -> bool:
    """Whether a stat result is a regular file."""
    return stat_mod.S_ISREG(st.st_mode)
