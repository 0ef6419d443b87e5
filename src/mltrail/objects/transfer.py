"""Transfers: copy objects between any two object databases, verified, in parallel.

``push(cache, remote, digests)`` and ``pull(remote, cache, digests)`` are the same operation,
:func:`transfer` (from ``src`` into ``dst``); tree digests are expanded (:func:`closure`) and
the trees themselves are written last, only once all of their files are in ``dst``, so a tree
present in a store promises its files are there too.

Every object is verified on the way: the bytes read from ``src`` (local) or received from it
(remote) are hashed before they are stored in ``dst``; a mismatch is a hard
:class:`~mltrail.errors.CorruptObjectError` naming the object (raised after the good objects
were stored, so a retry does not redo them). Objects missing from ``src`` are reported in
:attr:`TransferResult.missing`.

Strategy per pair of stores: into a local store through one
:class:`~mltrail.objects.writer.ObjectWriter` (one durable commit for the batch, no per-object
fsync); to or from a :class:`~mltrail.objects.base.BulkObjectStore` (fsspec, a server), small
objects in concurrent batches (``get_many``/``put_many``: fsspec's async ``cat``/``pipe``,
parallel requests), large ones one per thread as whole files (``get_to_local``/
``put_local_file``). Any other :class:`~mltrail.objects.base.ObjectStore` is read and written
object by object through the core methods.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mltrail.errors import CorruptObjectError, NotFoundError
from mltrail.objects._progress import Bar
from mltrail.objects.base import BulkObjectStore
from mltrail.objects.digest import (
    LARGE_FILE,
    TREE_SUFFIX,
    is_tree,
    make_digest,
    new_hasher,
    parse_digest,
)
from mltrail.objects.fsspec_store import FsspecObjectStore
from mltrail.objects.local import LocalObjectStore
from mltrail.objects.verify import verify_bytes, verify_file

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from mltrail.objects.base import ObjectStore
    from mltrail.objects.writer import ObjectWriter

__all__ = ["TransferResult", "closure", "pull", "push", "transfer"]

_BATCH_OBJECTS = 512
_BATCH_BYTES = 64 << 20
_LOCAL_JOBS = 1  # local -> local small objects: threads (measured, see docs/benchmarks.md)
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)


@dataclass
class TransferResult:
    """What a transfer did: objects copied, objects already there, bytes copied, missing."""

    transferred: int = 0
    skipped: int = 0
    bytes: int = 0
    missing: list[str] = field(default_factory=list)

    @property
    def objects(self) -> int:
        """Alias of :attr:`transferred`."""
        return self.transferred


def closure(
    odb: ObjectStore, digests: Iterable[str], *, missing: list[str] | None = None
) -> dict[str, int | None]:
    """Every object ``digests`` reach in ``odb`` (trees expanded): digest -> size if known.

    A tree not in ``odb`` is appended to ``missing`` (or raises NotFoundError if ``missing``
    is None); a corrupt or unsafe manifest raises.
    """
    out: dict[str, int | None] = {}
    for d in digests:
        parse_digest(d)
        if not is_tree(d):
            out.setdefault(d, None)
            continue
        try:
            tree = odb.read_tree(d)
        except NotFoundError:
            if missing is None:
                raise
            missing.append(d)
            continue
        out[d] = len(tree.to_bytes())
        for e in tree:
            if not e.is_link:
                out[e.digest] = e.size
    return out


def transfer(
    src: ObjectStore,
    dst: ObjectStore,
    digests: Iterable[str],
    *,
    jobs: int | None = None,
    progress: bool = True,
) -> TransferResult:
    """Copy the objects ``digests`` reach (trees expanded) from ``src`` into ``dst``."""
    result = TransferResult()
    wanted = closure(src, digests, missing=result.missing)
    present = dst.exists_many(wanted)
    result.skipped = len(present)
    todo = {d: s for d, s in wanted.items() if d not in present}
    if not todo:
        _sweep(dst, wanted)
        return result
    for d, s in todo.items():
        if s is None:
            try:
                todo[d] = src.size(d)
            except NotFoundError:
                todo[d] = -1
    for d in [d for d, s in todo.items() if s == -1]:
        result.missing.append(d)
        del todo[d]
    files = {d: s or 0 for d, s in todo.items() if not is_tree(d)}
    trees = {d: s or 0 for d, s in todo.items() if is_tree(d)}
    corrupt: list[CorruptObjectError] = []
    with Bar(f"transferring {len(todo)} objects", len(todo), enabled=progress) as bar:
        done = _copy(src, dst, files, jobs, bar, result, corrupt)
        failed = set(files) - done
        complete = {}
        for t in trees:  # a tree only once all of its files made it
            entries = src.read_tree(t)
            if not any(e.digest in failed for e in entries if not e.is_link):
                complete[t] = trees[t]
        _copy(src, dst, complete, jobs, bar, result, corrupt)
    _sweep(dst, wanted)
    if corrupt:
        first = corrupt[0]
        more = f" ({len(corrupt) - 1} more corrupt object(s) skipped)" if len(corrupt) > 1 else ""
        raise CorruptObjectError(first.message + more) from first
    return result


def _sweep(dst: ObjectStore, wanted: dict[str, int | None]) -> None:
    """Remove a killed transfer's temps. A local store knows when a writer died mid-batch
    (its marker, see :meth:`LocalObjectStore.recover`) and sweeps everywhere then; a non-atomic
    fsspec store has no markers: the shard directories of everything this transfer is about
    (stored now or before) are swept. Atomic object stores (S3, ...) and servers never hold
    temps."""
    if isinstance(dst, LocalObjectStore):
        dst.recover()
    elif isinstance(dst, FsspecObjectStore) and not dst.atomic_put:
        dst.sweep_temps({dst.shard_dir(d) for d in wanted})


def push(
    src: ObjectStore,
    dst: ObjectStore,
    digests: Iterable[str],
    *,
    jobs: int | None = None,
    progress: bool = True,
) -> TransferResult:
    """Upload: :func:`transfer` from the cache ``src`` to the remote ``dst``."""
    return transfer(src, dst, digests, jobs=jobs, progress=progress)


def pull(
    src: ObjectStore,
    dst: ObjectStore,
    digests: Iterable[str],
    *,
    jobs: int | None = None,
    progress: bool = True,
) -> TransferResult:
    """Download: :func:`transfer` from the remote ``src`` into the cache ``dst``."""
    return transfer(src, dst, digests, jobs=jobs, progress=progress)


def _batches(items: dict[str, int]) -> list[list[str]]:
    out: list[list[str]] = []
    cur: list[str] = []
    size = 0
    for d, s in items.items():
        if cur and (len(cur) >= _BATCH_OBJECTS or size + s > _BATCH_BYTES):
            out.append(cur)
            cur, size = [], 0
        cur.append(d)
        size += s
    if cur:
        out.append(cur)
    return out


def _copy(
    src: ObjectStore,
    dst: ObjectStore,
    items: dict[str, int],
    jobs: int | None,
    bar: Bar,
    result: TransferResult,
    corrupt: list[CorruptObjectError],
) -> set[str]:
    """Copy ``items`` (digest -> size); return the digests now in ``dst``."""
    if not items:
        return set()
    small = {d: s for d, s in items.items() if s < LARGE_FILE}
    large = {d: s for d, s in items.items() if s >= LARGE_FILE}
    done: set[str] = set()

    lock = threading.Lock()

    def ok(d: str, size: int) -> None:
        with lock:
            done.add(d)
            result.transferred += 1
            result.bytes += size
        bar.advance()

    def fail(d: str, exc: BaseException) -> None:
        with lock:
            if isinstance(exc, CorruptObjectError):
                corrupt.append(exc)
            elif isinstance(exc, (FileNotFoundError, NotFoundError)):
                result.missing.append(d)
            else:
                raise exc
        bar.advance()

    src_local = isinstance(src, LocalObjectStore)
    n_jobs = jobs or (4 if src_local and isinstance(dst, LocalObjectStore) else 16)
    if isinstance(dst, LocalObjectStore):
        with dst.writer() as w:
            # Local copies are bound by file creation: more writer threads than _LOCAL_JOBS
            # only add contention (measured), whatever ``jobs`` a remote transfer would use.
            local_jobs = min(jobs or _LOCAL_JOBS, _LOCAL_JOBS) if src_local else n_jobs
            _to_local(src, w, small, large, n_jobs, local_jobs, ok, fail)
    else:
        _to_remote(src, dst, small, large, n_jobs, ok, fail)
    return done


def _read(src: ObjectStore, digests: list[str]) -> dict[str, bytes | BaseException]:
    """Read (unverified) small objects from ``src``: digest -> bytes or the error."""
    if isinstance(src, BulkObjectStore):
        return src.get_many(digests)
    out: dict[str, bytes | BaseException] = {}
    for d in digests:
        try:
            out[d] = src.read_bytes(d, verify=False)
        except (NotFoundError, OSError) as exc:
            out[d] = exc
    return out


def _prefetch(
    fn: Callable[[list[str]], dict[str, bytes | BaseException]],
    batches: list[list[str]],
    workers: int,
) -> Iterator[dict[str, bytes | BaseException]]:
    """``map(fn, batches)`` with at most ``workers + 1`` batches read ahead (bounded memory)."""
    with ThreadPoolExecutor(workers) as pool:
        pending: deque[Future[dict[str, bytes | BaseException]]] = deque()
        for batch in batches:
            pending.append(pool.submit(fn, batch))
            if len(pending) > workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _read_all(fd: int, size: int) -> bytes:
    """Everything from ``fd`` (``size`` is a hint: a file larger than told is read whole)."""
    data = os.read(fd, size + 1)
    if len(data) <= size:
        return data
    chunks = [data]
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def _verified(d: str, data: bytes, where: str) -> bytes:
    verify_bytes(d, data, where, received=True)
    return data


def _download(src: ObjectStore, d: str, local: str) -> None:
    """Fetch ``d`` from ``src`` into the local file ``local`` (unverified)."""
    if isinstance(src, BulkObjectStore):
        src.get_to_local(d, local)
        return
    import shutil

    with src.open(d) as f, open(local, "wb") as out:
        shutil.copyfileobj(f, out, 1 << 20)


def _upload(dst: ObjectStore, items: dict[str, bytes]) -> None:
    """Store objects whose bytes were verified into ``dst``."""
    if isinstance(dst, BulkObjectStore):
        dst.put_many(items, verified=True)
        return
    for d, data in items.items():
        dst.add_bytes(data, algo=parse_digest(d)[0], tree=is_tree(d))


def _upload_file(dst: ObjectStore, d: str, local: str) -> None:
    """Store the verified local file ``local`` as ``d`` into ``dst``."""
    if isinstance(dst, BulkObjectStore):
        dst.put_local_file(d, local, verified=True)
    else:
        dst.add_file(local, d)


def _to_local(
    src: ObjectStore,
    w: ObjectWriter,
    small: dict[str, int],
    large: dict[str, int],
    jobs: int,
    local_jobs: int,
    ok: Callable[[str, int], None],
    fail: Callable[[str, BaseException], None],
) -> None:
    remote = isinstance(src, BulkObjectStore)
    batches = _batches(small)

    def store(got: dict[str, bytes | BaseException]) -> None:
        for d, value in got.items():
            if isinstance(value, BaseException):
                fail(d, value)
                continue
            try:
                w.put_bytes(d, _verified(d, value, src.url), verified=True)
            except CorruptObjectError as exc:
                fail(d, exc)
                continue
            ok(d, len(value))

    if remote:
        # fsspec's async loop batches each read; a few batches in flight overlap latency.
        for got in _prefetch(lambda b: _read(src, b), batches, 4):
            store(got)
    elif isinstance(src, LocalObjectStore):
        # Local to local is bound by file creation: read, verify and write in a tight loop
        # (threads measured slower here: the GIL and the syscalls interleave badly).
        root = src.url

        def copy_local(batch: list[str]) -> None:
            for d in batch:
                algo, _, rest = d.partition(":")  # digests were validated by closure()
                path = f"{root}/{algo}/{rest[:2]}/{rest[2:]}"
                try:
                    fd = os.open(path, _READ_FLAGS)
                except FileNotFoundError as exc:
                    fail(d, exc)
                    continue
                try:
                    data = _read_all(fd, small[d])
                finally:
                    os.close(fd)
                h = new_hasher(algo)
                h.update(data)
                if h.hexdigest() != rest.removesuffix(TREE_SUFFIX):
                    actual = make_digest(algo, h.hexdigest(), tree=rest.endswith(TREE_SUFFIX))
                    fail(
                        d,
                        CorruptObjectError(
                            f"object {d} at {path} is corrupt: its content hashes to {actual}"
                        ),
                    )
                    continue
                w.put_bytes(d, data, verified=True)
                ok(d, len(data))

        if local_jobs <= 1 or len(batches) <= 1:
            for batch in batches:
                copy_local(batch)
        else:
            with ThreadPoolExecutor(local_jobs) as pool:
                list(pool.map(copy_local, batches))
    else:
        with ThreadPoolExecutor(local_jobs) as pool:
            list(pool.map(lambda b: store(_read(src, b)), batches))

    def one(d: str) -> None:
        try:
            if isinstance(src, LocalObjectStore):
                w.put_file(d, src.path_str(d), size=large[d])
            else:
                w.put_from(d, lambda tmp: _download(src, d, tmp), size=large[d])
        except (CorruptObjectError, NotFoundError, FileNotFoundError) as exc:
            fail(d, exc)
            return
        ok(d, large[d])

    with ThreadPoolExecutor(max(1, min(jobs, len(large) or 1))) as pool:
        list(pool.map(one, large))


def _to_remote(
    src: ObjectStore,
    dst: ObjectStore,
    small: dict[str, int],
    large: dict[str, int],
    jobs: int,
    ok: Callable[[str, int], None],
    fail: Callable[[str, BaseException], None],
) -> None:
    for batch in _batches(small):
        verified: dict[str, bytes] = {}
        for d, value in _read(src, batch).items():
            if isinstance(value, BaseException):
                fail(d, value)
                continue
            try:
                verified[d] = _verified(d, value, src.url)
            except CorruptObjectError as exc:
                fail(d, exc)
        _upload(dst, verified)
        for d, data in verified.items():
            ok(d, len(data))

    def one(d: str) -> None:
        try:
            if isinstance(src, LocalObjectStore):
                src.verify(d)
                _upload_file(dst, d, src.path_str(d))
            else:
                with tempfile.TemporaryDirectory(prefix="mltrail-xfer-") as tmpdir:
                    tmp = os.path.join(tmpdir, "object")
                    _download(src, d, tmp)
                    verify_file(d, tmp, src.url, received=True)
                    _upload_file(dst, d, tmp)
        except (CorruptObjectError, NotFoundError, FileNotFoundError) as exc:
            fail(d, exc)
            return
        ok(d, large[d])

    with ThreadPoolExecutor(max(1, min(jobs, len(large) or 1))) as pool:
        list(pool.map(one, large))
