"""OpenLineage names for mltrail's things: run ids, jobs and datasets.

Pure functions (no I/O but :func:`repo_root_of`, a few ``stat`` calls), shared by the live
emitter and ``mltrail openlineage export`` so both name a run, its job and its data the same:

- **Run id**: OpenLineage wants a UUID; mltrail's run ids are 12 characters. The UUID is
  derived (UUIDv5) from the run id, so every event and every export of one run carries the
  same ``runId`` (and the ``mltrail`` run facet carries the run id itself).
- **Job**: ``namespace`` from ``MLTRAIL_OPENLINEAGE_NAMESPACE`` (default ``mltrail``),
  ``name`` = ``PROJECT/ENTRY`` where ENTRY is the program: a script's path relative to its
  git repository's root (``src/train.py``), ``-m module``, or the wrapped command's first word.
- **Datasets** (OpenLineage's naming conventions): ``s3://bucket/key`` is namespace
  ``s3://bucket`` and name ``key`` (``gs``, ``abfss``, ... alike), ``https://host/path`` is
  ``https://host`` + ``/path``, a local path is ``file`` + the absolute path; an artifact
  stored by mltrail is ``<job namespace>`` + ``artifacts/PROJECT/NAME``.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "artifact_dataset",
    "entry_point",
    "job_name",
    "repo_root_of",
    "run_uuid",
    "sweep_uuid",
    "uri_dataset",
]

#: The UUIDv5 namespace of mltrail's OpenLineage run ids (fixed forever: changing it renames
#: every run a lineage server has seen).
_RUN_NS = uuid.UUID(
    "13bde0ed-ebf5-5bb6-b64f-6e23aff8ee8b"
)  # uuid5(NAMESPACE_URL, "urn:mltrail:openlineage:run")


def run_uuid(run_id: str) -> str:
    """The OpenLineage ``runId`` of mltrail run ``run_id`` (the same on every call)."""
    return str(uuid.uuid5(_RUN_NS, f"run:{run_id}"))


def sweep_uuid(sweep_id: str) -> str:
    """The OpenLineage ``runId`` of a sweep (the parent run of its trials)."""
    return str(uuid.uuid5(_RUN_NS, f"sweep:{sweep_id}"))


def job_name(project: str, entry: str) -> str:
    """``PROJECT/ENTRY``."""
    return f"{project}/{entry}"


def repo_root_of(path: str | os.PathLike[str]) -> str | None:
    """The folder holding ``.git`` at or above ``path`` (a file or folder), or None."""
    here = Path(path)
    for folder in (here, *here.parents):
        try:
            if (folder / ".git").exists():
                return str(folder)
        except OSError:
            return None
    return None


def _script_of(argv: list[str]) -> tuple[str, str] | None:
    """``("script", path)`` or ``("module", name)`` of a Python command line, else None."""
    if not argv or PurePosixPath(argv[0]).name.split(".")[0].rstrip("0123456789.") not in (
        "python",
        "pypy",
    ):
        return None
    i = 1
    while i < len(argv):
        arg = argv[i]
        if arg == "-m" and i + 1 < len(argv):
            return "module", argv[i + 1]
        if arg == "-c":
            return "module", "-c"
        if arg in ("-W", "-X", "--check-hash-based-pycs"):
            i += 2
            continue
        if arg.startswith("-"):
            i += 1
            continue
        return "script", arg
    return None


def entry_point(invocation: dict[str, Any] | None, repo_root: str | None = None) -> str:
    """The program a run ran, as a job name's second half.

    Args:
        invocation: the run's ``invocation`` state (``argv``, ``cwd``, ``wrapped``).
        repo_root: the entry point's repository (the ``code`` state's ``entry_repo``); None:
            found by looking for ``.git`` above the script.
    """
    argv = [str(a) for a in (invocation or {}).get("argv") or []]
    if not argv:
        return "unknown"
    cwd = str((invocation or {}).get("cwd") or "")
    found = _script_of(argv)
    if found is None:  # a wrapped non-Python command: its first word (and script, if any)
        words = [PurePosixPath(argv[0]).name]
        if len(argv) > 1 and not argv[1].startswith("-") and "." in argv[1]:
            words.append(_relative(argv[1], cwd, repo_root))
        return " ".join(words)
    kind, value = found
    if kind == "module":
        return f"-m {value}" if value != "-c" else "-c"
    return _relative(value, cwd, repo_root)


def _relative(script: str, cwd: str, repo_root: str | None) -> str:
    path = Path(script) if os.path.isabs(script) or not cwd else Path(cwd) / script
    path = Path(os.path.normpath(path))
    root = repo_root or repo_root_of(path.parent)
    if root:
        try:
            return path.relative_to(root).as_posix()
        except ValueError:
            pass
    return path.name


def uri_dataset(uri: str) -> tuple[str, str]:
    """``(namespace, name)`` of the data at ``uri`` (a URL or a local path)."""
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if len(scheme) > 1 and scheme != "file":  # (a one-letter scheme is a Windows drive)
        if scheme in ("http", "https"):
            return f"{scheme}://{parts.netloc}", parts.path or "/"
        name = parts.path.lstrip("/")
        return f"{scheme}://{parts.netloc}", name or "/"
    path = parts.path if scheme == "file" else uri
    return "file", os.path.normpath(os.path.abspath(path))


def artifact_dataset(namespace: str, project: str, name: str, uri: str | None) -> tuple[str, str]:
    """``(namespace, name)`` of an artifact: where a reference points, else mltrail's own."""
    if uri:
        return uri_dataset(uri)
    return namespace, f"artifacts/{project}/{name}"
