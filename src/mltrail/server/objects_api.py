"""``/api/v1/objects``: the server as a content-addressed object store (data and artifacts).

Objects live under ``<artifacts>/objects`` (a :class:`~mltrail.objects.local.LocalObjectStore`,
or an fsspec store for an ``s3://`` root: :mod:`mltrail.server.storage`), sharded by digest
exactly like a local cache or remote, so ``mltrail data push`` to the server and artifact
uploads share one layout. An upload streams to a temp
file in the upload area, then the object layer verifies its bytes against the digest in the
URL before it appears under its real name; a mismatch is 400 ``digest_mismatch`` and
nothing is stored. Trees (``...tree`` digests) are stored as they come; every checkout
validates a manifest before writing anything, so the server need not trust them.

Knowing a digest is not a permission. An unscoped token reads every object; a token scoped
to one project reads (``GET``, ``HEAD``, ``missing``) only the objects its project references
(:mod:`mltrail.server.scoping`): those a token of the project uploaded (their bytes verified,
even when the server already had them, so an upload proves possession and says nothing about
what others stored), and those of the project's artifact versions (a tree's files too).
Anything else answers exactly as a missing object does. Writing needs a write token (the auth
middleware).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from mltrail.errors import (
    CorruptObjectError,
    InvalidArgumentError,
    NotFoundError,
    PayloadTooLargeError,
)
from mltrail.server.auth import principal_of
from mltrail.server.filestore import DigestMismatchError
from mltrail.server.responses import FILE_CSP
from mltrail.server.scoping import readable_objects, scoped_reads

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mltrail.objects.base import ObjectStore
    from mltrail.server.filestore import FileStore
    from mltrail.server.limits import Limits

__all__ = ["open_objects", "router"]

TREE_SUFFIX = ".tree"
OBJECT_DIGEST = r"^(blake3|sha256|md5):[0-9a-f]{32,64}(\.tree)?$"
MAX_QUERY_DIGESTS = 10_000

router = APIRouter(prefix="/api/v1", tags=["objects"])

DigestPath = Annotated[str, Path(pattern=OBJECT_DIGEST, description="e.g. blake3:<hex>")]
_BYTES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
    }
}
_UPLOAD = {
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


class ObjectOut(BaseModel):
    digest: str
    size: int
    stored: bool = Field(description="False when the object was already there")


class MissingBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    digests: list[Annotated[str, Field(pattern=OBJECT_DIGEST)]] = Field(
        max_length=MAX_QUERY_DIGESTS
    )


class MissingOut(BaseModel):
    missing: list[str]


def open_objects(artifacts_root: str | os.PathLike[str]) -> ObjectStore:
    """The server's object store under ``<artifacts>/objects``."""
    from mltrail.objects.local import LocalObjectStore

    odb = LocalObjectStore(os.path.join(os.fspath(artifacts_root), "objects"))
    odb.root.mkdir(parents=True, exist_ok=True)
    return odb


def _odb(request: Request) -> ObjectStore:
    odb: ObjectStore = request.app.state.objects
    return odb


def _missing(digest: str) -> NotFoundError:
    return NotFoundError(f"object {digest} is not on this server")


def _size_or_404(odb: ObjectStore, digest: str) -> int:
    try:
        return odb.size(digest)
    except (FileNotFoundError, NotFoundError):
        raise _missing(digest) from None


def _readable_size(request: Request, digest: str) -> int:
    """The object's size, if the principal may read it (404 alike for missing and hidden)."""
    who = principal_of(request)
    store = request.app.state.store
    if not readable_objects(who, store, [digest]):
        raise _missing(digest)
    size = _size_or_404(_odb(request), digest)
    if who.project is not None and digest.endswith(TREE_SUFFIX):
        _refer_to_tree_files(request, who.project, digest)
    return size


def _refer_to_tree_files(request: Request, project: str, digest: str) -> None:
    """Let ``project`` read the files of a tree that one of its artifact versions is.

    Versions recorded before object references existed had only the tree referenced; this
    links its files the first time a token of the project reads the tree (a tree the
    project merely uploaded opens nothing: the files need their own upload).
    """
    reads = scoped_reads(request.app.state.store)
    if reads is None or not reads.is_version_digest(digest, project):
        return
    files = tree_files(_odb(request), digest)
    if files and len(reads.readable_objects(files, project)) < len(files):
        reads.add_object_refs(project, files)


def tree_files(odb: ObjectStore, digest: str) -> list[str]:
    """The object digests of the files of the stored tree ``digest`` (none if unreadable)."""
    from mltrail.objects.digest import parse_digest
    from mltrail.objects.tree import Tree

    try:
        data = odb.read_bytes(digest, verify=False)
        tree = Tree.from_bytes(data, algo=parse_digest(digest)[0])
    except (OSError, InvalidArgumentError, NotFoundError):
        return []
    return sorted(tree.digests())


