"""MLflow's artifact proxy (``/api/2.0/mlflow-artifacts/...``) over our run files.

A run's ``artifact_uri`` is ``mlflow-artifacts:/<experiment>/<run>/artifacts``, which MLflow's
client turns into ``PUT``/``GET /api/2.0/mlflow-artifacts/artifacts/<experiment>/<run>/
artifacts/<path>`` and ``GET /api/2.0/mlflow-artifacts/artifacts?path=...`` (a listing). The
bytes land where ``PUT /api/v1/runs/{id}/files`` puts them (``server/filestore.py``: named
by their SHA-256, written to a temp file, fsynced, renamed) and the path becomes a run file of
the run (``run_files``), so the UI and ``mltrail`` see MLflow's artifacts as the run's files.
The path is checked like every run-file path (``server/paths.py``: relative, no ``..``).
"""

from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, Response

from mltrail.errors import (
    InvalidArgumentError,
    NotFoundError,
    NotSupportedError,
    PayloadTooLargeError,
)
from mltrail.server.compat.mlflow import convert as cv
from mltrail.server.compat.mlflow.errors import add_endpoint, error_response
from mltrail.server.compat.mlflow.experiments import experiments_of
from mltrail.server.compat.mlflow.runs import visible_run
from mltrail.server.paths import logical_path
from mltrail.server.responses import FILE_CSP
from mltrail.store.optional import HasRunFiles

if TYPE_CHECKING:
    from mltrail.server.compat.mlflow.errors import Fields
    from mltrail.server.filestore import FileStore
    from mltrail.server.limits import Limits
    from mltrail.store.run_files import RunFiles

__all__ = ["proxy_router", "router"]

router = APIRouter()
proxy_router = APIRouter()
_PREFIX = "/api/2.0/mlflow-artifacts"
ArtifactPath = Annotated[str, Path(min_length=1, max_length=4096)]


def _files(request: Request) -> RunFiles:
    store = request.app.state.store
    if not isinstance(store, HasRunFiles):
        raise NotFoundError("this store keeps no run files")
    return store.run_files()


def _split(request: Request, path: str) -> tuple[str, str]:
    """``(run_id, logical path or "")`` of ``<experiment>/<run>/artifacts[/<path>]``, the run
    checked against the principal (a foreign or unknown one is 404 alike)."""
    parts = path.strip("/").split("/", 3)
    if len(parts) < 3 or parts[2] != "artifacts":
        raise NotFoundError(f"no artifact at {path!r}: expected <experiment>/<run>/artifacts/...")
    exp_id, run_id = parts[0], parts[1]
    record = visible_run(request, run_id)
    if experiments_of(request).id_of_project(record.project) != exp_id:
        raise NotFoundError(f"Run with id={run_id} not found")
    rest = parts[3] if len(parts) == 4 else ""
    return record.run_id, (logical_path(rest) if rest.strip("/") else "")


def _listing(request: Request, run_id: str, folder: str) -> list[dict[str, Any]]:
    """The entries directly in ``folder`` of the run's files (folders first seen, sizes)."""
    prefix = f"{folder.rstrip('/')}/" if folder else ""
    entries: dict[str, dict[str, Any]] = {}
    for f in _files(request).list(run_id):
        if not f.path.startswith(prefix):
            continue
        head, sep, _ = f.path[len(prefix) :].partition("/")
        if sep:
            entries.setdefault(head, {"path": head, "is_dir": True})
        else:
            entries[head] = {"path": head, "is_dir": False, "file_size": f.size}
    return [entries[k] for k in sorted(entries)]


def _list_proxy(request: Request, fields: Fields) -> dict[str, Any]:
    path = cv.text(fields, "path")
    run_id, folder = _split(request, path)
    return {"files": _listing(request, run_id, folder)}


def list_artifacts(request: Request, fields: Fields) -> dict[str, Any]:
    """``GET /api/2.0/mlflow/artifacts/list``: the tracking API's listing of a run."""
    record = visible_run(request, cv.run_id_field(fields))
    folder = cv.text(fields, "path").strip("/")
    folder = logical_path(folder) if folder else ""
    exp_id = experiments_of(request).id_of_project(record.project)
    files = _listing(request, record.run_id, folder)
    if folder:
        files = [{**f, "path": f"{folder}/{f['path']}"} for f in files]
    return {"root_uri": cv.artifact_uri(exp_id, record.run_id), "files": files}


@proxy_router.get(_PREFIX + "/artifacts/{artifact_path:path}", include_in_schema=False)
def download(request: Request, artifact_path: ArtifactPath) -> Response:
    try:
        run_id, path = _split(request, artifact_path)
        if not path:
            raise NotFoundError(f"{artifact_path!r} is a folder")
        record = _files(request).get(run_id, path)
        filestore: FileStore = request.app.state.filestore
        disk = filestore.open_path(record.digest, record.size)
    except Exception as exc:
        return error_response(exc, "GET mlflow-artifacts")
    return FileResponse(
        disk,
        media_type="application/octet-stream",
        headers={"Content-Security-Policy": FILE_CSP, "X-Content-Digest": record.digest},
    )


def _place(filestore: FileStore, tmp: str, digest: str) -> None:
    final = filestore.path_for(digest)
    if final.is_file():  # the same bytes were stored before: keep the first copy
        os.unlink(tmp)
        return
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, final)
    fd = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@proxy_router.put(_PREFIX + "/artifacts/{artifact_path:path}", include_in_schema=False)
async def upload(request: Request, artifact_path: ArtifactPath) -> Response:
    """Stream the body to a temp file while hashing it, then store it under its digest."""
    filestore: FileStore = request.app.state.filestore
    limits: Limits = request.app.state.limits
    tmp = str(filestore.temp_path())
    placed = False
    try:
        run_id, path = await run_in_threadpool(_split, request, artifact_path)
        if not path:
            raise InvalidArgumentError("an artifact needs a file name")
        hasher = hashlib.sha256()
        size = 0
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limits.max_upload_bytes:
                    raise PayloadTooLargeError(
                        f"artifact is over the limit of {limits.max_upload_bytes} bytes"
                    )
                hasher.update(chunk)
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view) :]
            await run_in_threadpool(os.fsync, fd)
        finally:
            os.close(fd)
        digest = f"sha256:{hasher.hexdigest()}"
        await run_in_threadpool(_place, filestore, tmp, digest)
        placed = True
        await run_in_threadpool(_files(request).put, run_id, path, digest, size)
    except Exception as exc:
        return error_response(exc, "PUT mlflow-artifacts")
    finally:
        if not placed:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
    return JSONResponse({})


@proxy_router.delete(_PREFIX + "/artifacts/{artifact_path:path}", include_in_schema=False)
def delete(request: Request, artifact_path: ArtifactPath) -> Response:
    try:
        _split(request, artifact_path)
        raise NotSupportedError("run files are kept for the run's record; they are not deleted")
    except Exception as exc:
        return error_response(exc, "DELETE mlflow-artifacts")


add_endpoint(proxy_router, "/artifacts", "GET", _list_proxy, prefixes=(_PREFIX,))
add_endpoint(router, "/artifacts/list", "GET", list_artifacts)
