"""Build: hash a file or a directory into the cache (trees for directories).

``build(path, cache, index)`` walks ``path`` (``os.scandir``, never following symlinks),
looks every file up in the hash index in one batch, hashes only the files whose
``(path, inode, mtime_ns, size)`` changed (in parallel, blake3 on every core for large
files), stores new objects in the cache through one :class:`~mltrail.objects.writer.ObjectWriter`
(one durable commit for the batch; hardlinks when the cache's mode allows, see
:mod:`mltrail.objects.cache`), then stores the tree, then records the new digests in the index.

Symlinks inside a directory become tree entries holding their relative target; a link that
points outside the directory (absolute, or ``..`` past the root) is refused
(:class:`~mltrail.errors.UnsafePathError`), never followed. Sockets, FIFOs and devices are
skipped.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import stat as stat_mod
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from mltrail.errors import InvalidArgumentError, NotFoundError
from mltrail.objects._progress import Bar
from mltrail.objects.digest import DEFAULT_ALGO, LARGE_FILE, hash_bytes, hash_file, new_hasher
from mltrail.objects.index import RACY_NS
from mltrail.objects.tree import MODE_EXEC, MODE_FILE, MODE_LINK, Tree, TreeEntry
from mltrail.objects.verify import SourceChangedError

if TYPE_CHECKING:
    from mltrail.objects.cache import Cache
    from mltrail.objects.index import HashIndex
    from mltrail.objects.writer import ObjectWriter

__all__ = ["BuildResult", "Ignore", "Listing", "build", "listing_stamp", "scan", "walk"]

Ignore = Callable[[str, bool], bool]  # (relative posix path, is_dir) -> skip it
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_CHUNK_FILES = 256
_RETRIES = 3
_PARALLEL_AVG = 1 << 20


class BuildResult(NamedTuple):
    """``(digest, tree, size, count)``: ``tree`` is None for a single file."""

    digest: str
    tree: Tree | None
    size: int
    count: int  # type: ignore[assignment]  # shadows tuple.count on purpose


class _File(NamedTuple):
    rel: str
    abspath: str
    st: os.stat_result


class Listing(NamedTuple):
    """What :func:`scan` found at a path, already checked (see :func:`build`'s ``listing``)."""

    root: str
    top: os.stat_result
    files: list[_File]
    links: dict[str, str]


def scan(
    path: str | os.PathLike[str],
    cache: Cache | None = None,
    *,
    ignore: Ignore | None = None,
) -> Listing:
    """Walk ``path`` (a file or a directory; never following links) and check the listing:
    every name a manifest can hold, no symlink leading out (:func:`~mltrail.objects.tree.
    check_walked`). Nothing is hashed or written, so a caller adding several paths can refuse
    them all before touching any.

    Raises:
        NotFoundError: ``path`` does not exist.
        UnsafePathError: a symlink in the directory points outside it, or a name cannot be
            stored safely in a manifest.
        InvalidArgumentError: ``path`` is neither a file nor a directory.
    """
    from mltrail.objects.tree import check_walked

    root = os.path.realpath(path)
    try:
        top = os.stat(root)
    except FileNotFoundError:
        raise NotFoundError(f"path: {os.fspath(path)!r} does not exist") from None
    if stat_mod.S_ISREG(top.st_mode):
        return Listing(root, top, [_File(os.path.basename(root), root, top)], {})
    if not stat_mod.S_ISDIR(top.st_mode):
        raise InvalidArgumentError(f"path: {os.fspath(path)!r} is not a file or directory")
    skip = frozenset({os.path.realpath(cache.root)}) if cache is not None else frozenset()
    files, links = walk(root, ignore, skip)
    try:
        check_walked((f.rel for f in files), links)
    except InvalidArgumentError as exc:  # UnsafePathError too: say which directory
        raise type(exc)(f"{os.fspath(path)}: {exc.message}; nothing was added") from None
    return Listing(root, top, files, links)


def walk(
    root: str | os.PathLike[str],
    ignore: Ignore | None = None,
    skip_dirs: frozenset[str] = frozenset(),
) -> tuple[list[_File], dict[str, str]]:
    """Regular files (with their ``lstat``) and symlinks (rel -> target) under ``root``."""
    files: list[_File] = []
    links: dict[str, str] = {}
    stack: list[tuple[str, str]] = [(os.fspath(root), "")]
    while stack:
        directory, prefix = stack.pop()
        with os.scandir(directory) as it:
            for entry in it:
                rel = prefix + entry.name
                if entry.is_dir(follow_symlinks=False):
                    if entry.path in skip_dirs or (ignore is not None and ignore(rel, True)):
                        continue
                    stack.append((entry.path, rel + "/"))
                    continue
                if ignore is not None and ignore(rel, False):
                    continue
                st = entry.stat(follow_symlinks=False)
                if stat_mod.S_ISREG(st.st_mode):
                    files.append(_File(rel, entry.path, st))
                elif stat_mod.S_ISLNK(st.st_mode):
                    links[rel] = os.readlink(entry.path)
    return files, links


def listing_stamp(files: list[_File], links: dict[str, str]) -> str:
    """A digest of a directory's listing: every file's (path, inode, mtime_ns, size, exec bit)
    and every symlink's (path, target). Equal stamps mean the hash index would answer for
    every file, so the tree is the one recorded with the stamp (:meth:`HashIndex.put_snapshot`).
    """
    rows = [
        f"{f.rel}\0{f.st.st_ino}:{f.st.st_mtime_ns}:{f.st.st_size}:{f.st.st_mode & 0o100}\0"
        for f in files
    ]
    rows.extend(f"{rel}\0L:{target}\0" for rel, target in links.items())
    rows.sort()
    return hashlib.blake2b(
        "".join(rows).encode("utf-8", "surrogateescape"), digest_size=24
    ).hexdigest()


def _mode(st: os.stat_result) -> int:
    return MODE_EXEC if st.st_mode & 0o100 else MODE_FILE


def _hash_and_store(
    f: _File,
    algo: str,
    cache: Cache | None,
    writer: ObjectWriter | None,
    linked: list[tuple[str, os.stat_result, str]] | None = None,
) -> tuple[str, os.stat_result]:
    """Hash one file (and store it); return (digest, fstat taken before reading).

    A file stored by hardlink *is* the object: ``(object path, stat, digest)`` is appended to
    ``linked`` (the object's content was just hashed, under the same inode, mtime and size).
    """
    for _ in range(_RETRIES):
        fd = os.open(f.abspath, _OPEN_FLAGS)
        try:
            st = os.fstat(fd)
            if not stat_mod.S_ISREG(st.st_mode):
                raise InvalidArgumentError(f"{f.abspath}: no longer a regular file")
            data: bytes | None = None
            if st.st_size < LARGE_FILE:
                data = os.read(fd, st.st_size + 1)
                if len(data) != st.st_size:
                    continue  # it changed while we read it
                h = new_hasher(algo)
                h.update(data)
                digest = f"{algo}:{h.hexdigest()}"
        finally:
            os.close(fd)
        if data is None:
            digest = hash_file(f.abspath, algo)
        if cache is None or writer is None:
            return digest, st
        try:
            how = cache.store(writer, digest, f.abspath, st, data)
        except SourceChangedError:
            continue
        if how == "hardlink" and linked is not None:
            linked.append((cache.path_str(digest), st, digest))
        return digest, st
    raise InvalidArgumentError(f"{f.abspath}: the file keeps changing while being added")


class _Hashed(NamedTuple):
    """What hashing (and storing) a listing's files produced."""

    digests: dict[str, str]  # abspath -> digest
    stats: dict[str, os.stat_result]  # abspath -> fstat taken before it was read
    todo: list[_File]  # the files the index could not answer for (hashed now)
    linked: list[tuple[str, os.stat_result, str]]  # objects that are hardlinks of files


def build(
    path: str | os.PathLike[str],
    cache: Cache | None,
    index: HashIndex | None = None,
    *,
    algo: str = DEFAULT_ALGO,
    store: bool = True,
    jobs: int | None = None,
    ignore: Ignore | None = None,
    progress: bool = False,
    need_tree: bool = True,
    listing: Listing | None = None,
) -> BuildResult:
    """Hash ``path`` (a file or a directory) and, with ``store``, add it to ``cache``.

    ``index`` (default: the cache's) skips files that did not change since they were last
    hashed. ``store=False`` only computes digests (a status check: nothing is written except
    index entries). ``ignore(rel_path, is_dir)`` leaves paths out of a directory's tree.
    Returns ``(digest, tree, size, count)``.

    Directory snapshots: with an index, a directory whose listing (see :func:`listing_stamp`)
    is the one recorded at its last build is not looked up file by file. With
    ``store=False, need_tree=False`` such a directory returns its recorded digest with
    ``tree=None`` (check ``is_tree(result.digest)``): a no-op status costs one ``lstat`` per
    file. Snapshots are recorded only when no file is racily clean (see
    :data:`~mltrail.objects.index.RACY_NS`).

    ``listing``: what :func:`scan` returned for ``path`` (it is not walked again); the
    listing is checked before anything is hashed or stored either way.

    The steps: scan, the snapshot lookup (:func:`_recorded_snapshot`), the files
    (:func:`_hash_files`), the tree (:func:`_tree_result`), then the index
    (:func:`_record_hashes`, :func:`_record_snapshot`).

    Raises:
        NotFoundError: ``path`` does not exist.
        UnsafePathError: a symlink in the directory points outside it, or a name can't be
            stored safely in a manifest (backslash, ...); nothing was stored.
    """
    if index is None and cache is not None:
        index = cache.index
    if store and cache is None:
        raise InvalidArgumentError("cache: required when store=True")
    into = cache if store else None
    started_ns = time.time_ns()
    if listing is None:
        listing = scan(path, cache, ignore=ignore)
    stamp, recorded = _recorded_snapshot(index, listing, algo)
    if recorded is not None and not store and not need_tree:
        return recorded
    hashed = _hash_files(listing.files, algo, index, into, jobs=jobs, progress=progress)
    if stat_mod.S_ISREG(listing.top.st_mode):
        result = BuildResult(hashed.digests[listing.root], None, listing.top.st_size, 1)
    else:
        result = _tree_result(listing, hashed, algo, into)
    if index is not None and hashed.todo:
        _record_hashes(index, hashed, started_ns)
    if index is not None and stamp is not None and recorded is None:
        _record_snapshot(index, listing, hashed, stamp, result, algo, started_ns)
    return result


def _record_hashes(index: HashIndex, hashed: _Hashed, started_ns: int) -> None:
    """Record the files just hashed, and the objects that are hardlinks of them: checkout
    finds those verified (same inode, mtime and size as what was hashed) instead of hashing
    them again."""
    digests, stats = hashed.digests, hashed.stats
    index.put_many(
        itertools.chain(
            ((f.abspath, stats[f.abspath], digests[f.abspath]) for f in hashed.todo),
            hashed.linked,
        ),
        hashed_at_ns=started_ns,
    )


# -- the snapshot step -----------------------------------------------------------------------


def _recorded_snapshot(
    index: HashIndex | None, listing: Listing, algo: str
) -> tuple[str | None, BuildResult | None]:
    """``(stamp, recorded)`` for a directory: its listing stamp and, if the index recorded a
    tree for that very stamp, that tree's digest, size and count (``tree=None``); ``(None,
    None)`` for a file or without an index."""
    if index is None or not stat_mod.S_ISDIR(listing.top.st_mode):
        return None, None
    stamp = listing_stamp(listing.files, listing.links)
    snapshot = index.get_snapshot(listing.root, algo)
    if snapshot is None or snapshot[0] != stamp:
        return stamp, None
    return stamp, BuildResult(snapshot[1], None, snapshot[2], snapshot[3])


def _record_snapshot(
    index: HashIndex,
    listing: Listing,
    hashed: _Hashed,
    stamp: str,
    result: BuildResult,
    algo: str,
    started_ns: int,
) -> None:
    """Record the directory's stamp with its tree, unless a file is racily clean or changed
    between the listing and its hashing."""
    limit = started_ns - RACY_NS
    stats = hashed.stats
    if all(
        f.st.st_mtime_ns < limit
        and (s := stats[f.abspath]).st_ino == f.st.st_ino
        and s.st_mtime_ns == f.st.st_mtime_ns
        and s.st_size == f.st.st_size
        and (s.st_mode & 0o100) == (f.st.st_mode & 0o100)
        for f in listing.files
    ):
        index.put_snapshot(listing.root, algo, stamp, result.digest, result.size, result.count)


# -- the file step ---------------------------------------------------------------------------


def _hash_files(
    files: list[_File],
    algo: str,
    index: HashIndex | None,
    into: Cache | None,
    *,
    jobs: int | None,
    progress: bool,
) -> _Hashed:
    """Digest every file: the index answers for the unchanged ones, the rest are hashed
    (and, with ``into``, stored through one writer: one durable commit, or nothing on an
    error)."""
    known = index.get_many(((f.abspath, f.st) for f in files), algo) if index else {}
    hashed = _Hashed({}, {}, [], [])
    digests, stats, todo = hashed.digests, hashed.stats, hashed.todo
    for f in files:
        d = known.get(f.abspath)
        if d is None:
            todo.append(f)
        else:
            digests[f.abspath] = d
            stats[f.abspath] = f.st
    writer = into.writer() if into is not None else None
    try:
        if writer is not None and into is not None and hashed.digests:
            _restore_missing(into, writer, files, hashed)
        if hashed.todo:
            _hash_todo(hashed, algo, into, writer, jobs=jobs, progress=progress)
        if writer is not None:
            writer.commit()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    return hashed


def _restore_missing(
    cache: Cache, writer: ObjectWriter, files: list[_File], hashed: _Hashed
) -> None:
    """Unchanged files whose object is missing (a cleaned cache) are stored again."""
    present = cache.exists_many(set(hashed.digests.values()))
    for f in files:
        d = hashed.digests.get(f.abspath)
        if d is not None and d not in present and not writer.pending(d):
            hashed.todo.append(f)
            del hashed.digests[f.abspath]


def _hash_todo(
    hashed: _Hashed,
    algo: str,
    cache: Cache | None,
    writer: ObjectWriter | None,
    *,
    jobs: int | None,
    progress: bool,
) -> None:
    """Hash (and store) ``hashed.todo`` in chunks, on threads only for large files."""
    todo = hashed.todo
    # Threads only pay off for large files: for small ones the GIL and the syscalls
    # interleave so badly that two threads are slower than one (measured).
    avg = sum(f.st.st_size for f in todo) // len(todo)
    n_jobs = jobs or (1 if avg < _PARALLEL_AVG else min(4, os.cpu_count() or 1))
    chunks = [todo[i : i + _CHUNK_FILES] for i in range(0, len(todo), _CHUNK_FILES)]
    with Bar(f"hashing {len(todo)} files", len(todo), enabled=progress) as bar:

        def work(chunk: list[_File]) -> list[tuple[str, str, os.stat_result]]:
            out = []
            for f in chunk:
                d, st = _hash_and_store(f, algo, cache, writer, hashed.linked)
                out.append((f.abspath, d, st))
            bar.advance(len(chunk))
            return out

        if n_jobs <= 1 or len(chunks) <= 1:
            results = [work(c) for c in chunks]
        else:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(n_jobs) as pool:
                results = list(pool.map(work, chunks))
    for chunk_result in results:
        for abspath, d, st in chunk_result:
            hashed.digests[abspath] = d
            hashed.stats[abspath] = st


# -- the tree step ---------------------------------------------------------------------------


def _tree_result(listing: Listing, hashed: _Hashed, algo: str, into: Cache | None) -> BuildResult:
    """The directory's tree (its files' digests and modes, its symlinks' targets); stored
    into ``into`` unless it is there already."""
    digests, stats = hashed.digests, hashed.stats
    entries = [
        TreeEntry(f.rel, digests[f.abspath], stats[f.abspath].st_size, _mode(stats[f.abspath]))
        for f in listing.files
    ]
    for rel, target in listing.links.items():
        raw = os.fsencode(target)
        entries.append(TreeEntry(rel, hash_bytes(raw, algo), len(raw), MODE_LINK, target))
    tree = Tree(entries, algo=algo, check=False)  # scan() checked every path and link
    if into is not None and not into.exists(tree.digest):
        into.add_tree(tree)
    return BuildResult(tree.digest, tree, tree.size, len(tree))
