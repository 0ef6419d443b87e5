"""Reading artifact versions back: checkout of a version's bytes (verified) anywhere.

Used by ``use_artifact`` in the SDK, ``mltrail artifacts get`` and ``mltrail reproduce``;
it needs a version record and the artifact storage, never a run.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mltrail.settings import settings

if TYPE_CHECKING:
    import os

    from mltrail.artifacts.records import ArtifactVersion
    from mltrail.store.registry import StoreLocation

__all__ = ["checkout_version"]


def checkout_version(
    version: ArtifactVersion,
    location: StoreLocation,
    root: str | os.PathLike[str] | None = None,
    artifacts: str | os.PathLike[str] | None = None,
    *,
    progress: bool = False,
) -> Path:
    """Materialise ``version`` (verified) under ``root`` and return the file or directory.

    ``progress`` shows a Rich progress bar (the CLI).

    Raises:
        NotFoundError, CorruptObjectError, UnsafePathError: see :func:`use_artifact`.
    """
    from mltrail.artifacts.storage import storage_for

    dest_root = Path(root).expanduser().resolve() if root is not None else None
    if version.kind == "reference":
        from mltrail.artifacts.references import fetch, is_url

        assert version.uri is not None
        if dest_root is None and is_url(version.uri):
            dest_root = _default_root(version)
        return fetch(version.uri, version.digest, dest_root)
    base = dest_root if dest_root is not None else _default_root(version)
    storage = storage_for(location, artifacts)
    if version.kind == "tree":
        storage.materialise(version.digest, base, progress=progress)
        return base
    filename = str(version.source.get("filename") or version.name)
    target = base / _safe_filename(filename, version.name)
    base.mkdir(parents=True, exist_ok=True)
    storage.materialise(version.digest, target, progress=progress)
    return target


def _default_root(version: ArtifactVersion) -> Path:
    hexpart = version.digest.split(":", 1)[-1].replace(".", "-")
    return settings().cache_dir / "checkouts" / f"{version.digest.split(':', 1)[0]}-{hexpart}"


def _safe_filename(filename: str, fallback: str) -> str:
    """A recorded file name is data: only a plain single component is used."""
    if not filename or filename in (".", "..") or "/" in filename or "\\" in filename:
        return fallback
    if "\x00" in filename:
        return fallback
    return filename
