"""The workspace verbs: add, status, checkout (used by ``mltrail data``).

Moving data to and from remotes, and gc, are in :mod:`mltrail.data.remotes`.

Everything content-addressed goes through :mod:`mltrail.objects` (hashing, trees, the cache,
checkout, transfers, gc); this module decides *what* to hash, move or keep from the pointer
files of the repository.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from mltrail.data._edge import locked, os_errors
from mltrail.data.pointer import POINTER_SUFFIX, Pointer, write_pointer
from mltrail.errors import InvalidArgumentError, MltrailError, NotFoundError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mltrail.data.dvc import DvcOut
    from mltrail.data.repo import DataRepo, PointerEntry
    from mltrail.objects.cache import Cache
    from mltrail.objects.index import HashIndex
    from mltrail.objects.tree import Tree

__all__ = [
    "AddResult",
    "CheckoutResult",
    "PointerStatus",
    "StatusReport",
    "add",
    "checkout",
    "hash_workspace",
    "open_cache",
    "status",
]

DVC_INDEX_FILE = "dvc-index.db"


# -- the cache and the index --------------------------------------------------------------


def open_cache(repo: DataRepo) -> Cache:
    """The repository's cache (``.mltrail/cache``, with its hash index), created with
    ``.mltrail/.gitignore``; close it when done."""
    from mltrail.objects.cache import Cache

    repo.ensure_meta()
    return Cache(repo.cache_dir)


def hash_workspace(repo: DataRepo, path: Path, cache: Cache) -> tuple[str, Tree | None, int]:
    """The digest of the file or directory ``path`` as it is now, storing nothing (the hash
    index answers for unchanged files).

    Returns:
        ``(digest, tree or None for a file, size)``.
    """
    from mltrail.objects.build import build

    digest, tree, size, _count = build(path, cache, store=False)
    return digest, tree, size


# -- add --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AddResult:
    """One path added: its pointer, whether the pointer changed, the .gitignore files touched."""

    data_path: str
    pointer_file: str
    pointer: Pointer
    changed: bool
    gitignores: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-able."""
        return {
            "path": self.data_path,
            "pointer_file": self.pointer_file,
            **{k: v for k, v in self.pointer.to_dict().items() if k != "path"},
            "changed": self.changed,
            "gitignore": list(self.gitignores),
        }


def _gitignore_escape(name: str) -> str:
    out = "".join("\\" + c if c in "*?[]\\" else c for c in name)
    if out[:1] in ("#", "!"):
        out = "\\" + out
    if out.endswith(" "):
        out = out[:-1] + "\\ "
    return out


def _ensure_gitignored(repo: DataRepo, data_rel: str) -> str | None:
    """Add ``/name`` to the ``.gitignore`` next to the data; the file's rel path if changed."""
    rel = PurePosixPath(data_rel)
    ignore = repo.abspath(str(rel.parent / ".gitignore"))
    line = "/" + _gitignore_escape(rel.name)
    try:
        text = ignore.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    if line in text.splitlines():
        return None
    sep = "" if not text or text.endswith("\n") else "\n"
    with open(ignore, "a", encoding="utf-8") as fh:
        fh.write(f"{sep}{line}\n")
    return str(rel.parent / ".gitignore")


def _check_addable(repo: DataRepo, rel: str, tracked: list[PointerEntry]) -> None:
    from mltrail.data.repo import git_bytes

    if rel.endswith(POINTER_SUFFIX):
        raise InvalidArgumentError(f"{rel}: is a pointer file; add the data it names")
    for entry in tracked:
        other = entry.data_path
        if other != rel and (rel.startswith(other + "/") or other.startswith(rel + "/")):
            raise InvalidArgumentError(
                f"{rel}: overlaps {other}, tracked by {entry.pointer_file}; track one or the other"
            )
    in_git = git_bytes(repo.root, "ls-files", "-z", "--", rel)
    if in_git:
        first = os.fsdecode(in_git.split(b"\0")[0])
        raise InvalidArgumentError(
            f"{rel}: already tracked by git ({first}); stop tracking it first with "
            f"`git rm -r --cached {rel}`"
        )


