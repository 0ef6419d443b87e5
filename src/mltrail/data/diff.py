"""``mltrail data diff``: what changed in the data between two git revisions or the workspace.

Each side is a set of pointer files: those of a git revision (read with ``git show``, never
checked out) or those of the workspace, where the data itself is hashed (through the hash
index: unchanged files cost a ``stat``). Trees are compared entry by entry, so the answer
names the files added, removed and modified inside a directory. For tables (Parquet, CSV)
whose contents are at hand (in the cache or the workspace), the schema changes, row counts
and column statistics before and after are added (pyarrow, the ``tables`` extra).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from mltrail.data.tables import is_table

if TYPE_CHECKING:
    from mltrail.data.repo import DataRepo
    from mltrail.data.tables import TableDiff, TableStats
    from mltrail.objects.cache import Cache
    from mltrail.objects.tree import Tree

__all__ = ["DataDiff", "FileDelta", "Side", "diff_data"]

WORKSPACE = None


@dataclass(slots=True)
class Side:
    """One side of a diff: the digest of each data file by path (trees expanded), and where
    the bytes of each can be read (the cache or the workspace)."""

    label: str
    files: dict[str, str] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    local: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class FileDelta:
    """One data file that differs: ``change`` is ``added``, ``removed`` or ``modified``."""

    path: str
    change: str
    digest_a: str | None
    digest_b: str | None
    size_a: int | None
    size_b: int | None


@dataclass(slots=True)
class DataDiff:
    """The result of :func:`diff_data`."""

    a: str
    b: str
    files: list[FileDelta] = field(default_factory=list)
    tables: list[TableDiff] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        """Nothing differs."""
        return not self.files

    def to_dict(self) -> dict[str, Any]:
        """JSON-able."""
        counts = {c: sum(f.change == c for f in self.files) for c in ("added", "removed")}
        counts["modified"] = sum(f.change == "modified" for f in self.files)
        return {
            "a": self.a,
            "b": self.b,
            "identical": self.identical,
            "summary": counts,
            "files": [
                {
                    "path": f.path,
                    "change": f.change,
                    "a": {"digest": f.digest_a, "size": f.size_a} if f.digest_a else None,
                    "b": {"digest": f.digest_b, "size": f.size_b} if f.digest_b else None,
                }
                for f in self.files
            ],
            "tables": [t.to_dict() for t in self.tables],
            "notes": self.notes,
        }


def _under(path: str, prefix: str | None) -> bool:
    return prefix is None or path == prefix or path.startswith(prefix.rstrip("/") + "/")


def _add_tree(side: Side, base: str, tree: Tree, cache: Cache) -> None:
    for entry in tree:
        if entry.is_link:
            continue
        path = str(PurePosixPath(base) / entry.path)
        side.files[path] = entry.digest
        side.sizes[path] = entry.size
        if cache.exists(entry.digest):
            side.local[path] = cache.local_path(entry.digest)


def _revision_side(repo: DataRepo, rev: str, cache: Cache, prefix: str | None) -> Side:
    from mltrail.errors import InvalidArgumentError

    side = Side(rev)
    errors: list[str] = []
    for entry in repo.pointers(rev=rev, errors=errors):
        if not (_under(entry.data_path, prefix) or _under(prefix or "", entry.data_path)):
            continue
        p = entry.pointer
        if p.kind == "file":
            side.files[entry.data_path] = p.digest
            side.sizes[entry.data_path] = p.size
            if cache.exists(p.digest):
                side.local[entry.data_path] = cache.local_path(p.digest)
            continue
        if not cache.exists(p.digest):
            side.notes.append(
                f"{entry.data_path} at {rev}: the tree {p.digest} is not in the cache "
                "(run `mltrail data pull` at that revision); compared as a whole"
            )
            side.files[entry.data_path + "/"] = p.digest
            side.sizes[entry.data_path + "/"] = p.size
            continue
        try:
            _add_tree(side, entry.data_path, cache.read_tree(p.digest), cache)
        except InvalidArgumentError as exc:
            side.notes.append(f"{entry.data_path} at {rev}: {exc}")
    side.notes += errors
    return side


def _workspace_side(repo: DataRepo, cache: Cache, prefix: str | None) -> Side:
    from mltrail.data.workspace import hash_workspace

    side = Side("workspace")
    errors: list[str] = []
    for entry in repo.pointers(errors=errors):
        if not (_under(entry.data_path, prefix) or _under(prefix or "", entry.data_path)):
            continue
        target = repo.abspath(entry.data_path)
        if not target.exists():
            side.notes.append(f"{entry.data_path}: missing in the workspace")
            continue
        digest, tree, size = hash_workspace(repo, target, cache)
        if tree is None:
            side.files[entry.data_path] = digest
            side.sizes[entry.data_path] = size
            side.local[entry.data_path] = target
            continue
        for item in tree:
            if item.is_link:
                continue
            path = str(PurePosixPath(entry.data_path) / item.path)
            side.files[path] = item.digest
            side.sizes[path] = item.size
            side.local[path] = target.joinpath(*PurePosixPath(item.path).parts)
    side.notes += errors
    return side


def _stats(side: Side, path: str, notes: list[str]) -> TableStats | None:
    from mltrail.data.tables import table_stats

    local = side.local.get(path)
    if local is None:
        notes.append(f"{path} ({side.label}): not in the cache; no table statistics")
        return None
    return table_stats(local, PurePosixPath(path).name)


def diff_data(
    repo: DataRepo,
    rev_a: str | None = "HEAD",
    rev_b: str | None = WORKSPACE,
    path: str | None = None,
    *,
    tables: bool = True,
) -> DataDiff:
    """Compare the data of ``rev_a`` and ``rev_b`` (None: the workspace).

    Args:
        repo: The repository.
        rev_a: The "before" revision (None: the workspace).
        rev_b: The "after" revision (None: the workspace).
        path: Only data at or under this root-relative path.
        tables: Add schema and column statistics for changed tables (needs pyarrow).

    Raises:
        NotFoundError: a revision does not exist.
        MissingExtraError: ``tables`` and a table changed but pyarrow is not installed.
    """
    from mltrail.data.tables import diff_tables, require_pyarrow
    from mltrail.data.workspace import open_cache

    with open_cache(repo) as cache:
        sides = []
        for rev in (rev_a, rev_b):
            if rev is None:
                sides.append(_workspace_side(repo, cache, path))
            else:
                repo.resolve_rev(rev)
                sides.append(_revision_side(repo, rev, cache, path))
    a, b = sides
    out = DataDiff(a.label, b.label, notes=a.notes + b.notes)
    for p in sorted(a.files.keys() | b.files.keys()):
        if not _under(p.rstrip("/"), path) and not _under(path or "", p.rstrip("/")):
            continue
        da, db = a.files.get(p), b.files.get(p)
        if da == db:
            continue
        change = "added" if da is None else "removed" if db is None else "modified"
        out.files.append(FileDelta(p, change, da, db, a.sizes.get(p), b.sizes.get(p)))
    changed_tables = [f for f in out.files if is_table(f.path) and not f.path.endswith("/")]
    if tables and changed_tables:
        require_pyarrow()
        from mltrail.errors import InvalidArgumentError

        for f in changed_tables:
            notes: list[str] = []
            try:
                sa = _stats(a, f.path, notes) if f.digest_a else None
                sb = _stats(b, f.path, notes) if f.digest_b else None
                td = diff_tables(f.path, sa, sb)
            except InvalidArgumentError as exc:
                td = diff_tables(f.path, None, None)
                td.error = str(exc)
            out.tables.append(td)
            out.notes += notes
    return out
