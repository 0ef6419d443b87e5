"""The workspace verbs that write: add and checkout (used by ``mltrail data``).

Status is in :mod:`mltrail.data.status`; moving data to and from remotes, and gc, in
:mod:`mltrail.data.remotes`; what they share in :mod:`mltrail.data.workspace`.

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
from mltrail.data.workspace import cache_missing, hash_workspace, open_cache, select_paths, wanted
from mltrail.errors import InvalidArgumentError, NotFoundError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mltrail.data.repo import DataRepo, PointerEntry
    from mltrail.objects.cache import Cache
    from mltrail.objects.tree import Tree

__all__ = ["AddResult", "CheckoutResult", "add", "checkout", "checkout_locked"]


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
    selected = select_paths(repo, paths)
    entries = [e for e in repo.pointers() if wanted(e.data_path, selected)]
    if selected is not None:
        for s in selected:
            if not any(wanted(e.data_path, {s}) or e.data_path.startswith(s) for e in entries):
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
        missing = [] if cache.is_complete(digest) else cache_missing(cache, digest)[1]
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
