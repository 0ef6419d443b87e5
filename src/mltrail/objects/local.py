"""A content-addressed object store in a local directory: :class:`LocalObjectStore`.

Layout ``<root>/<algo>/<first 2 hex>/<rest>[.tree]`` (:mod:`~mltrail.objects.layout`), read
and written through plain ``os`` calls (the fast path: no fsspec import). A local path or a
``file://`` URL opens one (:func:`~mltrail.objects.registry.open_object_store`).

Writes are crash-safe: an object is written under a temp name in its own shard directory,
made durable, verified against its digest and only then renamed to its real name, so a crash
never leaves a partial object under a real name. Batches of objects go through one
:class:`~mltrail.objects.writer.ObjectWriter`, which makes the whole batch durable with one
``syncfs(2)`` before the renames (and once more after them) instead of an ``fsync`` per file:
the same guarantee for 10,000 small files at the cost of two filesystem syncs. An object that
is already present (with the expected size, when known) is not rewritten.

Besides :class:`~mltrail.objects.base.ObjectStore` it is a
:class:`~mltrail.objects.base.PrunableObjectStore` (list, remove, sweep temps) and has what
only a directory on this machine can offer: :meth:`LocalObjectStore.local_path` (checkout
links objects into a workspace), :meth:`LocalObjectStore.writer` (batched durable writes) and
the writer markers of ``<root>/.writers/`` (:meth:`LocalObjectStore.recover`).
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from mltrail.errors import InvalidArgumentError, NotFoundError
from mltrail.objects._fs import TEMP_GRACE_S, TEMP_PREFIX, is_stale_temp, temp_name
from mltrail.objects._shared import StoreMixin
from mltrail.objects.digest import (
    ALGORITHMS,
    DEFAULT_ALGO,
    LARGE_FILE,
    hash_bytes,
    hash_file,
    is_tree,
)
from mltrail.objects.layout import VALID_DIGEST, digest_from_parts, object_key
from mltrail.objects.verify import verify_bytes, verify_file
from mltrail.objects.writer import ObjectWriter

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from mltrail.objects.base import PrunableObjectStore

__all__ = ["LocalObjectStore"]

_WRITERS = ".writers"  # markers of batch writers at work (see LocalObjectStore.register_writer)


class LocalObjectStore(StoreMixin):
    """An object store in a local directory, through plain ``os`` calls (see the module)."""

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

    def local_path(self, digest: str) -> Path:
        """Where the object is on this machine (checkout links it from there)."""
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
        valid = VALID_DIGEST.fullmatch
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
            verify_bytes(digest, data, str(path))
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
        verify_file(digest, path)

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
                    digest = digest_from_parts(algo, shard, name)
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
        self._forget_tree(digest)
        path = self.path(digest)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


if TYPE_CHECKING:  # the backend satisfies its protocols (checked by mypy)
    _check: type[PrunableObjectStore] = LocalObjectStore
