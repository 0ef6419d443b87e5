"""The parts of a store that are not runs: artifact versions with their objects and aliases,
run inputs (lineage), and the model registry.

Objects are copied before the versions that name them (a server refuses a version whose
objects it does not hold), each read verified from the source and stored under its digest.
Versions are logged oldest first, so ``name:vN`` keeps its number in an empty destination;
one the destination already has (same digest) is left as it is.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mltrail.errors import AlreadyExistsError, NotFoundError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from mltrail.artifacts.base import ArtifactStore
    from mltrail.artifacts.records import ArtifactVersion
    from mltrail.objects.base import ObjectStore
    from mltrail.registry.base import ModelRegistry

__all__ = ["CatalogCounts", "copy_artifacts", "copy_inputs", "copy_registry", "object_set"]

#: objects larger than this go through a temp file instead of memory
_STREAM_BYTES = 64 << 20


@dataclass
class CatalogCounts:
    """What copying the catalog added (and what it found already there)."""

    versions_added: int = 0
    versions_present: int = 0
    objects_added: int = 0
    objects_present: int = 0
    object_bytes: int = 0
    aliases_set: int = 0
    inputs_added: int = 0
    models_added: int = 0
    model_versions_added: int = 0
    model_changes: int = 0
    missing_objects: list[str] = field(default_factory=list)


def object_set(objects: ObjectStore, versions: Iterable[ArtifactVersion]) -> set[str]:
    """Every object the versions need: each file or tree digest, and a tree's files."""
    from mltrail.objects.digest import is_tree

    wanted: set[str] = set()
    for v in versions:
        if v.kind == "reference":
            continue
        wanted.add(v.digest)
        if is_tree(v.digest) and objects.exists(v.digest):
            wanted |= objects.read_tree(v.digest).digests()
    return wanted


def _copy_object(src: ObjectStore, dst: ObjectStore, digest: str) -> int:
    """Copy one object, verified on the way; its size."""
    import os
    import tempfile

    from mltrail.objects.base import BulkObjectStore

    size = src.size(digest)
    if size > _STREAM_BYTES and isinstance(src, BulkObjectStore):
        fd, tmp = tempfile.mkstemp(prefix="mltrail-copy-")
        os.close(fd)
        try:
            src.get_to_local(digest, tmp)
            dst.add_file(tmp, digest)  # hashed: a damaged source never gets the name
        finally:
            os.unlink(tmp)
        return size
    data = src.read_bytes(digest)  # verified
    if isinstance(dst, BulkObjectStore):
        dst.put_many({digest: data}, verified=True)
    else:
        from mltrail.objects.digest import is_tree, parse_digest

        dst.add_bytes(data, algo=parse_digest(digest)[0], tree=is_tree(digest))
    return len(data)


def copy_objects(
    src: ObjectStore, dst: ObjectStore, digests: set[str], counts: CatalogCounts
) -> None:
    """Copy the objects of ``digests`` the destination lacks (trees after their files)."""
    from mltrail.objects.digest import is_tree

    have = dst.exists_many(digests)
    counts.objects_present += len(have)
    for digest in sorted(digests - have, key=lambda d: (is_tree(d), d)):
        try:
            counts.object_bytes += _copy_object(src, dst, digest)
        except NotFoundError:
            counts.missing_objects.append(digest)
            continue
        counts.objects_added += 1


def copy_artifacts(
    src: ArtifactStore,
    dst: ArtifactStore,
    src_objects: ObjectStore | None,
    dst_objects: ObjectStore | None,
    projects: list[str],
    counts: CatalogCounts,
    tick: Callable[[], None] = lambda: None,
) -> None:
    """Copy every artifact version of ``projects`` (objects first), then their aliases."""
    from mltrail.artifacts.records import NewVersion

    for project in projects:
        for art in src.list_artifacts(project):
            versions = src.list_versions(project, art.name)
            if src_objects is not None and dst_objects is not None:
                copy_objects(src_objects, dst_objects, object_set(src_objects, versions), counts)
            try:
                present = {v.digest for v in dst.list_versions(project, art.name)}
            except NotFoundError:
                present = set()
            for v in versions:
                if v.digest in present:
                    counts.versions_present += 1
                    continue
                new = NewVersion(
                    project=v.project,
                    name=v.name,
                    type=v.type,
                    digest=v.digest,
                    kind=v.kind,
                    size=v.size,
                    file_count=v.file_count,
                    uri=v.uri,
                    metadata=v.metadata,
                    source=v.source,
                    run_id=v.run_id,
                    created_ms=v.created_ms,
                )
                dst.log_version(new)
                counts.versions_added += 1
            dst_versions = {v.version: v for v in dst.list_versions(project, art.name)}
            for alias, number in sorted(art.aliases.items()):
                if alias == "latest" or alias in dst_versions.get(number, _NO).aliases:
                    continue
                dst.set_alias(project, art.name, alias, number)
                counts.aliases_set += 1
            tick()


