"""Resolve what the user named as a store into a location, and open it.

A store is named by a directory (the embedded store in that folder), ``sqlite:///file.db``,
``postgresql://...``, or ``http(s)://...``. Resolution is light (no driver is imported); the
backend is imported only by :func:`open_store`, through one table of scheme → dotted path,
with an install hint when an extra is missing.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from mltrail._gitignore import GITIGNORE_TEXT, ignore_folder_in_git
from mltrail.errors import InvalidArgumentError, StoreError
from mltrail.settings import default_store_location, settings

if TYPE_CHECKING:
    from collections.abc import Callable

    from mltrail.artifacts.base import ArtifactStore
    from mltrail.store.base import TrackingStore

__all__ = [
    "GITIGNORE_TEXT",
    "StoreLocation",
    "ignore_folder_in_git",
    "ignore_in_git",
    "open_artifact_store",
    "open_store",
    "resolve_location",
]

#: scheme -> (dotted path of a factory ``(StoreLocation, *, migrate) -> TrackingStore``, extra)
BACKENDS: dict[str, tuple[str, str | None]] = {
    "sqlite": ("mltrail.store.sql.store:SqlTrackingStore.from_location", None),
    "postgresql": ("mltrail.store.sql.store:SqlTrackingStore.from_location", "postgres"),
    "http": ("mltrail.store.http:HttpTrackingStore.from_location", None),
}

_SCHEME_ALIASES = {
    "postgres": "postgresql",
    "postgresql+psycopg": "postgresql",
    "https": "http",
}
_DB_FILENAME = "mltrail.db"


@dataclass(frozen=True, slots=True)
class StoreLocation:
    """A resolved store.

    Attributes:
        scheme: backend key in :data:`BACKENDS`.
        uri: the URI a backend opens (``sqlite:////abs/path/mltrail.db`` for a folder).
        spool_dir: where runs writing to this store keep their spools.
        display: the URI with any password removed, safe to print.
    """

    scheme: str
    uri: str
    spool_dir: Path
    display: str
    embedded: bool = False


def _redact(uri: str) -> str:
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = parts.netloc.rsplit("@", 1)
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{netloc[-1]}"))


def _cache_spool_dir(display: str) -> Path:
    digest = hashlib.sha256(display.encode()).hexdigest()[:16]
    return settings().cache_dir / "spool" / digest


def resolve_location(store: str | os.PathLike[str] | None = None) -> StoreLocation:
    """Resolve ``store`` (argument, else ``MLTRAIL_STORE``, else the embedded default).

    Raises:
        InvalidArgumentError: an unknown scheme or a malformed URI.
    """
    raw = os.fspath(store) if store is not None else ""
    if not raw:
        raw = settings().store
    if not raw:
        return _embedded(default_store_location())
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", raw)
    if match is None:
        return _embedded(Path(raw).expanduser())
    scheme = match.group(1).lower()
    scheme = _SCHEME_ALIASES.get(scheme, scheme)
    if scheme == "file":
        return _embedded(Path(urlsplit(raw).path))
    if scheme == "sqlite":
        path = raw[len("sqlite:///") :] if raw.startswith("sqlite:///") else ""
        if not path or path == ":memory:":
            raise InvalidArgumentError(
                f"store {raw!r}: use sqlite:///relative/file.db or sqlite:////absolute/file.db"
            )
        db = Path(path).expanduser().resolve()
        return StoreLocation(
            "sqlite", f"sqlite:///{db}", db.parent / f"{db.stem}.spool", f"sqlite:///{db}"
        )
    if scheme == "http" and not urlsplit(raw).hostname:
        raise InvalidArgumentError(f"store {raw!r}: a server URL needs a host: https://host:port")
    if scheme in BACKENDS:
        display = _redact(raw)
        return StoreLocation(scheme, raw, _cache_spool_dir(display), display)
    raise InvalidArgumentError(
        f"store {raw!r}: unknown scheme {scheme!r}; use a directory, sqlite:///, or postgresql://"
    )


def _embedded(folder: Path) -> StoreLocation:
    folder = folder.resolve()
    db = folder / _DB_FILENAME
    return StoreLocation("sqlite", f"sqlite:///{db}", folder / "spool", str(folder), embedded=True)


_open_lock = threading.Lock()
_open_stores: dict[str, TrackingStore] = {}
#: called with a store's URI before every open: the events layer waits there for the runs of
#: this process that have finished but are still draining into that store (read-your-writes)
_before_open: list[Callable[[str], object]] = []


def before_open(hook: Callable[[str], object]) -> None:
    """Call ``hook(uri)`` before each :func:`open_store` (once per distinct hook)."""
    if hook not in _before_open:
        _before_open.append(hook)


def open_store(
    location: StoreLocation | str | None = None,
    *,
    shared: bool = True,
    migrate: bool | None = None,
) -> TrackingStore:
    """Open (or reuse, within this process) the store at ``location``.

    Stores are cached per URI so that many runs in one process share connections; pass
    ``shared=False`` for a private instance.

    Args:
        location: the store (see :func:`resolve_location`).
        shared: reuse this process's open store of the same URI.
        migrate: whether a database at an older schema is upgraded on open; None is the
            backend's default (SQLite yes, PostgreSQL no: ``mltrail db upgrade``).

    Raises:
        StoreError: the backend is missing an extra, or the store cannot be opened.
        SchemaVersionError: the database's schema is older (not migrated) or newer.
    """
    loc = location if isinstance(location, StoreLocation) else resolve_location(location)
    for hook in _before_open:
        hook(loc.uri)
    if shared:
        with _open_lock:
            cached = _open_stores.get(loc.uri)
            if cached is None:
                cached = _open_stores[loc.uri] = _create(loc, migrate)
            return cached
    return _create(loc, migrate)


def ignore_in_git(location: StoreLocation) -> None:
    """Make git ignore an embedded store's folder, so it never makes the code look dirty."""
    if location.embedded:
        ignore_folder_in_git(Path(location.display))


def _create(loc: StoreLocation, migrate: bool | None = None) -> TrackingStore:
    ignore_in_git(loc)
    target, extra = BACKENDS[loc.scheme]
    module_name, _, attr = target.partition(":")
    try:
        obj: object = importlib.import_module(module_name)
    except ImportError as exc:
        hint = f" (install it with: pip install 'mltrail[{extra}]')" if extra else ""
        raise StoreError(f"the {loc.scheme} backend needs {exc.name}{hint}") from exc
    for part in attr.split("."):
        obj = getattr(obj, part)
    store: TrackingStore = obj(loc, migrate=migrate)  # type: ignore[operator]
    return store


def forget_open_stores() -> None:
    """Close and drop every cached store (tests, and after ``fork``)."""
    with _open_lock:
        for store in _open_stores.values():
            store.close()
        _open_stores.clear()


def open_artifact_store(location: StoreLocation | str | None = None) -> ArtifactStore:
    """The artifact store of the tracking store at ``location`` (opened as :func:`open_store`).

    SQL stores keep artifacts in their database; a server (``http(s)://``) through its
    ``/api/v1/artifacts`` routes.

    Raises:
        ArtifactsUnsupportedError: the store has no artifact support.
    """
    from mltrail.errors import ArtifactsUnsupportedError
    from mltrail.store.optional import HasArtifacts

    if isinstance(location, StoreLocation) and location.scheme not in BACKENDS:
        raise ArtifactsUnsupportedError(
            f"artifacts are not supported for the {location.scheme} store {location.display}: "
            "log artifacts to an embedded, sqlite:///, postgresql:// or http(s):// store"
        )
    store = open_store(location)
    if not isinstance(store, HasArtifacts):
        raise ArtifactsUnsupportedError(f"artifacts are not supported by the store {store.uri}")
    return store.artifacts()
