"""``log_artifact``, ``log_reference`` and ``use_artifact`` of a live run.

Artifact calls are rare, so they are synchronous: they flush the run (so the store knows it),
store the bytes in the artifact storage (:mod:`mltrail.artifacts.storage`) and write the
version straight to the run's artifact store (:func:`mltrail.store.registry.open_artifact_store`).
They see the run through its :class:`~mltrail.sdk.recorder.Recorder`.
"""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltrail.artifacts.access import checkout_version
from mltrail.artifacts.records import (
    ArtifactVersion,
    NewVersion,
    check_alias,
    check_artifact_name,
    check_artifact_type,
    check_metadata,
    dedupe,
)
from mltrail.errors import InvalidArgumentError, StoreError
from mltrail.settings import settings
from mltrail.store.registry import open_artifact_store

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from mltrail.artifacts.base import ArtifactStore
    from mltrail.sdk.recorder import Recorder

__all__ = ["log_artifact", "log_reference", "use_artifact"]

_FLUSH_TIMEOUT_S = 60.0
_NOT_NAME = re.compile(r"[^\w.-]+")


def _default_name(path: str) -> str:
    """An artifact name from a file or directory name: invalid characters become ``-``."""
    base = unicodedata.normalize("NFC", Path(path.rstrip("/")).name or "artifact")
    name = _NOT_NAME.sub("-", base).lstrip("-_.")[:128]
    return name or "artifact"


def _aliases(aliases: Iterable[str] | str | None) -> tuple[str, ...]:
    if aliases is None:
        return ()
    if isinstance(aliases, str):
        aliases = (aliases,)
    return dedupe([check_alias(a) for a in aliases])


def _ready(run: Recorder) -> None:
    """Make sure the store knows the run before a version points at it (and before a
    version of an attached run is resolved in its project)."""
    if not run.flush(_FLUSH_TIMEOUT_S):
        raise StoreError(
            f"run {run.run_id} is not in the store {run.location.display} yet (timed out "
            f"after {_FLUSH_TIMEOUT_S:.0f} s); cannot record its artifacts"
        )


def log_artifact(
    run: Recorder,
    path: str | os.PathLike[str],
    name: str | None = None,
    type: str = "dataset",
    aliases: Iterable[str] | str | None = None,
    metadata: Mapping[str, Any] | None = None,
    *,
    reference: bool = False,
) -> ArtifactVersion:
    """Store a file or directory as a version of an artifact produced by ``run``.

    The same content as an existing version returns that version (no new ``vN``); changed
    content becomes ``vN+1`` and ``latest``. ``aliases`` move to the returned version.

    Args:
        run: the producing run.
        path: a file or a directory (a directory becomes a tree: one digest, files shared).
        name: the artifact name; default the file or directory name (characters outside
            letters, digits, ``-_.`` replaced by ``-``).
        type: ``dataset``, ``model``, ... (fixed per name).
        aliases: aliases to point at this version (``best``, ``production``).
        metadata: JSON-serialisable facts about this version (at most 64 KB).
        reference: record by digest where it is, without copying (see :func:`log_reference`).

    Raises:
        InvalidArgumentError: a bad name, type, alias or metadata (the message names it).
        NotFoundError: ``path`` does not exist.
        UnsafePathError: a symlink in the directory leads outside it.
        StoreError: the store cannot be written.
    """
    text = _check_path(path)
    if reference:
        return log_reference(run, text, name, type, aliases, metadata)
    art_name = check_artifact_name(name) if name is not None else _default_name(text)
    art_type = check_artifact_type(type)
    alias_list = _aliases(aliases)
    meta = check_metadata(metadata)
    store = open_artifact_store(run.location)
    from mltrail.artifacts.storage import storage_for

    local = Path(text).expanduser().resolve()
    staged = storage_for(run.location, run.artifacts_location).store_path(local)
    source = {"filename": local.name, "path": str(local)}
    _ready(run)
    return store.log_version(
        NewVersion(
            project=run.project or _run_project(run),
            name=art_name,
            type=art_type,
            digest=staged.digest,
            kind=staged.kind,
            size=staged.size,
            file_count=staged.file_count,
            metadata=meta,
            source=source,
            run_id=run.run_id,
            aliases=alias_list,
        )
    )


