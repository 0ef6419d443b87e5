"""What is attested: a registered model version or a run, and the files that stand for it.

``MODEL@VERSION`` / ``MODEL@ALIAS`` (``[PROJECT/]NAME@...``, or any ``models:/`` reference)
names a model version: its files are the bytes its artifact version pins, and its run is the
version's source run. Anything else is a run id (or a unique prefix): its files are those of
every artifact version it logged.

Files are checked out of the artifact storage (every object verified against its digest)
and hashed with SHA-256, the digest in-toto subjects and outside verifiers use.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mltrail.errors import ArtifactsUnsupportedError, IntegrityError, InvalidArgumentError

if TYPE_CHECKING:
    from mltrail.artifacts.records import ArtifactVersion
    from mltrail.registry.base import ModelRegistry
    from mltrail.registry.records import ModelVersion
    from mltrail.store.base import TrackingStore
    from mltrail.store.registry import StoreLocation

__all__ = ["Target", "hash_files", "model_registry", "resolve_target", "subject_files"]

_MODEL_TEXT = re.compile(r"^(?:(?P<project>[^/@\s]+)/)?(?P<name>[^/@\s]+)@(?P<sel>[^/@\s]+)$")
_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class Target:
    """A resolved target.

    Attributes:
        label: how it is named in messages and in the statement (``models:/p/n/3``,
            ``run abc123``).
        run_id: the run that produced it (None: a model version without a source run).
        model: the model version (None for a run).
        artifacts: the artifact versions whose files are the subject.
    """

    label: str
    run_id: str | None
    model: ModelVersion | None
    artifacts: tuple[ArtifactVersion, ...]


def model_registry(store: TrackingStore) -> ModelRegistry:
    """The store's model registry.

    Raises:
        ArtifactsUnsupportedError: the store keeps none.
    """
    from mltrail.store.optional import HasModelRegistry

    if not isinstance(store, HasModelRegistry):
        raise ArtifactsUnsupportedError(f"the store {store.uri} keeps no model registry")
    return store.model_registry()


def _model_ref(text: str) -> str | None:
    """``text`` as a ``models:/`` reference, or None when it names no model."""
    if text.startswith("models:/"):
        return text
    m = _MODEL_TEXT.match(text)
    if m is None:
        return None
    project = f"{m['project']}/" if m["project"] else ""
    sel = m["sel"]
    return (
        f"models:/{project}{m['name']}/{sel}"
        if sel.isdigit()
        else f"models:/{project}{m['name']}@{sel}"
    )


def resolve_target(store: TrackingStore, text: str, project: str | None = None) -> Target:
    """The model version or run ``text`` names.

    Raises:
        InvalidArgumentError: an empty or malformed target (the message shows the forms).
        NotFoundError, AmbiguousIdError: no such (or no unique) model, version, alias or run.
        IntegrityError: the model's artifact no longer has the digest the version pinned.
    """
    text = text.strip()
    if not text:
        raise InvalidArgumentError("target: give MODEL@VERSION, MODEL@ALIAS or a run id")
    ref = _model_ref(text)
    if ref is not None:
        return _model_target(store, ref, project)
    run_id = store.resolve_run_id(text)
    return Target(
        label=f"run {run_id}", run_id=run_id, model=None, artifacts=_run_outputs(store, run_id)
    )


def _model_target(store: TrackingStore, ref: str, project: str | None) -> Target:
    from mltrail.store.optional import HasArtifacts

    version = model_registry(store).resolve(ref, project=project)
    if not isinstance(store, HasArtifacts):
        raise ArtifactsUnsupportedError(f"the store {store.uri} keeps no artifacts")
    found = store.artifacts().resolve(
        f"{version.project}/{version.artifact}", project=version.project
    )
    if found.digest != version.digest:
        raise IntegrityError(
            f"{version.ref} pins {version.digest} but artifact {version.artifact} has "
            f"{found.digest}"
        )
    return Target(label=version.ref, run_id=version.run_id, model=version, artifacts=(found,))


def _run_outputs(store: TrackingStore, run_id: str) -> tuple[ArtifactVersion, ...]:
    from mltrail.lineage_export.facts import logged_outputs

    return tuple(logged_outputs(store, run_id))


def hash_files(path: Path, prefix: str = "") -> dict[str, str]:
    """``{name: sha256 hex}`` of the regular files at ``path`` (a file: its name; a folder:
    paths relative to it, ``/``-separated), each name after ``prefix``. Symlinks are not
    followed and not listed."""
    if path.is_file() and not path.is_symlink():
        return {prefix + path.name: _sha256(path)}
    out: dict[str, str] = {}
    for folder, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            full = Path(folder) / name
            if full.is_symlink() or not full.is_file():
                continue
            out[prefix + full.relative_to(path).as_posix()] = _sha256(full)
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def subject_files(target: Target, location: StoreLocation) -> dict[str, str]:
    """``{name: sha256}`` of every file of ``target``, checked out (verified) first.

    A model version's files are named as in the model (a single file by its name); a run's
    as ``ARTIFACT/path``.

    Raises:
        InvalidArgumentError: the target has no files (a run that logged no artifact).
        NotFoundError, CorruptObjectError: bytes missing from, or damaged in, the storage.
    """
    from mltrail.artifacts.access import checkout_version

    if not target.artifacts:
        raise InvalidArgumentError(
            f"{target.label} logged no artifact: there are no files to attest"
        )
    out: dict[str, str] = {}
    for version in target.artifacts:
        path = checkout_version(version, location)
        out.update(hash_files(path, "" if target.model is not None else f"{version.name}/"))
    return dict(sorted(out.items()))
