"""Untracked files of a repository: code to keep with a run, or outputs to leave out.

A run's code is its commit, the uncommitted diff of tracked files and the *untracked source
files* (source-like by name and small: ``.py``, ``.yaml``, ``.json``, ``.toml``, ``.sh``,
``.cfg`` ...), whose bytes are kept with the run so ``mltrail reproduce`` can put them back.
Everything else untracked is an *output*, never code: the folders known frameworks write
(Hydra ``outputs/`` and ``multirun/``, ``lightning_logs/``, TensorBoard ``runs/``, ``wandb/``,
``mlruns/``), files a tracked run wrote (``mltrail run`` remembers them in
``<git dir>/mltrail/outputs.json``), large files and binaries. Pure functions: nothing here
writes (the list of written files is kept by :mod:`mltrail.repro.outputs`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltrail.capture.base import blob_digest

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "OUTPUT_DIRS",
    "OUTPUT_HINT",
    "SOURCE_MAX_BYTES",
    "SOURCE_SUFFIXES",
    "Untracked",
    "classify_untracked",
    "known_outputs",
    "known_outputs_file",
    "read_sources",
]

#: file name endings that make an untracked file source-like
SOURCE_SUFFIXES = frozenset(
    {
        ".py", ".pyi", ".pyx", ".pxd", ".yaml", ".yml", ".json", ".toml", ".sh", ".bash",
        ".cfg", ".ini", ".c", ".cc", ".cpp", ".h", ".hpp", ".cu", ".jl", ".r", ".sql",
    }
)  # fmt: skip
#: names that are source whatever their ending
SOURCE_NAMES = frozenset({"Makefile", "Dockerfile", "requirements.txt", "environment.yml"})
#: a source-like file bigger than this is an output (generated data, a dump)
SOURCE_MAX_BYTES = 256 * 1024
#: at most this many untracked source files, and bytes in all, are kept with a run
SOURCES_MAX_FILES = 200
SOURCES_MAX_TOTAL = 8 * 1024 * 1024
#: folders known frameworks write their outputs to (any path component)
OUTPUT_DIRS = frozenset({"outputs", "multirun", "lightning_logs", "runs", "wandb", "mlruns"})
#: never code, never worth listing
_NOISE_DIRS = frozenset({"__pycache__", ".ipynb_checkpoints", ".pytest_cache", ".mypy_cache"})
_WALK_MAX = 5000
OUTPUT_HINT = "track them with `mltrail data add PATH` or add them to .gitignore"


@dataclass(frozen=True, slots=True)
class Untracked:
    """Untracked paths, sorted into code and outputs.

    Attributes:
        sources: Source-like files (relative to the root), kept with the run.
        outputs: Outputs (files, or folders as ``name/``): never counted as code.
        skipped: Source-like files not kept (over the count or size budget), with why.
    """

    sources: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def known_outputs_file(root: Path) -> Path | None:
    """Where ``mltrail run`` lists the files tracked runs wrote (None without a ``.git``
    folder, as in a linked worktree)."""
    git_dir = root / ".git"
    return git_dir / "mltrail" / "outputs.json" if git_dir.is_dir() else None


def known_outputs(root: Path) -> frozenset[str]:
    """The paths (relative to ``root``) tracked runs wrote; empty when none are known."""
    path = known_outputs_file(root)
    if path is None:
        return frozenset()
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return frozenset()
    paths = doc.get("paths") if isinstance(doc, dict) else None
    return frozenset(p for p in paths or [] if isinstance(p, str))


def _is_source_name(name: str) -> bool:
    return name in SOURCE_NAMES or os.path.splitext(name)[1].lower() in SOURCE_SUFFIXES


def _output_dir(rel: str) -> bool:
    parts = rel.rstrip("/").split("/")
    return any(p in OUTPUT_DIRS for p in (parts if rel.endswith("/") else parts[:-1]))


def _noise(rel: str) -> bool:
    return any(p in _NOISE_DIRS for p in rel.rstrip("/").split("/"))


def _files_under(root: Path, rel_dir: str) -> Iterable[str]:
    """Files under an untracked folder (relative to ``root``), noise folders pruned."""
    count = 0
    base = root / rel_dir
    for here, dirs, files in os.walk(base):
        dirs[:] = sorted(d for d in dirs if d not in _NOISE_DIRS and d != ".git")
        rel_here = Path(here).relative_to(root).as_posix()
        for name in sorted(files):
            count += 1
            if count > _WALK_MAX:
                return
            yield f"{rel_here}/{name}"


def classify_untracked(
    root: Path, untracked: Iterable[str], written: frozenset[str] | None = None
) -> Untracked:
    """Sort ``git status``'s untracked paths into source files and outputs.

    Args:
        root: The repository's work-tree root.
        untracked: Untracked paths relative to ``root`` (folders end with ``/``).
        written: Paths tracked runs wrote (default: :func:`known_outputs` of ``root``).

    Returns:
        The :class:`Untracked` paths. Never raises (an unreadable file is an output).
    """
    known = known_outputs(root) if written is None else written
    result = Untracked()
    for rel in untracked:
        if _noise(rel):
            continue
        if rel.endswith("/"):
            if _output_dir(rel) or rel.rstrip("/") in known:
                result.outputs.append(rel)
                continue
            members = list(_files_under(root, rel.rstrip("/")))
            if not any(_is_source_name(m.rsplit("/", 1)[-1]) for m in members):
                result.outputs.append(rel)  # a folder of data, plots, checkpoints
                continue
            for member in members:
                _classify_file(root, member, known, result)
        else:
            _classify_file(root, rel, known, result)
    return result


def _classify_file(root: Path, rel: str, known: frozenset[str], result: Untracked) -> None:
    if _noise(rel):
        return
    if rel in known or _output_dir(rel) or not _is_source_name(rel.rsplit("/", 1)[-1]):
        result.outputs.append(rel)
        return
    try:
        size = (root / rel).stat().st_size
    except OSError:
        return  # gone since git listed it
    if size > SOURCE_MAX_BYTES:
        result.outputs.append(rel)  # generated data, not code someone wrote
    elif len(result.sources) >= SOURCES_MAX_FILES:
        result.skipped.append(f"{rel} (more than {SOURCES_MAX_FILES} untracked source files)")
    else:
        result.sources.append(rel)


def read_sources(
    root: Path, sources: Iterable[str]
) -> tuple[list[dict[str, Any]], dict[str, bytes]]:
    """Read untracked source files for keeping with a run.

    Args:
        root: The repository's work-tree root.
        sources: Paths relative to ``root`` (from :func:`classify_untracked`).

    Returns:
        ``(files, blobs)``: ``[{"path", "size", "digest"}]`` (or ``"skipped"`` with why) and
        the blobs by digest, within :data:`SOURCES_MAX_TOTAL` bytes in all.
    """
    files: list[dict[str, Any]] = []
    blobs: dict[str, bytes] = {}
    total = 0
    for rel in sources:
        try:
            content = (root / rel).read_bytes()
        except OSError as exc:
            files.append({"path": rel, "skipped": exc.strerror or str(exc)})
            continue
        if total + len(content) > SOURCES_MAX_TOTAL:
            files.append({"path": rel, "skipped": f"over {SOURCES_MAX_TOTAL} bytes in all"})
            continue
        total += len(content)
        digest = blob_digest(content)
        blobs[digest] = content
        files.append({"path": rel, "size": len(content), "digest": digest})
    return files, blobs
