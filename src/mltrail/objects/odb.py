"""Object databases: content-addressed storage over a local directory or any fsspec URL.

Layout (both kinds)::

    <root>/<algo>/<first 2 hex>/<remaining hex>[.tree]

so ``blake3:ab12...`` lives at ``blake3/ab/12...`` and the tree ``blake3:cd34....tree`` at
``blake3/cd/34....tree``. ``ObjectDB(url)`` picks the implementation: a local path (or
``file://``) gets :class:`LocalObjectDB` (plain ``os`` calls, the fast path), anything else
:class:`FsspecObjectDB` (``s3://bucket/prefix`` with ``MLTRAIL_S3_ENDPOINT`` and the usual
``AWS_*`` credentials from the environment, ``gs://``, ``memory://``, ...).

Local writes are crash-safe: an object is written under a temp name in its own shard
directory, made durable, verified against its digest and only then renamed to its real name,
so a crash never leaves a partial object under a real name. Batches of objects go through one
:class:`ObjectWriter`, which makes the whole batch durable with one ``syncfs(2)`` before the
renames (and once more after them) instead of an ``fsync`` per file: the same guarantee for
10,000 small files at the cost of two filesystem syncs. An object that is already present
(with the expected size, when known) is not rewritten.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat as stat_mod
import threading
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from mltrail.errors import CorruptObjectError, InvalidArgumentError, NotFoundError
from mltrail.objects._fs import fsync_dir, reflink, syncfs, temp_name
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
    from collections.abc import Callable, Iterable, Iterator
    from types import TracebackType

    from mltrail.objects.tree import Tree

__all__ = [
    "FsspecObjectDB",
    "filesystem",
    "LocalObjectDB",
    "ObjectDB",
    "ObjectWriter",
    "SourceChangedError",
    "object_key",
]

# Protocols whose single PUT is atomic (an object appears whole or not at all).
_ATOMIC_PROTOCOLS = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "memory"})
_VALID_DIGEST = re.compile(r"(?:(?:blake3|sha256):[0-9a-f]{64}|md5:[0-9a-f]{32})(?:\.tree)?")
_TREE_MEMO = 8  # parsed trees kept per ODB object
_FEW = 16  # batches up to this size fsync each object instead of syncing the filesystem


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
        for algo in ALGORITHMS:
            base = self.root / algo
            if not base.is_dir():
                continue
            for shard in base.iterdir():
                if shard.is_dir():
                    yield from (p for p in shard.iterdir() if p.name.startswith(".tmp-"))

    def remove(self, digest: str) -> None:  # noqa: D102
        if self._tree_memo:
            self._tree_memo.pop(digest, None)
        path = self.path(digest)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


class ObjectWriter:
    """Writes a batch of objects into a :class:`LocalObjectDB`; thread-safe.

    Every ``put_*`` writes a temp file in the object's shard directory and returns; nothing
    is visible under a real name until :meth:`commit` (called by ``with``) has made the
    batch durable (``fsync`` each file when few, else one ``syncfs``), renamed every temp to
    its real name and made the renames durable. On an exception the temps are removed.
    """

    def __init__(self, odb: LocalObjectDB) -> None:
        self.odb = odb
        self._pending: dict[str, tuple[str, str]] = {}  # digest -> (temp, final)
        self._listings: dict[str, frozenset[str]] = {}  # shard directory -> names at first use
        self._claims = 0
        self._lock = threading.Lock()
        self.bytes_written = 0
        self.objects_written = 0

    def __enter__(self) -> ObjectWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()

    # -- helpers ---------------------------------------------------------------------------
    def _claim(self, digest: str, size: int | None) -> tuple[str, str] | None:
        """(temp, final) paths for a new object, or None if it is stored or being stored."""
        if digest in self._pending:
            return None
        algo, hexd = parse_digest(digest)
        directory = f"{self.odb.url}/{algo}/{hexd[:2]}"
        name = f"{hexd[2:]}{TREE_SUFFIX if digest.endswith(TREE_SUFFIX) else ''}"
        final = f"{directory}/{name}"
        self._claims += 1
        # Big batches list each shard directory once instead of a stat per object.
        if self._claims <= _FEW or name in self._listing(directory):
            try:
                st = os.stat(final)
            except FileNotFoundError:
                pass
            else:
                if size is None or st.st_size == size:
                    return None
                # A wrong-sized object under a real name (a torn write on a filesystem without
                # ordered data, or tampering): replace it.
        self.odb.ensure_dir(directory)
        tmp = f"{directory}/{temp_name(hexd[2:])}"
        with self._lock:
            if digest in self._pending:
                return None
            self._pending[digest] = (tmp, final)
        return tmp, final

    def _listing(self, directory: str) -> frozenset[str]:
        """The names in a shard directory when this batch first touched it.

        An object another process stores after the listing is written again by this batch:
        the rename replaces it with the same verified content (harmless).
        """
        names = self._listings.get(directory)
        if names is None:
            try:
                names = frozenset(os.listdir(directory))
            except FileNotFoundError:
                names = frozenset()
            self._listings[directory] = names
        return names

    def _release(self, digest: str) -> None:
        with self._lock:
            tmp, _ = self._pending.pop(digest, ("", ""))
        if tmp:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def pending(self, digest: str) -> bool:
        """Whether ``digest`` is part of this batch."""
        return digest in self._pending

    # -- writes ----------------------------------------------------------------------------
    def put_bytes(self, digest: str, data: bytes, *, verified: bool = False) -> bool:
        """Add ``data`` as ``digest`` (hashing it first unless ``verified``); False if present."""
        if not verified:
            _verify_bytes(digest, data, "data to store")
        claim = self._claim(digest, len(data))
        if claim is None:
            return False
        tmp, _ = claim
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
            try:
                view = memoryview(data)
                while view:
                    n = os.write(fd, view)
                    view = view[n:]
            finally:
                os.close(fd)
        except BaseException:
            self._release(digest)
            raise
        self.bytes_written += len(data)
        self.objects_written += 1
        return True

    def put_file(
        self, digest: str, src: str | os.PathLike[str], *, size: int | None = None
    ) -> bool:
        """Copy the file ``src`` in as ``digest``, verifying the copy; False if present.

        Raises:
            CorruptObjectError: the bytes copied do not hash to ``digest``.
        """
        if size is None:
            size = os.stat(src).st_size
        if size < LARGE_FILE:
            with open(src, "rb") as f:
                data = f.read()
            _verify_bytes(digest, data, os.fspath(src))
            return self.put_bytes(digest, data, verified=True)
        claim = self._claim(digest, size)
        if claim is None:
            return False
        tmp, _ = claim
        try:
            try:
                reflink(src, tmp)
            except OSError:
                import shutil

                shutil.copyfile(src, tmp)
            algo, _ = parse_digest(digest)
            actual = hash_file(tmp, algo)
            if actual != digest:
                raise _corrupt(digest, os.fspath(src), actual)
            os.chmod(tmp, 0o444)
        except BaseException:
            self._release(digest)
            raise
        self.bytes_written += size
        self.objects_written += 1
        return True

    def put_from(
        self, digest: str, fill: Callable[[str], None], *, size: int | None = None
    ) -> bool:
        """Add ``digest`` by letting ``fill(temp_path)`` write the file (a download), then
        verifying it; False if already present.

        Raises:
            CorruptObjectError: what ``fill`` wrote does not hash to ``digest`` (discarded).
        """
        claim = self._claim(digest, size)
        if claim is None:
            return False
        tmp, _ = claim
        try:
            fill(tmp)
            algo, _ = parse_digest(digest)
            actual = hash_file(tmp, algo)
            if is_tree(digest):
                actual += TREE_SUFFIX
            if actual != digest:
                raise _corrupt(digest, "the data received", actual)
            os.chmod(tmp, 0o444)
            written = os.stat(tmp).st_size
        except BaseException:
            self._release(digest)
            raise
        self.bytes_written += written
        self.objects_written += 1
        return True

    def put_link(
        self, digest: str, src: str | os.PathLike[str], st: os.stat_result, *, how: str
    ) -> bool:
        """Add ``src`` by hardlink (``how="hardlink"``) or clone (``how="reflink"``).

        ``st`` is the ``fstat`` taken before ``src`` was hashed: if the linked file is not
        that same, unchanged file (inode, size, mtime), nothing is stored and
        :class:`SourceChangedError` is raised. A hardlinked source becomes read-only: it is
        the cache's object now. OSError (EXDEV, EPERM, EOPNOTSUPP, ...) means the mode is
        not available here.
        """
        claim = self._claim(digest, st.st_size)
        if claim is None:
            return False
        tmp, _ = claim
        try:
            if how == "hardlink":
                os.link(src, tmp)
                now = os.lstat(tmp)
                if (now.st_ino, now.st_dev) != (st.st_ino, st.st_dev):
                    raise SourceChangedError(os.fspath(src))
            else:
                reflink(src, tmp)
                now = os.stat(src)
                if now.st_ino != st.st_ino:
                    raise SourceChangedError(os.fspath(src))
            if (now.st_size, now.st_mtime_ns) != (st.st_size, st.st_mtime_ns):
                raise SourceChangedError(os.fspath(src))
            os.chmod(tmp, 0o555 if st.st_mode & 0o111 else 0o444)
        except BaseException:
            self._release(digest)
            raise
        self.objects_written += 1
        return True

    # -- commit ----------------------------------------------------------------------------
    def commit(self) -> None:
        """Make the batch durable and visible (see the class docstring)."""
        with self._lock:
            items = list(self._pending.values())
            self._pending.clear()
        if not items:
            return
        try:
            if len(items) <= _FEW:
                for tmp, _ in items:
                    fd = os.open(tmp, os.O_RDONLY | os.O_CLOEXEC)
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
            else:
                syncfs(self.odb.url)
        except BaseException:
            for tmp, _ in items:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
            raise
        dirs: set[str] = set()
        for tmp, final in items:
            os.replace(tmp, final)
            dirs.add(os.path.dirname(final))
        if len(dirs) <= _FEW:
            for d in dirs:
                fsync_dir(d)
        else:
            syncfs(self.odb.url)

    def abort(self) -> None:
        """Remove every temp of the batch; nothing becomes visible."""
        with self._lock:
            items = list(self._pending.values())
            self._pending.clear()
        for tmp, _ in items:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


def filesystem(url: str, **storage_options: Any) -> tuple[Any, str]:
    """``(fsspec filesystem, path)`` for ``url``, with the same settings an ODB gets.

    ``s3://`` URLs use ``MLTRAIL_S3_ENDPOINT`` (a custom endpoint, e.g. SeaweedFS or MinIO)
    unless ``endpoint_url`` is given; credentials come from the usual ``AWS_*`` variables.
    """
    import fsspec

    protocol = url.split("://", 1)[0].lower() if "://" in url else "file"
    opts = dict(storage_options)
    if protocol in ("s3", "s3a"):
        endpoint = os.environ.get("MLTRAIL_S3_ENDPOINT")
        if endpoint and "endpoint_url" not in opts:
            opts["endpoint_url"] = endpoint
    try:
        fs, path = fsspec.core.url_to_fs(url, **opts)
    except (ImportError, ValueError) as exc:
        raise InvalidArgumentError(f"url: cannot open {url!r}: {exc}") from None
    return fs, str(path)


class FsspecObjectDB(ObjectDB):
    """An ODB on any fsspec filesystem (S3, GCS, Azure, memory, SFTP, ...)."""

    def __init__(self, url: str | os.PathLike[str], **storage_options: Any) -> None:
        text = os.fspath(url)
        protocol = text.split("://", 1)[0].lower()
        self.fs, root = filesystem(text, **storage_options)
        self.root = str(root).rstrip("/")
        self.url = text
        self.protocol = protocol
        self.atomic_put = protocol in _ATOMIC_PROTOCOLS

    def _path(self, digest: str) -> str:
        return f"{self.root}/{object_key(digest)}"

    def path(self, digest: str) -> str:
        """The object's path on the filesystem (without protocol)."""
        return self._path(digest)

    def create(self) -> None:
        """Create the root (the bucket, for S3) if it does not exist."""
        self.fs.makedirs(self.root, exist_ok=True)

    def exists(self, digest: str) -> bool:  # noqa: D102
        return bool(self.fs.exists(self._path(digest)))

    def exists_many(self, digests: Iterable[str]) -> set[str]:  # noqa: D102
        wanted = set(digests)
        if not wanted:
            return set()
        if len(wanted) <= 1024:
            # A HEAD per object (32 in flight) beats listing a remote that may hold millions.
            ordered = sorted(wanted)
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(min(32, len(ordered))) as pool:
                flags = list(pool.map(self.exists, ordered))
            return {d for d, ok in zip(ordered, flags, strict=True) if ok}
        return wanted & set(self.iter_digests())

    def size(self, digest: str) -> int:  # noqa: D102
        try:
            return int(self.fs.size(self._path(digest)))
        except FileNotFoundError:
            raise NotFoundError(f"object {digest} is not in {self.url}") from None

    def put_many(self, items: dict[str, bytes]) -> None:
        """Upload verified objects (digest -> bytes) concurrently."""
        if not items:
            return
        paths = {self._path(d): data for d, data in items.items()}
        if self.atomic_put:
            self.fs.pipe(paths)
            return
        for path, data in paths.items():
            self._put_atomic_bytes(path, data)

    def _put_atomic_bytes(self, path: str, data: bytes) -> None:
        parent = path.rsplit("/", 1)[0]
        self.fs.makedirs(parent, exist_ok=True)
        tmp = f"{parent}/{temp_name(path.rsplit('/', 1)[1])}"
        self.fs.pipe_file(tmp, data)
        self.fs.mv(tmp, path)

    def put_local_file(self, digest: str, local: str | os.PathLike[str]) -> None:
        """Upload a (verified) local file as ``digest``."""
        path = self._path(digest)
        if self.atomic_put:
            self.fs.put_file(os.fspath(local), path)
            return
        parent = path.rsplit("/", 1)[0]
        self.fs.makedirs(parent, exist_ok=True)
        tmp = f"{parent}/{temp_name(path.rsplit('/', 1)[1])}"
        self.fs.put_file(os.fspath(local), tmp)
        self.fs.mv(tmp, path)

    def get_many(self, digests: Iterable[str]) -> dict[str, bytes | BaseException]:
        """Download objects concurrently (unverified): digest -> bytes, or the error."""
        by_path = {self._path(d): d for d in digests}
        if not by_path:
            return {}
        got = self.fs.cat(list(by_path), on_error="return")
        if not isinstance(got, dict):  # a single path returns bytes
            got = {next(iter(by_path)): got}
        out: dict[str, bytes | BaseException] = {}
        for path, digest in by_path.items():
            value = got.get(path, FileNotFoundError(errno.ENOENT, "missing", path))
            out[digest] = value
        return out

    def get_to_local(self, digest: str, local: str | os.PathLike[str]) -> None:
        """Download an object into the local file ``local`` (unverified)."""
        try:
            self.fs.get_file(self._path(digest), os.fspath(local))
        except FileNotFoundError:
            raise NotFoundError(f"object {digest} is not in {self.url}") from None

    def add_bytes(  # noqa: D102
        self, data: bytes, *, algo: str = DEFAULT_ALGO, tree: bool = False
    ) -> str:
        digest = hash_bytes(data, algo, tree=tree)
        if not self.exists(digest):
            self.put_many({digest: data})
        return digest

    def add_file(  # noqa: D102
        self, path: str | os.PathLike[str], digest: str | None = None
    ) -> str:
        algo = parse_digest(digest)[0] if digest else DEFAULT_ALGO
        actual = hash_file(path, algo)
        if digest is not None and actual != digest:
            raise _corrupt(digest, os.fspath(path), actual)
        if not self.exists(actual):
            self.put_local_file(actual, path)
        return actual

    def read_bytes(self, digest: str, *, verify: bool = True) -> bytes:  # noqa: D102
        path = self._path(digest)
        try:
            data = bytes(self.fs.cat_file(path))
        except FileNotFoundError:
            raise NotFoundError(f"object {digest} is not in {self.url}") from None
        if verify:
            _verify_bytes(digest, data, f"{self.url}/{object_key(digest)}")
        return data

    def open(self, digest: str) -> IO[bytes]:  # noqa: D102
        try:
            return self.fs.open(self._path(digest), "rb")  # type: ignore[no-any-return]
        except FileNotFoundError:
            raise NotFoundError(f"object {digest} is not in {self.url}") from None

    def iter_digests(self) -> Iterator[str]:  # noqa: D102
        with contextlib.suppress(AttributeError):
            self.fs.invalidate_cache(self.root)
        try:
            found = self.fs.find(self.root)
        except FileNotFoundError:
            return
        prefix = self.root + "/" if self.root else ""
        for full in sorted(found):
            rel = full[len(prefix) :] if full.startswith(prefix) else full
            parts = rel.split("/")
            if len(parts) != 3:
                continue
            digest = _digest_from_parts(*parts)
            if digest is not None:
                yield digest

    def remove(self, digest: str) -> None:  # noqa: D102
        if self._tree_memo:
            self._tree_memo.pop(digest, None)
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self._path(digest))


def is_regular(st: os.stat_result) -> bool:
    """Whether a stat result is a regular file."""
    return stat_mod.S_ISREG(st.st_mode)