@os_errors("data add")
def add(repo: DataRepo, paths: Sequence[Path | str], *, progress: bool = True) -> list[AddResult]:
    """Hash ``paths`` into the cache; write their pointer files and .gitignore entries.

    Re-adding unchanged data is a no-op: the hash index answers for unchanged files and the
    pointer file is not rewritten. Every path is checked (and every directory walked and its
    names and symlinks checked) before anything is written: a refused add leaves the
    workspace, the cache and the pointer files as they were. The cache lock is held shared
    from the first object stored to the last pointer written, so a concurrent gc cannot
    collect what this add stores.

    Raises:
        NotFoundError: a path does not exist.
        InvalidArgumentError: a path is tracked by git, overlaps tracked data, or is a pointer.
        UnsafePathError: a path outside the repository, or a symlink in a directory that
            points outside it.
        StoreError: the disk is full, or another I/O error (the message names the path).
    """
    from mltrail.data.progress import progress_enabled
    from mltrail.objects.build import build, scan

    if not paths:
        raise InvalidArgumentError("paths: give at least one file or directory to add")
    rels = []
    for p in paths:
        rel = repo.rel(p)
        if not repo.abspath(rel).exists():
            raise NotFoundError(f"{p}: no such file or directory")
        rels.append(rel)
    tracked = repo.pointers(errors=[])  # a broken pointer elsewhere does not block an add
    for rel in rels:
        _check_addable(repo, rel, tracked)
    listings = [scan(_addable_target(repo, rel), None) for rel in rels]
    results: list[AddResult] = []
    with open_cache(repo) as cache, locked(cache):
        for rel, listing in zip(rels, listings, strict=True):
            target = repo.abspath(rel)
            digest, tree, size, count = build(
                target, cache, progress=progress_enabled(progress), listing=listing
            )
            if tree is not None:
                # build stored every object; one listdir per shard records the tree as
                # complete, so the next status need not check its objects one by one
                cache.check_complete(digest, tree.digests())
            kind = "file" if tree is None else "tree"
            pointer_rel = rel + POINTER_SUFFIX
            pointer = Pointer(PurePosixPath(rel).name, kind, digest, size, count)
            changed = write_pointer(repo.abspath(pointer_rel), pointer)
            ignored = _ensure_gitignored(repo, rel)
            results.append(
                AddResult(rel, pointer_rel, pointer, changed, (ignored,) if ignored else ())
            )
    return results


def _addable_target(repo: DataRepo, rel: str) -> Path:
    """The data to hash for ``rel``: a symlink is followed only if it stays in the repository
    (else its target's files would be hardlinked into the cache and made read-only)."""
    from mltrail.errors import UnsafePathError

    target = repo.abspath(rel)
    if target.is_symlink():
        root = os.path.realpath(repo.root)
        real = os.path.realpath(target)
        if os.path.commonpath([root, real]) != root or real.startswith(
            os.path.join(root, ".mltrail") + os.sep
        ):
            raise UnsafePathError(
                f"{rel}: a symlink to {real}, outside the repository; add the data itself"
            )
    return target


# -- status -----------------------------------------------------------------------------


