"""Restore the data a run read, by digest: pointer files' data (``data`` kind) and used
artifacts (``inputs`` kind).

Pointer data is checked out from the recorded repository's cache (``.mltrail/cache``),
after pulling what the cache lacks from the repository's data remotes; every object is
verified on the way (:func:`mltrail.objects.checkout.checkout`). Artifacts the script uses
are fetched by the script itself (``use_artifact``); here their objects are looked up in the
artifact storage so that a missing one is reported before anything runs. DVC outputs are
read by mltrail but restored by DVC (``dvc pull``), and data recorded without a digest
(known only by how to get it) cannot be restored by digest at all: both are reported.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from mltrail.errors import MltrailError, NotFoundError

if TYPE_CHECKING:
    from mltrail.objects.base import ObjectStore
    from mltrail.store.registry import StoreLocation

__all__ = ["DataItem", "check_data", "check_inputs", "restore_data"]


@dataclass(slots=True)
class DataItem:
    """One recorded input.

    Attributes:
        path: The data path in the repository, or the artifact's name.
        digest: Its content digest (None when none was recorded).
        source: ``mltrail``, ``dvc``, ``dvc.lock`` or ``artifact``.
        status: ``cache`` (objects at hand), ``remote`` (to be pulled from ``where``),
            ``missing`` or ``external`` (restored by another tool, or fetched by the script).
        where: The cache folder or the remote (``name (url)``) holding the objects.
        detail: Why it cannot be restored, or what will happen.
        remote_url: The remote to pull from (status ``remote``).
    """

    path: str
    digest: str | None
    source: str
    status: str
    where: str = ""
    detail: str = ""
    remote_url: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "path": self.path,
            "digest": self.digest,
            "source": self.source,
            "status": self.status,
            "where": self.where,
            "detail": self.detail,
        }


def _missing_objects(odb: ObjectStore, digest: str) -> list[str]:
    """The objects of ``digest`` (a tree's files included) that ``odb`` lacks."""
    from mltrail.objects.digest import is_tree

    try:
        if not odb.exists(digest):
            return [digest]
        if not is_tree(digest):
            return []
        tree = odb.read_tree(digest)
    except MltrailError:
        return [digest]
    wanted = {e.digest for e in tree if not e.is_link}
    return sorted(wanted - odb.exists_many(wanted))


def _remotes(root: Path) -> list[tuple[str, str]]:
    """The data remotes of the repository at ``root`` (default first), as (name, url)."""
    from mltrail.data.repo import DataRepo

    try:
        cfg = DataRepo(root).config()
    except MltrailError:
        return []
    out: list[tuple[str, str]] = []
    for name, remote in sorted(cfg.remotes.items(), key=lambda kv: kv[0] != cfg.default_remote):
        url = remote.url
        if "://" not in url and not os.path.isabs(url):
            url = str(root / url)  # a relative local remote is relative to the git root
        out.append((name, url))
    return out


def check_data(doc: dict[str, Any] | None, root: Path | None) -> list[DataItem]:
    """Where each pointer of a run's ``data`` state can be restored from.

    Args:
        doc: The run's ``data`` state document.
        root: The recorded repository (its cache and remotes), if at hand.

    Returns:
        One :class:`DataItem` per recorded pointer.
    """
    from mltrail.objects.cache import Cache
    from mltrail.objects.registry import open_object_store

    items: list[DataItem] = []
    pointers = [p for p in (doc or {}).get("pointers") or [] if isinstance(p, dict)]
    cache_dir = None if root is None else root / ".mltrail" / "cache"
    remotes = _remotes(root) if root is not None else []
    for p in pointers:
        path, digest, source = str(p.get("path")), p.get("digest"), str(p.get("source"))
        if not isinstance(digest, str) or not digest:
            detail = "no content digest recorded (known only by how to get it): not restorable"
            items.append(DataItem(path, None, source, "missing", detail=detail))
            continue
        if source != "mltrail":
            detail = "a DVC output: mltrail records its digest, DVC restores it (`dvc pull`)"
            items.append(DataItem(path, digest, source, "external", detail=detail))
            continue
        item = DataItem(path, digest, source, "missing")
        if cache_dir is not None and cache_dir.is_dir():
            with Cache(cache_dir) as cache:
                lacking = _missing_objects(cache, digest)
            if not lacking:
                item.status, item.where = "cache", str(cache_dir)
                items.append(item)
                continue
        else:
            lacking = [digest]
        for name, url in remotes:
            try:
                still = _missing_objects(open_object_store(url), digest)
            except (MltrailError, OSError, ValueError, ImportError):
                continue
            if not still:
                item.status, item.where, item.remote_url = "remote", f"{name} ({url})", url
                break
        if item.status == "missing":
            places = [f"the cache {cache_dir}" if cache_dir else "no cache (repository gone)"]
            places += [f"remote {name} ({url})" for name, url in remotes] or ["no data remote"]
            item.detail = (
                f"{len(lacking)} object(s), e.g. {lacking[0]}, in none of: {', '.join(places)}"
            )
        items.append(item)
    return items


#: Set by ``mltrail reproduce``: ``{"project/name": version}`` of the original's inputs, so a
#: ``use_artifact("name:latest")`` in the script gets the version the original used even if
#: the alias has moved since (read by :func:`mltrail.artifacts.sdk.use_artifact`).
PIN_ENV = "MLTRAIL_PIN_INPUTS"


def input_pins(doc: dict[str, Any] | None) -> dict[str, int]:
    """``{"project/name": version}`` of the artifact versions a run's ``inputs`` state lists."""
    pins: dict[str, int] = {}
    for entry in (doc or {}).get("inputs") or []:
        if not isinstance(entry, dict) or entry.get("kind") == "reference":
            continue
        name = str(entry.get("name", "")).removeprefix("artifact:")
        version = entry.get("version")
        if name and isinstance(version, int) and not isinstance(version, bool):
            pins[name] = version
    return pins


def check_inputs(doc: dict[str, Any] | None, location: StoreLocation) -> list[DataItem]:
    """Whether the artifact storage still holds each artifact of a run's ``inputs`` state."""
    from mltrail.artifacts.storage import storage_for
    from mltrail.objects.cache import Cache
    from mltrail.objects.registry import open_object_store

    items: list[DataItem] = []
    entries = [i for i in (doc or {}).get("inputs") or [] if isinstance(i, dict)]
    if not entries:
        return items
    storage = storage_for(location)
    for entry in entries:
        name = str(entry.get("name", "")).removeprefix("artifact:")
        label = f"{name}:v{entry.get('version')}"
        digest = entry.get("digest")
        if not isinstance(digest, str) or not digest:
            detail = "no content digest recorded (known only by how to get it): not restorable"
            items.append(DataItem(label, None, "artifact", "missing", detail=detail))
            continue
        if entry.get("kind") == "reference":
            detail = "a reference (bytes not stored by mltrail): the script re-verifies it on use"
            items.append(DataItem(label, digest, "artifact", "external", detail=detail))
            continue
        with Cache(storage.cache_root) as cache:
            lacking = _missing_objects(cache, digest)
        where = str(storage.cache_root)
        if lacking and storage.remote is not None:
            try:
                lacking = _missing_objects(open_object_store(storage.remote), digest)
                where = storage.remote
            except (MltrailError, OSError, ValueError, ImportError):
                pass
        if lacking:
            detail = f"object {lacking[0]} is not in the artifact storage {storage.display}"
            items.append(DataItem(label, digest, "artifact", "missing", detail=detail))
        else:
            detail = "the script fetches it (use_artifact), verified"
            items.append(DataItem(label, digest, "artifact", "cache", where, detail))
    return items


def restore_data(items: list[DataItem], root: Path, workdir: Path) -> list[str]:
    """Check out every restorable pointer's data into ``workdir``, verified.

    Objects missing from the repository's cache are pulled from the remote first (into that
    cache). Items not restorable are skipped (the plan reported them).

    Args:
        items: From :func:`check_data`.
        root: The recorded repository (whose ``.mltrail/cache`` is used).
        workdir: The reproduction's checkout.

    Returns:
        The data paths restored.

    Raises:
        CorruptObjectError: an object does not match its digest (names it).
        NotFoundError: an object vanished since the plan was made.
        UnsafePathError: a data path or manifest would write outside ``workdir``.
    """
    from mltrail.objects.cache import Cache
    from mltrail.objects.checkout import checkout
    from mltrail.objects.paths import safe_join
    from mltrail.objects.registry import open_object_store
    from mltrail.objects.transfer import pull

    done: list[str] = []
    todo = [i for i in items if i.source == "mltrail" and i.status in ("cache", "remote")]
    if not todo:
        return done
    cache_dir = root / ".mltrail" / "cache"
    cache_dir.mkdir(parents=True, exist_ok=True)
    with Cache(cache_dir) as cache, cache.lock():  # shared: a concurrent gc waits
        for item in todo:
            assert item.digest is not None
            if item.status == "remote" and item.remote_url is not None:
                remote = open_object_store(item.remote_url)
                got = pull(remote, cache, [item.digest], progress=False)
                if got.missing:
                    raise NotFoundError(
                        f"{item.path}: {len(got.missing)} object(s) missing from {item.where}"
                    )
            target = safe_join(workdir, str(PurePosixPath(item.path)))
            target.parent.mkdir(parents=True, exist_ok=True)
            checkout(item.digest, cache, target, mode="reflink", verify=True)
            done.append(item.path)
    return done
