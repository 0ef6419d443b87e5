"""What the workspace verbs share: the cache, hashing the workspace, selecting pointers.

Used by :mod:`mltrail.data.ops` (add, checkout), :mod:`mltrail.data.status`,
:mod:`mltrail.data.remotes`, :mod:`mltrail.data.verify` and :mod:`mltrail.data.diff`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mltrail.data.pointer import POINTER_SUFFIX

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from mltrail.data.repo import DataRepo
    from mltrail.objects.cache import Cache
    from mltrail.objects.tree import Tree

__all__ = [
    "DVC_INDEX_FILE",
    "cache_missing",
    "hash_workspace",
    "open_cache",
    "select_paths",
    "wanted",
]

DVC_INDEX_FILE = "dvc-index.db"


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


def select_paths(repo: DataRepo, paths: Sequence[Path | str] | None) -> set[str] | None:
    if not paths:
        return None
    out = set()
    for p in paths:
        rel = repo.rel(p)
        out.add(rel[: -len(POINTER_SUFFIX)] if rel.endswith(POINTER_SUFFIX) else rel)
    return out


def wanted(data_path: str, selected: set[str] | None) -> bool:
    return selected is None or any(
        data_path == s or data_path.startswith(s + "/") for s in selected
    )


def cache_missing(
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