class _NoVersion:
    aliases: tuple[str, ...] = ()


_NO: Any = _NoVersion()


def copy_inputs(
    src: ArtifactStore, dst: ArtifactStore, run_ids: Iterable[str], counts: CatalogCounts
) -> None:
    """Record in ``dst`` the artifact versions each run used (lineage's other half)."""
    for run_id in run_ids:
        used = src.run_inputs(run_id)
        if not used:
            continue
        have = {(v.project, v.name, v.version) for v in dst.run_inputs(run_id)}
        for v in used:
            if (v.project, v.name, v.version) in have:
                continue
            dst.record_input(run_id, dst.resolve(f"{v.project}/{v.name}:v{v.version}"))
            counts.inputs_added += 1


def copy_registry(
    src: ModelRegistry, dst: ModelRegistry, projects: list[str], counts: CatalogCounts
) -> None:
    """Copy registered models: descriptions, owners, tags, versions (pinned to the same
    artifact versions), cards, archive flags and aliases.

    The destination's history is the record of these calls (one event each, the source's
    actors kept where the destination lets the caller name one), not a replay of the
    source's events with their times.
    """
    for project in projects:
        for model in src.list_models(project, include_archived=True):
            try:
                there = dst.get_model(project, model.name)
            except NotFoundError:
                try:
                    there = dst.create_model(
                        project,
                        model.name,
                        description=model.description,
                        owner=model.owner,
                        tags=dict(model.tags),
                        reason="mltrail store copy",
                    )
                    counts.models_added += 1
                except AlreadyExistsError:
                    there = dst.get_model(project, model.name)
            _copy_model_versions(src, dst, project, model.name, there.version_count, counts)
            dst_versions = {v.version: v for v in dst.list_versions(project, model.name)}
            for v in src.list_versions(project, model.name):
                mine = dst_versions[v.version]
                if v.card and v.card != mine.card:
                    dst.update_card(project, model.name, v.version, v.card, reason="copy")
                    counts.model_changes += 1
            for alias, number in sorted(model.aliases.items()):
                if alias != "latest" and alias not in dst_versions[number].aliases:
                    dst.set_alias(project, model.name, alias, number, reason="copy")
                    counts.model_changes += 1
            for v in src.list_versions(project, model.name):
                if v.archived != dst_versions[v.version].archived:
                    dst.set_version_archived(project, model.name, v.version, v.archived)
                    counts.model_changes += 1
            if model.archived != there.archived:
                dst.set_model_archived(project, model.name, model.archived)
                counts.model_changes += 1


def _copy_model_versions(
    src: ModelRegistry,
    dst: ModelRegistry,
    project: str,
    name: str,
    have: int,
    counts: CatalogCounts,
) -> None:
    from mltrail.registry.records import NewModelVersion

    for v in src.list_versions(project, name)[have:]:
        art_name, _, number = v.artifact.rpartition(":v")
        dst.register_version(
            NewModelVersion(
                project=project,
                name=name,
                artifact_name=art_name,
                artifact_version=int(number),
                run_id=v.run_id,
                signature=v.signature,
                metadata=v.metadata,
                description=v.description,
                actor=v.created_by,
                reason="mltrail store copy",
            )
        )
        counts.model_versions_added += 1


def catalog_fingerprint(
    arts: ArtifactStore | None, registry: ModelRegistry | None, projects: list[str]
) -> dict[str, str]:
    """Per project, a digest of its artifact versions (name, number, digest, kind, size,
    aliases, run, metadata) and registered models (versions, aliases, cards, archive flags)."""
    out: dict[str, str] = {}
    for project in projects:
        doc: dict[str, Any] = {"artifacts": [], "models": []}
        if arts is not None:
            for art in arts.list_artifacts(project):
                for v in arts.list_versions(project, art.name):
                    doc["artifacts"].append(
                        [v.name, v.type, v.version, v.digest, v.kind, v.size, v.file_count,
                         v.uri, v.metadata, v.run_id, sorted(v.aliases)]
                    )  # fmt: skip
        if registry is not None:
            for m in registry.list_models(project, include_archived=True):
                versions = [
                    [v.version, v.artifact, v.digest, v.run_id, v.archived, v.card,
                     sorted(v.aliases)]
                    for v in registry.list_versions(project, m.name)
                ]  # fmt: skip
                doc["models"].append([m.name, m.description, m.owner, m.tags, m.archived, versions])
        text = json.dumps(doc, sort_keys=True, default=str).encode()
        out[project] = hashlib.sha256(text).hexdigest()
    return out