def log_reference(
    run: Recorder,
    target: str | os.PathLike[str],
    name: str | None = None,
    type: str = "dataset",
    aliases: Iterable[str] | str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> ArtifactVersion:
    """Record data where it is (``s3://bucket/key``, a prefix, a local path) by digest.

    No bytes are copied: a local path is hashed in place; a URL is described by its objects'
    ETags and sizes. :func:`use_artifact` verifies the data still matches before using it.

    Raises:
        InvalidArgumentError, NotFoundError, UnsafePathError, StoreError: as
            :func:`log_artifact`.
    """
    from mltrail.artifacts.references import describe, is_url

    text = _check_path(target)
    art_name = check_artifact_name(name) if name is not None else _default_name(text)
    art_type = check_artifact_type(type)
    alias_list = _aliases(aliases)
    meta = check_metadata(metadata)
    store = open_artifact_store(run.location)
    found = describe(text)
    source = dict(found.source)
    if not is_url(found.uri):
        source["filename"] = Path(found.uri).name
    _ready(run)
    return store.log_version(
        NewVersion(
            project=run.project or _run_project(run),
            name=art_name,
            type=art_type,
            digest=found.digest,
            kind="reference",
            size=found.size,
            file_count=found.file_count,
            uri=found.uri,
            metadata=meta,
            source=source,
            run_id=run.run_id,
            aliases=alias_list,
        )
    )


def use_artifact(run: Recorder, ref: str, root: str | os.PathLike[str] | None = None) -> Path:
    """Resolve ``ref``, materialise its content (verified) and record it as an input of ``run``.

    Args:
        run: the consuming run.
        ref: ``name``, ``name:vN``, ``name:alias``, ``project/name:...`` or a digest; looked
            up in the run's project unless the reference names one.
        root: the directory to check the content out into; default a content-addressed
            folder under the cache directory (``$MLTRAIL_CACHE_DIR/checkouts/``).

    Returns:
        The file (for a file artifact) or the directory (for a tree); for a local reference
        without ``root``, the referenced path itself.

    Raises:
        NotFoundError: no such artifact/version/alias, or its bytes are not in the storage.
        AmbiguousIdError: the name or digest matches several artifacts.
        CorruptObjectError: a stored object (or a reference's data) fails verification.
    """
    store = open_artifact_store(run.location)
    version = store.resolve(ref, project=run.project or _run_project(run))
    version = _pinned(store, version)
    path = checkout_version(version, run.location, root, run.artifacts_location)
    _ready(run)
    store.record_input(run.run_id, version)
    run.artifact_used(version)
    return path


def _pinned(store: ArtifactStore, version: ArtifactVersion) -> ArtifactVersion:
    """Under ``mltrail reproduce``: the version the original run used, not what an alias
    points at today (``MLTRAIL_PIN_INPUTS``, ``{"project/name": version}``)."""
    raw = settings().pin_inputs
    if not raw:
        return version
    import json

    try:
        pins = json.loads(raw)
    except ValueError:
        raise InvalidArgumentError(f"MLTRAIL_PIN_INPUTS is not JSON: {raw[:80]!r}") from None
    pinned = pins.get(f"{version.project}/{version.name}") if isinstance(pins, dict) else None
    if not isinstance(pinned, int) or isinstance(pinned, bool) or pinned == version.version:
        return version
    import logging

    logging.getLogger("mltrail").warning(
        "mltrail: %s resolves to v%d today; using v%d, the version the original run used",
        version.qualified,
        version.version,
        pinned,
    )
    return store.resolve(f"{version.project}/{version.name}:v{pinned}")


def _check_path(path: str | os.PathLike[str]) -> str:
    if not isinstance(path, str | os.PathLike):
        raise InvalidArgumentError(f"artifact path must be a str or a path, got {path!r}")
    text = os.fspath(path)
    if not isinstance(text, str):
        raise InvalidArgumentError("artifact path must be text, not bytes")
    if not text:
        raise InvalidArgumentError("artifact path must not be empty")
    if "\x00" in text:
        raise InvalidArgumentError("artifact path contains a NUL byte")
    return text


def _run_project(run: Recorder) -> str:
    """The project of an attached run (its handle does not carry it): ask the store."""
    from mltrail.store.registry import open_store

    _ready(run)
    return open_store(run.location).get_run(run.run_id).project
