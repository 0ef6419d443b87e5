"""``mltrail data status``: every tracked path against its pointer (ours and DVC's)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltrail.data._edge import os_errors
from mltrail.data.workspace import (
    DVC_INDEX_FILE,
    cache_missing,
    hash_workspace,
    open_cache,
    select_paths,
    wanted,
)
from mltrail.errors import MltrailError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mltrail.data.dvc import DvcOut
    from mltrail.data.repo import DataRepo, PointerEntry
    from mltrail.objects.cache import Cache
    from mltrail.objects.index import HashIndex
    from mltrail.objects.tree import Tree

__all__ = ["PointerStatus", "StatusReport", "status"]


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
            _, missing = cache_missing(cache, p.digest, ws_tree)
        else:
            tree, missing = cache_missing(cache, p.digest)
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
    selected = select_paths(repo, paths)
    listed = repo.pointer_files()  # one git call for our pointers and DVC's files
    entries = [
        e
        for e in repo.pointers(errors=report.errors, files=listed)
        if wanted(e.data_path, selected)
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
            o for o in repo.dvc_outs(errors=report.errors, files=listed) if wanted(o.path, selected)
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
