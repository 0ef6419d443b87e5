"""The files a wrapped command wrote: found by comparing two stat snapshots of its working
directory, digested (blake3) and recorded as the run's ``files`` state, so that
``mltrail reproduce`` can compare them (a bitwise identical model file is the strongest
evidence of reproduction there is).

Their paths are also remembered in ``<git dir>/mltrail/outputs.json`` of the repository, so
that the next run counts them as outputs, never as uncommitted code
(:mod:`mltrail.capture.untracked`).
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from mltrail.sdk.run import Run

__all__ = ["FILES_KIND", "Snapshot", "record_written", "remember_outputs", "snapshot"]

#: the state kind holding the files a run wrote
FILES_KIND = "files"
#: folders never walked: version control, mltrail's own, caches, virtual environments
_SKIP_DIRS = frozenset(
    {
        ".git", ".mltrail", "__pycache__", "node_modules", ".tox", ".mypy_cache",
        ".pytest_cache", ".ruff_cache", ".ipynb_checkpoints", ".venv", "venv",
    }
)  # fmt: skip
_SNAPSHOT_MAX = 50_000
_RECORD_MAX = 1000
_REMEMBER_MAX = 10_000

Snapshot = dict[str, tuple[int, int, int]]


def snapshot(folder: Path) -> Snapshot | None:
    """``{relative path: (mtime_ns, size, inode)}`` of every file under ``folder``.

    Returns:
        None when the folder holds more than 50,000 files (too many to watch cheaply).
    """
    found: Snapshot = {}
    for here, dirs, files in os.walk(folder):
        dirs[:] = [
            d
            for d in dirs
            if d not in _SKIP_DIRS and not os.path.exists(os.path.join(here, d, "pyvenv.cfg"))
        ]
        rel_here = os.path.relpath(here, folder)
        for name in files:
            path = os.path.join(here, name)
            try:
                st = os.stat(path, follow_symlinks=False)
            except OSError:
                continue
            rel = name if rel_here == "." else f"{rel_here}/{name}".replace(os.sep, "/")
            found[rel] = (st.st_mtime_ns, st.st_size, st.st_ino)
            if len(found) > _SNAPSHOT_MAX:
                return None
    return found


def _written(before: Snapshot, after: Snapshot) -> list[str]:
    return sorted(p for p, key in after.items() if before.get(p) != key)


def record_written(run: Run, folder: Path, before: Snapshot | None) -> list[str]:
    """Record the files written under ``folder`` since ``before`` as the run's ``files``.

    Args:
        run: The live wrapper run.
        folder: The command's working directory.
        before: :func:`snapshot` taken before the command started (None: too many files).

    Returns:
        The written paths (relative to ``folder``).
    """
    from mltrail.objects.digest import hash_file

    doc: dict[str, Any] = {"root": str(folder), "files": []}
    after = snapshot(folder) if before is not None else None
    if before is None or after is None:
        doc["note"] = f"more than {_SNAPSHOT_MAX} files under {folder}: outputs not recorded"
        run.recorder.state(FILES_KIND, doc)
        return []
    paths = _written(before, after)
    if len(paths) > _RECORD_MAX:
        doc["truncated"] = len(paths)
    for rel in paths[:_RECORD_MAX]:
        try:
            digest = hash_file(folder / rel)
        except OSError as exc:
            doc["files"].append({"path": rel, "error": exc.strerror or str(exc)})
            continue
        doc["files"].append({"path": rel, "size": after[rel][1], "digest": digest})
    run.recorder.state(FILES_KIND, doc)
    return paths


def remember_outputs(folder: Path, paths: list[str]) -> None:
    """Add ``paths`` (relative to ``folder``) to the repository's list of run outputs.

    Best effort: a repository without a ``.git`` folder, or one that cannot be written,
    keeps no list.
    """
    from mltrail.capture.git import find_repo
    from mltrail.capture.untracked import known_outputs, known_outputs_file

    if not paths:
        return
    root = find_repo(folder)
    target = known_outputs_file(root) if root is not None else None
    if root is None or target is None:
        return
    base = folder.resolve().relative_to(root.resolve()) if folder.resolve() != root else None
    new = {(f"{base.as_posix()}/{p}" if base else p) for p in paths}
    merged = sorted(known_outputs(root) | new)[-_REMEMBER_MAX:]
    try:
        target.parent.mkdir(exist_ok=True)
        tmp = target.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps({"paths": merged}), encoding="utf-8")
        os.replace(tmp, target)
    except (OSError, ValueError):
        pass
