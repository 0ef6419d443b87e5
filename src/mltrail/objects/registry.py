"""Open an object store by URL: one table of scheme → backend, with install hints.

``open_object_store(url)`` picks the backend from the URL's scheme (a path without one is a
local directory) through :data:`BACKENDS`; the backend's module is imported only then, so a
local store never imports fsspec. A scheme the table does not name goes to
:class:`~mltrail.objects.fsspec_store.FsspecObjectStore`, which opens whatever fsspec knows
(``sftp://``, ``hdfs://``, ...) or says it cannot. A backend whose library is missing is a
:class:`~mltrail.errors.StoreError` that says what to install.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mltrail.errors import StoreError

if TYPE_CHECKING:
    import os

    from mltrail.objects.base import ObjectStore

__all__ = ["BACKENDS", "Backend", "open_object_store", "scheme_of"]

_LOCAL = "mltrail.objects.local:LocalObjectStore"
_FSSPEC = "mltrail.objects.fsspec_store:FsspecObjectStore"
_HTTP = "mltrail.objects.http:HttpObjectStore"
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


@dataclass(frozen=True, slots=True)
class Backend:
    """Where a scheme's backend lives and what it needs.

    Attributes:
        target: ``"module:Class"``; the class is called with ``(url, **storage_options)``.
        requires: modules that must be importable (checked without importing them).
        install: what to ``pip install`` when one is missing.
    """

    target: str
    requires: tuple[str, ...] = ()
    install: str | None = None


def _s3() -> Backend:
    return Backend(_FSSPEC, ("s3fs",), "mltrail[s3]")


#: scheme -> backend. ``""`` is a path without a scheme; ``"*"`` every scheme not listed.
BACKENDS: dict[str, Backend] = {
    "": Backend(_LOCAL),
    "file": Backend(_LOCAL),
    "http": Backend(_HTTP),
    "https": Backend(_HTTP),
    "s3": _s3(),
    "s3a": _s3(),
    "gs": Backend(_FSSPEC, ("gcsfs",), "gcsfs"),
    "gcs": Backend(_FSSPEC, ("gcsfs",), "gcsfs"),
    "az": Backend(_FSSPEC, ("adlfs",), "adlfs"),
    "abfs": Backend(_FSSPEC, ("adlfs",), "adlfs"),
    "abfss": Backend(_FSSPEC, ("adlfs",), "adlfs"),
    "*": Backend(_FSSPEC),
}


def scheme_of(url: str | os.PathLike[str]) -> str:
    """The URL's scheme, lower case; ``""`` for a local path (a ``PathLike`` is always one)."""
    if not isinstance(url, str):
        return ""
    match = _SCHEME.match(url)
    return match.group(1).lower() if match else ""


def open_object_store(url: str | os.PathLike[str], **storage_options: Any) -> ObjectStore:
    """Open the object store at ``url`` (a directory, ``file://``, ``s3://bucket/prefix``,
    ``memory://name``, ``http(s)://server``, any fsspec URL).

    Args:
        url: Where the store is.
        **storage_options: Passed to the backend (fsspec options; ``token=`` for a server).

    Raises:
        StoreError: the backend needs a library that is not installed (the message says
            what to install).
        InvalidArgumentError: the URL cannot be opened (unknown protocol, bad options).

    Example:
        >>> import tempfile
        >>> store = open_object_store(tempfile.mkdtemp())
        >>> store.read_bytes(store.add_bytes(b"hello"))
        b'hello'
    """
    scheme = scheme_of(url)
    backend = BACKENDS.get(scheme) or BACKENDS["*"]
    for module in backend.requires:
        if importlib.util.find_spec(module) is None:
            hint = f" (install it with: pip install '{backend.install}')" if backend.install else ""
            raise StoreError(f"{scheme}:// object stores need {module}{hint}")
    module_name, _, attr = backend.target.partition(":")
    cls: Any = getattr(importlib.import_module(module_name), attr)
    store: ObjectStore = cls(url, **storage_options)
    return store
