"""An object store on an ``mltrail server``: ``http(s)://host:port`` as a data remote.

``mltrail data remote add team https://mltrail.example:5000`` and artifact storage next to a
remote tracking store both land here. Objects travel through the server's
``/api/v1/objects/{digest}`` routes (docs/rest-api.md): the server verifies every upload
against its digest before storing it, and this side verifies every download the same way
(transfers do, through the same code paths as any other remote).

:class:`HttpObjectStore` is an :class:`~mltrail.objects.base.ObjectStore` and a
:class:`~mltrail.objects.base.BulkObjectStore` (transfers treat it like any fsspec remote)
that talks HTTP itself through :class:`mltrail._http.ServerClient`: one keep-alive connection
per thread, ``MLTRAIL_TOKEN`` (or ``token=``) as the bearer token. It is neither listable
nor prunable: a client may not enumerate or delete a server's objects (``gc`` and a full
``verify`` run on the server's own store).
"""

from __future__ import annotations

import io
import os
from concurrent.futures import ThreadPoolExecutor
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import quote

from mltrail.errors import InvalidArgumentError, NotFoundError
from mltrail.objects._shared import StoreMixin
from mltrail.objects.digest import DEFAULT_ALGO, hash_bytes, parse_digest
from mltrail.objects.verify import checked_file_digest, verify_bytes, verify_file

if TYPE_CHECKING:
    from collections.abc import Iterable

    from mltrail.objects.base import BulkObjectStore

__all__ = ["HttpObjectStore", "is_http_url"]

_JOBS = 8
_MISSING_BATCH = 10_000
_OCTETS = "application/octet-stream"


def is_http_url(url: str | os.PathLike[str]) -> bool:
    """Whether ``url`` names a server (``http://`` or ``https://``)."""
    text = os.fspath(url).lower()
    return text.startswith(("http://", "https://"))


class HttpObjectStore(StoreMixin):
    """Objects kept by an ``mltrail server`` (see the module docstring)."""

    def __init__(self, url: str | os.PathLike[str], **storage_options: Any) -> None:
        from mltrail._http import ServerClient

        token = storage_options.pop("token", None)
        if storage_options:
            raise InvalidArgumentError(
                f"storage options {sorted(storage_options)} do not apply to a server remote"
            )
        self.url = os.fspath(url).rstrip("/")
        self._client = ServerClient(self.url, token)

    @staticmethod
    def _route(digest: str) -> str:
        parse_digest(digest)  # refuse anything that is not a digest before it reaches a URL
        return f"/api/v1/objects/{quote(digest, safe=':.')}"

    def path(self, digest: str) -> str:
        """The object's URL."""
        return self.url + self._route(digest)

    def close(self) -> None:
        """Close the connections."""
        self._client.close()

    def exists(self, digest: str) -> bool:  # noqa: D102
        status, _, _ = self._client.request("HEAD", self._route(digest), ok_404=True)
        return status == 200

    def exists_many(self, digests: Iterable[str]) -> set[str]:  # noqa: D102
        wanted = sorted(set(digests))
        missing: set[str] = set()
        for i in range(0, len(wanted), _MISSING_BATCH):
            chunk = wanted[i : i + _MISSING_BATCH]
            out = self._client.json(
                "POST",
                "/api/v1/objects/missing",
                body=_json_bytes({"digests": chunk}),
                content_type="application/json",
            )
            missing.update(out["missing"])
        return set(wanted) - missing

    def size(self, digest: str) -> int:  # noqa: D102
        status, headers, _ = self._client.request("HEAD", self._route(digest), ok_404=True)
        if status == 404:
            raise NotFoundError(f"object {digest} is not on {self.url}")
        return int(headers.get("content-length", "0"))

    def put_many(self, items: dict[str, bytes], *, verified: bool = False) -> None:
        """Upload objects (digest -> bytes) concurrently, each hashed first unless
        ``verified`` (the server hashes them again before storing)."""
        if not verified:
            for digest, data in items.items():
                verify_bytes(digest, data, "data to store")

        def one(item: tuple[str, bytes]) -> None:
            self._client.request("PUT", self._route(item[0]), body=item[1], content_type=_OCTETS)

        _each(one, list(items.items()))

    def put_local_file(
        self, digest: str, local: str | os.PathLike[str], *, verified: bool = False
    ) -> None:
        """Upload the local file ``local`` as ``digest``, streamed; hashed first unless
        ``verified`` (the server hashes it again before storing)."""
        if not verified:
            verify_file(digest, local)
        with open(local, "rb") as f:
            self._client.request("PUT", self._route(digest), body=f, content_type=_OCTETS)

    def get_many(self, digests: Iterable[str]) -> dict[str, bytes | BaseException]:
        """Download objects concurrently (unverified): digest -> bytes, or the error."""
        out: dict[str, bytes | BaseException] = {}

        def one(digest: str) -> None:
            try:
                out[digest] = self._get(digest)
            except Exception as exc:  # reported per object, like fsspec's on_error="return"
                out[digest] = exc

        _each(one, list(digests))
        return out

    def _get(self, digest: str) -> bytes:
        return self._client.request("GET", self._route(digest), accept=_OCTETS)[2]

    def get_to_local(self, digest: str, local: str | os.PathLike[str]) -> None:
        """Download an object into the local file ``local`` (unverified), streamed."""
        with open(local, "wb") as f:
            self._client.request("GET", self._route(digest), accept=_OCTETS, sink=f)

    def add_bytes(  # noqa: D102
        self, data: bytes, *, algo: str = DEFAULT_ALGO, tree: bool = False
    ) -> str:
        digest = hash_bytes(data, algo, tree=tree)
        self._client.request("PUT", self._route(digest), body=data, content_type=_OCTETS)
        return digest

    def add_file(  # noqa: D102
        self, path: str | os.PathLike[str], digest: str | None = None
    ) -> str:
        actual = checked_file_digest(path, digest)
        self.put_local_file(actual, path, verified=True)
        return actual

    def read_bytes(self, digest: str, *, verify: bool = True) -> bytes:  # noqa: D102
        data = self._get(digest)
        if verify:
            verify_bytes(digest, data, self.path(digest))
        return data

    def open(self, digest: str) -> IO[bytes]:  # noqa: D102
        return io.BytesIO(self._get(digest))


def _each(fn: Any, items: list[Any]) -> None:
    if len(items) <= 1:
        for item in items:
            fn(item)
        return
    with ThreadPoolExecutor(min(_JOBS, len(items))) as pool:
        for _ in pool.map(fn, items):
            pass


def _json_bytes(obj: object) -> bytes:
    import json

    return json.dumps(obj).encode()


if TYPE_CHECKING:  # the backend satisfies its protocols (checked by mypy)
    _bulk: type[BulkObjectStore] = HttpObjectStore