def refer_project(store: Any, project: str, digests: list[str]) -> None:
    """Record that ``project`` references the objects ``digests`` (when the store can)."""
    reads = scoped_reads(store)
    if reads is not None:
        reads.add_object_refs(project, digests)


@router.head("/objects/{digest}", response_class=Response)
def head_object(request: Request, digest: DigestPath) -> Response:
    """Whether the object is stored (its size in ``Content-Length``)."""
    size = _readable_size(request, digest)
    return Response(headers={"Content-Length": str(size), "X-Content-Digest": digest})


@router.get("/objects/{digest}", response_class=Response, responses=_BYTES)
def get_object(request: Request, digest: DigestPath) -> Response:
    """The object's bytes (clients verify them against the digest on arrival)."""
    from fastapi.responses import FileResponse, StreamingResponse

    from mltrail.objects.local import LocalObjectStore

    odb = _odb(request)
    size = _readable_size(request, digest)
    headers = {"Content-Security-Policy": FILE_CSP, "X-Content-Digest": digest}
    expires_s = request.app.state.config.presign_s
    if expires_s:  # opt-in: the client fetches the bytes from the object store itself
        from fastapi.responses import RedirectResponse

        url = request.app.state.storage.presigned_url(digest, expires_s)  # signed locally
        headers["Cache-Control"] = "no-store"
        return RedirectResponse(url, status_code=307, headers=headers)
    if isinstance(odb, LocalObjectStore):
        return FileResponse(
            odb.local_path(digest), media_type="application/octet-stream", headers=headers
        )
    stream = odb.open(digest)  # an object store (s3://...): streamed through

    def chunks() -> Iterator[bytes]:
        with stream:
            while block := stream.read(1 << 20):
                yield block

    headers["Content-Length"] = str(size)
    return StreamingResponse(chunks(), media_type="application/octet-stream", headers=headers)


@router.put("/objects/{digest}", status_code=201, response_model=ObjectOut, openapi_extra=_UPLOAD)
async def put_object(request: Request, digest: DigestPath) -> JSONResponse:
    """Store an object; its bytes must hash to ``digest`` (else 400, nothing stored).

    A project-scoped upload of an object the server has but the project does not reference
    is received and verified like a new one (and answered alike), then referenced.
    """
    odb = _odb(request)
    filestore: FileStore = request.app.state.filestore
    limits: Limits = request.app.state.limits
    who = principal_of(request)
    store = request.app.state.store
    exists = await run_in_threadpool(odb.exists, digest)
    readable: set[str] = set()
    if exists:
        readable = await run_in_threadpool(readable_objects, who, store, [digest])
    if readable:
        async for _ in request.stream():  # drain: the client may already be sending
            pass
        return JSONResponse({"digest": digest, "size": odb.size(digest), "stored": False})
    tmp = filestore.temp_path()
    size = 0
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limits.max_object_bytes:
                    raise PayloadTooLargeError(
                        f"object is over the limit of {limits.max_object_bytes} bytes"
                    )
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        if exists:  # the server has it, the project does not: the upload proves possession
            await run_in_threadpool(_verify, digest, tmp)
            stored = True
        else:
            stored = await run_in_threadpool(_place, odb, digest, tmp, size)
    finally:
        tmp.unlink(missing_ok=True)
    if who.project is not None:
        await run_in_threadpool(refer_project, store, who.project, [digest])
    return JSONResponse({"digest": digest, "size": size, "stored": stored}, status_code=201)


def _verify(digest: str, tmp: Any) -> None:
    """Raise what :func:`_place` raises when ``tmp`` does not hash to ``digest``."""
    from mltrail.objects.verify import verify_file

    try:
        verify_file(digest, tmp, "the data received")
    except CorruptObjectError as exc:
        raise DigestMismatchError(f"uploaded bytes do not match {digest}: {exc}") from None


def _place(odb: ObjectStore, digest: str, tmp: Any, size: int) -> bool:
    """Move the upload into the store; the object layer hashes it before it gets its name
    (an object store, ``s3://...``: hashed here, then one PUT)."""
    from mltrail.objects.local import LocalObjectStore

    try:
        if not isinstance(odb, LocalObjectStore):
            odb.add_file(tmp, digest)
            return True
        with odb.writer() as writer:
            return writer.put_from(digest, lambda dest: os.replace(tmp, dest), size=size)
    except CorruptObjectError as exc:
        raise DigestMismatchError(f"uploaded bytes do not match {digest}: {exc}") from None


@router.post("/objects/missing", response_model=MissingOut)
def missing_objects(request: Request, body: MissingBody) -> JSONResponse:
    """Which of ``digests`` the server does not have (one call before a push).

    For a project-scoped token, an object its project does not reference is missing.
    """
    have = _odb(request).exists_many(body.digests)
    have &= readable_objects(principal_of(request), request.app.state.store, sorted(have))
    return JSONResponse({"missing": [d for d in body.digests if d not in have]})
