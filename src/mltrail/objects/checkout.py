"""Checkout: materialise a file or a tree from the cache into a target directory.

Everything that can be refused is refused before the first byte is written:

1. the manifest is read, verified against its digest and parsed as untrusted input
   (absolute paths, ``..``, backslashes, NUL, duplicates, links out: ``UnsafePathError``);
2. every object it needs is present (``NotFoundError`` listing the missing ones);
3. the destination is inspected: an existing component on the way to an entry that is a
   symlink, or a file where the tree needs a directory, is refused, and so is a symlink entry
   whose target would go through a symlink already in the destination;
4. every object about to be written hashes to its digest (``CorruptObjectError`` naming it).
   Hashed on every checkout: bit rot keeps a file's size, mtime and inode, so the hash index
   cannot vouch for the cache's own objects. Entries already in place (the destination *is*
   the object, or a file the index knows holds that digest) are not written, so their
   objects are not read.

Writing then happens through directory file descriptors opened with ``O_NOFOLLOW``
(``mkdirat``/``linkat``/``renameat``), so even a symlink planted during the checkout cannot
redirect a write outside the target. Files are replaced atomically (temp name + rename);
files already identical (same inode as the object, or the same digest per the index) are
left alone.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat as stat_mod
import time
from typing import TYPE_CHECKING, NamedTuple

from mltrail.errors import CorruptObjectError, InvalidArgumentError, NotFoundError, UnsafePathError
from mltrail.objects._fs import LINK_ERRNOS, temp_name
from mltrail.objects._progress import Bar
from mltrail.objects.digest import LARGE_FILE, is_tree, new_hasher
from mltrail.objects.paths import resolve_link

if TYPE_CHECKING:
    from mltrail.objects.cache import Cache
    from mltrail.objects.index import HashIndex
    from mltrail.objects.tree import Tree, TreeEntry

__all__ = ["CheckoutResult", "checkout", "verify_objects"]

_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)
_DIR_FLAGS |= getattr(os, "O_CLOEXEC", 0)


class CheckoutResult(NamedTuple):
    """How many entries were written, already up to date, and removed (``remove_extra``)."""

    written: int
    unchanged: int
    removed: int


def verify_objects(
    cache: Cache, digests: set[str], *, progress: Bar | None = None
) -> dict[str, tuple[str, os.stat_result]]:
    """Hash every object in ``digests``; returns ``{digest: (object path, stat)}``.

    Always by content: a cached object can rot (a flipped bit, a bad sector) without its
    size, mtime or inode changing, so no stat-based shortcut can vouch for it. blake3 makes
    this cheap next to writing the files (see bench/bench_objects.py: ``verify_*``).

    Raises:
        NotFoundError: objects missing from the cache (lists them).
        CorruptObjectError: the first object whose content does not match (names it).
    """
    found = _present(cache, digests)
    _verify_found(cache, found, progress)
    return found


def _verify_found(
    cache: Cache, found: dict[str, tuple[str, os.stat_result]], progress: Bar | None
) -> None:
    for i, (d, (p, st)) in enumerate(found.items()):
        if st.st_size < LARGE_FILE and not is_tree(d):
            _verify_small(d, p, st.st_size)  # the tight loop: open, read, hash
        else:
            cache.verify(d)
        if progress is not None and i % 256 == 255:
            progress.advance(256)


def _present(cache: Cache, digests: set[str]) -> dict[str, tuple[str, os.stat_result]]:
    """``{digest: (object path, stat)}``; NotFoundError listing every missing object."""
    found: dict[str, tuple[str, os.stat_result]] = {}
    missing: list[str] = []
    for d in digests:
        p = cache.path_str(d)
        try:
            found[d] = (p, os.stat(p))
        except FileNotFoundError:
            missing.append(d)
    if missing:
        missing.sort()
        shown = ", ".join(missing[:5]) + (
            f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        raise NotFoundError(
            f"{len(missing)} object(s) are not in the cache {cache.url}: {shown} (pull them)"
        )
    return found


def _verify_small(digest: str, path: str, size: int) -> None:
    algo, _, hexd = digest.partition(":")
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        data = os.read(fd, size + 1)
    finally:
        os.close(fd)
    h = new_hasher(algo)
    h.update(data)
    if h.hexdigest() != hexd:
        actual = f"{algo}:{h.hexdigest()}"
        raise CorruptObjectError(
            f"object {digest} at {path} is corrupt: its content hashes to {actual}"
        )


def checkout(
    digest: str,
    cache: Cache,
    dest: str | os.PathLike[str],
    *,
    mode: str | None = None,
    verify: bool = True,
    remove_extra: bool = False,
    index: HashIndex | None = None,
    progress: bool = False,
) -> CheckoutResult:
    """Materialise ``digest`` (a file or a tree) at ``dest``; see the module docstring.

    ``mode`` overrides the cache's link mode (``auto``/``reflink``/``hardlink``/``copy``).
    ``remove_extra`` deletes files under ``dest`` that the tree does not list (a directory
    checked out to an older version loses the files added since). ``index`` (default: the
    cache's) records what was written, so a following status does not hash it.
    """
    if index is None:
        index = cache.index
    if not is_tree(digest):
        return _checkout_file(digest, cache, dest, mode=mode, verify=verify)
    tree = cache.read_tree(digest)
    # presence first: a missing object fails before anything is written
    objects = _present(cache, {e.digest for e in tree if not e.is_link})
    root = os.path.realpath(dest)
    existing = _inspect_destination(tree, root)
    known = index.get_many(
        ((os.path.join(root, p), st) for p, st in existing.items() if stat_mod.S_ISREG(st.st_mode)),
        tree.algo,
    )
    if verify:  # the objects of every entry that will be written (not those already there)
        todo = {
            e.digest: objects[e.digest]
            for e in tree
            if not e.is_link and not _in_place(e, existing.get(e.path), root, known, objects)
        }
        with Bar(f"verifying {len(todo)} objects", len(todo), enabled=progress) as bar:
            _verify_found(cache, todo, bar)
    os.makedirs(root, exist_ok=True)
    writer = _Writer(cache, root, mode, known, objects)
    started = time.time_ns()
    try:
        with Bar(f"checking out {len(tree)} files", len(tree), enabled=progress) as bar:
            for i, entry in enumerate(tree):
                writer.write(entry, existing.get(entry.path))
                if i % 256 == 255:
                    bar.advance(256)
    finally:
        writer.close()
    removed = _remove_extra(tree, root) if remove_extra else 0
    if writer.record:
        index.put_many(writer.record, hashed_at_ns=started)
    return CheckoutResult(writer.written, writer.unchanged, removed)


def _in_place(
    entry: TreeEntry,
    st: os.stat_result | None,
    root: str,
    known: dict[str, str],
    objects: dict[str, tuple[str, os.stat_result]],
) -> bool:
    """Whether the destination already holds ``entry`` (as :meth:`_Writer.write` decides):
    the object itself (a hardlink), or a file the index knows has its digest."""
    if st is None or not stat_mod.S_ISREG(st.st_mode):
        return False
    if bool(st.st_mode & 0o100) != entry.is_exec:
        return False
    obj = objects[entry.digest][1]
    if (st.st_ino, st.st_dev) == (obj.st_ino, obj.st_dev):
        return True
    return known.get(os.path.join(root, entry.path)) == entry.digest


def _checkout_file(
    digest: str, cache: Cache, dest: str | os.PathLike[str], *, mode: str | None, verify: bool
) -> CheckoutResult:
    if verify:
        verify_objects(cache, {digest})
    elif not cache.exists(digest):
        raise NotFoundError(f"object {digest} is not in the cache {cache.url}")
    target = os.path.abspath(dest)
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        st = None
    if st is not None and stat_mod.S_ISDIR(st.st_mode):
        raise InvalidArgumentError(f"dest: {target!r} is a directory; a file is checked out")
    obj = os.stat(cache.path(digest))
    if st is not None and (st.st_ino, st.st_dev) == (obj.st_ino, obj.st_dev):
        return CheckoutResult(0, 1, 0)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    cache.link(digest, target, mode)
    return CheckoutResult(1, 0, 0)


def _inspect_destination(tree: Tree, root: str) -> dict[str, os.stat_result]:
    """lstat what exists of the tree's paths under ``root``; refuse unsafe or conflicting ones."""
    existing: dict[str, os.stat_result] = {}
    if not os.path.lexists(root):
        return existing
    if not os.path.isdir(root):
        raise InvalidArgumentError(f"dest: {root!r} exists and is not a directory")
    dirs: set[str] = set()
    for e in tree:
        parent = e.path.rpartition("/")[0]
        while parent and parent not in dirs:
            dirs.add(parent)
            parent = parent.rpartition("/")[0]
    absent: set[str] = set()
    for d in sorted(dirs):
        parent = d.rpartition("/")[0]
        if parent in absent:
            absent.add(d)
            continue
        try:
            st = os.lstat(os.path.join(root, d))
        except FileNotFoundError:
            absent.add(d)
            continue
        if stat_mod.S_ISLNK(st.st_mode):
            raise UnsafePathError(
                f"dest: {os.path.join(root, d)!r} is a symlink; checkout never follows links "
                "in the destination (remove it first)"
            )
        if not stat_mod.S_ISDIR(st.st_mode):
            raise InvalidArgumentError(
                f"dest: {os.path.join(root, d)!r} is a file where the tree has a directory"
            )
    for e in tree:
        if e.path.rpartition("/")[0] in absent:
            continue
        try:
            st = os.lstat(os.path.join(root, e.path))
        except FileNotFoundError:
            continue
        if stat_mod.S_ISDIR(st.st_mode):
            raise InvalidArgumentError(
                f"dest: {os.path.join(root, e.path)!r} is a directory where the tree has a file"
            )
        existing[e.path] = st
    # A symlink entry must not reach outside through a symlink the destination already has.
    links = {e.path: e.target or "" for e in tree if e.is_link}
    paths = {e.path for e in tree} | dirs
    for path, target in links.items():
        parts = resolve_link(path, target, links)
        for i in range(1, len(parts) + 1):
            prefix = "/".join(parts[:i])
            if prefix in paths:
                continue
            with contextlib.suppress(FileNotFoundError):
                if stat_mod.S_ISLNK(os.lstat(os.path.join(root, prefix)).st_mode):
                    raise UnsafePathError(
                        f"symlink {path!r} -> {target!r} would pass through the existing "
                        f"symlink {os.path.join(root, prefix)!r}"
                    )
    return existing


class _Writer:
    """Writes entries through O_NOFOLLOW directory descriptors (a stack along the path)."""

    def __init__(
        self,
        cache: Cache,
        root: str,
        mode: str | None,
        known: dict[str, str],
        objects: dict[str, tuple[str, os.stat_result]],
    ) -> None:
        self.objects = objects
        self.cache = cache
        self.known = known
        self.root = root
        self.modes = cache.modes(mode)
        self.stack: list[tuple[str, int]] = [("", os.open(root, _DIR_FLAGS))]
        self.written = 0
        self.unchanged = 0
        self.record: list[tuple[str, os.stat_result, str]] = []

    def close(self) -> None:
        for _, fd in self.stack:
            os.close(fd)
        self.stack.clear()

    def _dir_fd(self, directory: str) -> int:
        while self.stack[-1][0] and not (
            directory == self.stack[-1][0] or directory.startswith(self.stack[-1][0] + "/")
        ):
            os.close(self.stack.pop()[1])
        top, fd = self.stack[-1]
        if top == directory:
            return fd
        rest = directory[len(top) + 1 :] if top else directory
        for name in rest.split("/"):
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o777, dir_fd=fd)
            try:
                fd = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise UnsafePathError(
                        f"dest: {os.path.join(self.root, directory)!r}: a component changed into "
                        "a symlink or file during checkout; refusing to follow it"
                    ) from None
                raise
            top = f"{top}/{name}" if top else name
            self.stack.append((top, fd))
        return fd

    def write(self, entry: TreeEntry, st: os.stat_result | None) -> None:
        directory, _, name = entry.path.rpartition("/")
        dfd = self._dir_fd(directory)
        abspath = os.path.join(self.root, entry.path)
        if entry.is_link:
            target = entry.target or ""
            if (
                st is not None
                and stat_mod.S_ISLNK(st.st_mode)
                and os.readlink(name, dir_fd=dfd) == target
            ):
                self.unchanged += 1
                return
            tmp = temp_name(name)
            os.symlink(target, tmp, dir_fd=dfd)
            os.rename(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
            self.written += 1
            return
        src, obj = self.objects[entry.digest]
        want_exec = entry.is_exec
        if st is not None and stat_mod.S_ISREG(st.st_mode):
            same_exec = bool(st.st_mode & 0o100) == want_exec
            if same_exec and (st.st_ino, st.st_dev) == (obj.st_ino, obj.st_dev):
                self.unchanged += 1
                return
            if same_exec and self.known.get(abspath) == entry.digest:
                self.unchanged += 1
                return
        for m in list(self.modes):
            if m == "hardlink" and bool(obj.st_mode & 0o100) != want_exec:
                if not want_exec:
                    continue  # an executable object can't be a plain file: copy it
                os.chmod(src, 0o555)
                obj = os.stat(src)
                self.objects[entry.digest] = (src, obj)
            try:
                new_st = self._materialise(m, src, name, dfd, exists=st is not None, exe=want_exec)
                if new_st is None:
                    new_st = obj  # a hardlink: the object's inode
            except OSError as exc:
                if m == "copy" or exc.errno not in LINK_ERRNOS:
                    raise
                self.cache.mark_unsupported(m, exc)
                if m in self.cache.unsupported:
                    self.modes.remove(m)
                continue
            self.record.append((abspath, new_st, entry.digest))
            self.written += 1
            return
        raise CorruptObjectError(f"no link mode could check out {entry.digest}")  # pragma: no cover

    def _materialise(
        self, m: str, src: str, name: str, dfd: int, *, exists: bool, exe: bool
    ) -> os.stat_result | None:
        if m == "hardlink":
            if not exists:
                try:
                    os.link(src, name, dst_dir_fd=dfd)
                    return None
                except FileExistsError:
                    pass
            tmp = temp_name(name)
            os.link(src, tmp, dst_dir_fd=dfd)
            try:
                os.rename(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp, dir_fd=dfd)  # renaming onto the same inode is a no-op
            return None
        tmp = temp_name(name)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(tmp, flags, 0o755 if exe else 0o644, dir_fd=dfd)
        try:
            try:
                sfd = os.open(src, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    if m == "reflink":
                        import fcntl

                        fcntl.ioctl(fd, 0x40049409, sfd)
                    else:
                        size = os.fstat(sfd).st_size
                        done = 0
                        while done < size:
                            n = os.sendfile(fd, sfd, done, size - done)
                            if n == 0:
                                break
                            done += n
                finally:
                    os.close(sfd)
                new_st = os.fstat(fd)
            finally:
                os.close(fd)
            os.rename(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp, dir_fd=dfd)
            raise
        return new_st


def _remove_extra(tree: Tree, root: str) -> int:
    """Delete files and links under ``root`` that ``tree`` does not list (never following)."""
    keep = {e.path for e in tree}
    removed = 0
    emptied: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, topdown=False, followlinks=False):
        rel_dir = os.path.relpath(dirpath, root)
        rel_dir = "" if rel_dir == "." else rel_dir.replace(os.sep, "/")
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            rel = f"{rel_dir}/{name}" if rel_dir else name
            if rel not in keep:
                os.unlink(os.path.join(dirpath, name))
                removed += 1
                emptied.add(dirpath)
        if rel_dir and (
            dirpath in emptied or any(os.path.join(dirpath, d) in emptied for d in dirnames)
        ):
            with contextlib.suppress(OSError):
                os.rmdir(dirpath)  # only succeeds when empty
                emptied.add(dirpath)
    return removed