@dataclass(slots=True)
class PointerStatus:
    """The state of one tracked path.

    Attributes:
        data_path: The data's path relative to the git root.
        pointer_file: The pointer (``.mltrail``, ``.dvc`` or ``dvc.lock``).
        source: ``mltrail``, ``dvc`` or ``dvc.lock``.
        state: ``unchanged``, ``modified``, ``missing`` (no data in the workspace),
            ``not_in_cache`` (the workspace does not match and the recorded data cannot be
            checked out from the cache), or ``error``.
        digest: What the pointer records.
        workspace_digest: What the workspace holds now (None if missing).
        in_cache: The recorded data is complete in the cache (None: not checked, DVC).
        changes: For directories: ``added``/``removed``/``modified`` paths inside.
        detail: A note (what is missing from the cache, an error).
    """

    data_path: str
    pointer_file: str
    source: str
    state: str
    digest: str
    workspace_digest: str | None = None
    in_cache: bool | None = None
    changes: dict[str, list[str]] | None = None
    detail: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able."""
        return {
            "path": self.data_path,
            "pointer_file": self.pointer_file,
            "source": self.source,
            "state": self.state,
            "digest": self.digest,
            "workspace_digest": self.workspace_digest,
            "in_cache": self.in_cache,
            "changes": self.changes,
            "detail": self.detail,
        }


@dataclass(slots=True)
class StatusReport:
    """Every tracked path's state, and the pointer files that could not be read."""

    entries: list[PointerStatus] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """Everything is unchanged and nothing failed."""
        return not self.errors and all(e.state == "unchanged" for e in self.entries)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able."""
        return {
            "clean": self.clean,
            "entries": [e.to_dict() for e in self.entries],
            "errors": self.errors,
        }


def _selected(repo: DataRepo, paths: Sequence[Path | str] | None) -> set[str] | None:
    if not paths:
        return None
    out = set()
    for p in paths:
        rel = repo.rel(p)
        out.add(rel[: -len(POINTER_SUFFIX)] if rel.endswith(POINTER_SUFFIX) else rel)
    return out


def _wanted(data_path: str, selected: set[str] | None) -> bool:
    return selected is None or any(
        data_path == s or data_path.startswith(s + "/") for s in selected
    )


def _cache_missing(
    cache: Cache, digest: str, tree: Tree | None = None
) -> tuple[Tree | None, list[str]]:
    """The tree (if ``digest`` is one and is cached) and the object digests not cached.

    ``tree``: the tree ``digest`` names when the caller holds it already (built from the
    workspace, so its digest is the pointer's): the manifest is not read back then.
    """
    from mltrail.objects.digest import is_tree

    if not is_tree(digest):
        return None, [] if cache.exists(digest) else [digest]
    if not cache.exists(digest):
        return None, [digest]
    if tree is None:
        tree = cache.read_tree(digest)
    # records the tree as complete when nothing is missing: the next status is cheap
    return tree, cache.check_complete(digest, tree.digests())


def _status_one(repo: DataRepo, entry: PointerEntry, cache: Cache) -> PointerStatus:
    from mltrail.objects.digest import is_tree

    p = entry.pointer
    st = PointerStatus(entry.data_path, entry.pointer_file, "mltrail", "unchanged", p.digest)
    target = repo.abspath(entry.data_path)
    present = target.exists() or target.is_symlink()
    ws_digest, ws_tree = None, None
    if present:
        from mltrail.objects.build import build

        # need_tree=False: an unchanged directory answers from its snapshot (no Tree built)
        ws_digest, ws_tree, _size, _n = build(target, cache, store=False, need_tree=False)
        if ws_digest != p.digest and ws_tree is None and is_tree(ws_digest):
            ws_digest, ws_tree, _size = hash_workspace(repo, target, cache)  # for the diff
        st.workspace_digest = ws_digest
    tree: Tree | None = None
    missing: list[str]
    try:
        if ws_digest == p.digest and is_tree(p.digest) and cache.is_complete(p.digest):
            missing = []  # every object was there and no object was removed since
        elif ws_digest == p.digest and ws_tree is not None:
            # unchanged: the workspace tree *is* the recorded one (same digest), so its
            # entries say which objects to look for without reading the manifest back
            _, missing = _cache_missing(cache, p.digest, ws_tree)
        else:
            tree, missing = _cache_missing(cache, p.digest)
    except MltrailError as exc:
        missing = [p.digest]
        st.detail = f"cache: {exc}"
    st.in_cache = not missing
    if missing and st.detail is None:
        st.detail = f"{len(missing)} object(s) not in the cache (run `mltrail data pull`)"
    if not present:
        st.state = "missing" if st.in_cache else "not_in_cache"
        return st
    if ws_digest == p.digest:
        return st
    st.state = "modified"
    if ws_tree is not None and tree is not None:
        d = tree.diff(ws_tree)
        st.changes = {"added": d.added, "removed": d.removed, "modified": d.modified}
    elif (ws_tree is None) != (p.kind == "file"):
        st.detail = f"was a {p.kind}, now a {'file' if ws_tree is None else 'directory'}"
    return st


def _dvc_status(repo: DataRepo, out: DvcOut, index: HashIndex) -> PointerStatus:
    from mltrail.data import dvc

    st = PointerStatus(
        out.path, out.source, "dvc.lock" if out.stage else "dvc", "unchanged", out.digest
    )
    target = repo.abspath(out.path)
    cached = dvc.dvc_cache_path(repo.root, out.md5) is not None
    st.in_cache = cached
    if not target.exists():
        st.state = "missing" if cached else "not_in_cache"
        return st
    if out.is_dir:
        if not target.is_dir():
            st.state, st.detail = "modified", "was a directory, now a file"
            return st
        now = _md5_dir(repo, target, out.legacy, index)
        digest = "md5:" + dvc.dir_digest(now)
        st.workspace_digest = digest
        if digest != out.digest:
            st.state = "modified"
            before = dvc.read_dir_manifest(repo.root, out.md5)
            if before is not None:
                st.changes = {
                    "added": sorted(now.keys() - before.keys()),
                    "removed": sorted(before.keys() - now.keys()),
                    "modified": sorted(
                        k for k in now.keys() & before.keys() if now[k] != before[k]
                    ),
                }
        return st
    if not target.is_file():
        st.state, st.detail = "modified", "was a file, now a directory"
        return st
    digest = "md5:" + _md5_cached(repo, target, out.legacy, index)
    st.workspace_digest = digest
    if digest != out.digest:
        st.state = "modified"
    return st


def _md5_cached(repo: DataRepo, path: Path, legacy: bool, index: HashIndex) -> str:
    import time

    from mltrail.data.dvc import md5_file

    key = ("legacy:" if legacy else "") + str(path)
    st = path.stat()
    got = index.get(key, st, "md5")
    if got is not None:
        return got.partition(":")[2]
    started = time.time_ns()
    hexd = md5_file(path, legacy)
    index.put_many([(key, st, "md5:" + hexd)], hashed_at_ns=started)
    return hexd


def _md5_dir(repo: DataRepo, root: Path, legacy: bool, index: HashIndex) -> dict[str, str]:
    import time

    from mltrail.data.dvc import md5_file

    files: list[tuple[str, Path, os.stat_result]] = []
    for folder, dirs, names in os.walk(root):
        dirs.sort()
        for name in names:
            full = Path(folder) / name
            files.append((full.relative_to(root).as_posix(), full, full.stat()))
    keys = [(("legacy:" if legacy else "") + str(full), st) for _, full, st in files]
    known = index.get_many(keys, "md5")
    out: dict[str, str] = {}
    fresh: list[tuple[str, os.stat_result, str]] = []
    started = time.time_ns()
    for (rel, full, st), (key, _) in zip(files, keys, strict=True):
        got = known.get(key)
        if got is None:
            hexd = md5_file(full, legacy)
            fresh.append((key, st, "md5:" + hexd))
        else:
            hexd = got.partition(":")[2]
        out[rel] = hexd
    if fresh:
        index.put_many(fresh, hashed_at_ns=started)
    return out


@os_errors("data status")
def status(
    repo: DataRepo, paths: Sequence[Path | str] | None = None, *, dvc: bool = True
) -> StatusReport:
    """The state of every tracked path (or those under ``paths``) against its pointer."""
    from mltrail.objects.index import HashIndex

    report = StatusReport()
    selected = _selected(repo, paths)
    listed = repo.pointer_files()  # one git call for our pointers and DVC's files
    entries = [
        e
        for e in repo.pointers(errors=report.errors, files=listed)
        if _wanted(e.data_path, selected)
    ]
    if entries:
        with open_cache(repo) as cache:
            for entry in entries:
                try:
                    report.entries.append(_status_one(repo, entry, cache))
                except MltrailError as exc:
                    report.entries.append(
                        PointerStatus(
                            entry.data_path,
                            entry.pointer_file,
                            "mltrail",
                            "error",
                            entry.pointer.digest,
                            detail=str(exc),
                        )
                    )
    if dvc:
        outs = [
            o
            for o in repo.dvc_outs(errors=report.errors, files=listed)
            if _wanted(o.path, selected)
        ]
        if outs:
            with HashIndex(repo.meta_dir / DVC_INDEX_FILE) as dindex:
                for out in outs:
                    try:
                        report.entries.append(_dvc_status(repo, out, dindex))
                    except (MltrailError, OSError) as exc:
                        report.entries.append(
                            PointerStatus(
                                out.path, out.source, "dvc", "error", out.digest, detail=str(exc)
                            )
                        )
    report.entries.sort(key=lambda e: e.data_path)
    return report


# -- checkout ---------------------------------------------------------------------------


@dataclass(slots=True)
class CheckoutResult:
    """Paths written to match their pointers, and those already matching."""

    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able."""
        return {"updated": self.updated, "unchanged": self.unchanged}


def _entries(repo: DataRepo, paths: Sequence[Path | str] | None) -> list[PointerEntry]:
    selected = _selected(repo, paths)
    entries = [e for e in repo.pointers() if _wanted(e.data_path, selected)]
    if selected is not None:
        for s in selected:
            if not any(_wanted(e.data_path, {s}) or e.data_path.startswith(s) for e in entries):
                raise NotFoundError(f"{s}: no pointer file ({s}{POINTER_SUFFIX}) tracks it")
    return entries


@os_errors("data checkout")
def checkout(
    repo: DataRepo,
    paths: Sequence[Path | str] | None = None,
    *,
    force: bool = False,
    progress: bool = True,
) -> CheckoutResult:
    """Make the workspace match the pointers, from the cache, hashing every object first.

    Refuses to overwrite data modified in the workspace unless ``force`` (the changes would
    be lost): the error names the paths. Objects are verified by content on every checkout
    (bit rot keeps size and mtime), so corrupt bytes are never placed in the workspace.

    Raises:
        CorruptObjectError: a cached object does not match its digest (names it).
        UnsafePathError: a manifest with unsafe entries (nothing is written).
        NotFoundError: an object is not in the cache (run ``pull``).
        InvalidArgumentError: modified data and no ``force``.
        StoreError: the disk is full, or another I/O error (the message names the path).
    """
    entries = _entries(repo, paths)
    with open_cache(repo) as cache, locked(cache):
        return checkout_locked(repo, cache, entries, force=force, progress=progress)


def checkout_locked(
    repo: DataRepo,
    cache: Cache,
    entries: list[PointerEntry],
    *,
    force: bool = False,
    progress: bool = True,
) -> CheckoutResult:
    """:func:`checkout` of ``entries`` with ``cache`` open and its lock held (``pull``)."""
    from mltrail.data.progress import progress_enabled
    from mltrail.objects.checkout import checkout as materialise

    result = CheckoutResult()
    todo: list[PointerEntry] = []
    dirty: list[str] = []
    for entry in entries:
        target = _safe_target(repo, entry.data_path)
        if target.exists():
            digest, tree, _size = hash_workspace(repo, target, cache)
            if digest == entry.pointer.digest:
                result.unchanged.append(entry.data_path)
                continue
            if not force and _has_unsaved(cache, digest, tree):
                dirty.append(entry.data_path)
        todo.append(entry)
    if dirty:
        raise InvalidArgumentError(
            "modified in the workspace (use --force to discard, or `mltrail data add` to "
            f"keep the changes): {', '.join(dirty)}"
        )
    for entry in todo:
        target = _safe_target(repo, entry.data_path)
        digest = entry.pointer.digest
        missing = [] if cache.is_complete(digest) else _cache_missing(cache, digest)[1]
        if missing:
            raise NotFoundError(
                f"{entry.data_path}: {len(missing)} object(s) not in the cache, e.g. "
                f"{missing[0]} (run `mltrail data pull`)"
            )
        if target.is_dir() != entry.pointer.digest.endswith(".tree") and target.exists():
            _remove(target)  # a file became a directory or the reverse
        target.parent.mkdir(parents=True, exist_ok=True)
        materialise(
            entry.pointer.digest,
            cache,
            target,
            remove_extra=True,
            progress=progress_enabled(progress),
        )
        result.updated.append(entry.data_path)
    return result


def _safe_target(repo: DataRepo, data_path: str) -> Path:
    """The data's absolute path, refusing one that resolves outside the repository (a
    symlinked folder or the data path itself a symlink): nothing is written outside."""
    from mltrail.errors import UnsafePathError

    target = repo.abspath(data_path)
    root = os.path.realpath(repo.root)
    parent = os.path.realpath(target.parent)
    if os.path.commonpath([root, parent]) != root or target.is_symlink():
        raise UnsafePathError(
            f"{data_path}: resolves outside the repository or is a symlink; refusing to write"
        )
    return target


def _remove(target: Path) -> None:
    import shutil

    if target.is_dir():
        for folder, _dirs, _files in os.walk(target):
            os.chmod(folder, 0o755)
        shutil.rmtree(target)
    else:
        target.unlink()


def _has_unsaved(cache: Cache, digest: str, tree: Tree | None) -> bool:
    """Whether checking out over the workspace data (``digest``, ``tree`` for a directory)
    would lose content: a file whose bytes are not in the cache (deleted files lose nothing)."""
    if tree is None:
        return not cache.exists(digest)
    wanted = tree.digests()
    return bool(wanted - cache.exists_many(wanted))
