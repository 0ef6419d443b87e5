"""``plotly.min.js`` served from the installed ``plotly`` package (never copied here)."""

from __future__ import annotations

import gzip
import threading

from fastapi import APIRouter, Request
from fastapi.responses import Response

from mltrail.server.ui import _plotly

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
_CACHE_FOREVER = "public, max-age=31536000, immutable"
_lock = threading.Lock()
_bodies: dict[str, bytes] = {}


def _body_unlocked(encoding: str) -> bytes:
    if encoding not in _bodies:
        raw = _bodies.get("identity") or _plotly.script_path().read_bytes()
        _bodies["identity"] = raw
        if encoding == "gzip":
            _bodies["gzip"] = gzip.compress(raw, compresslevel=6, mtime=0)
    return _bodies[encoding]


def _body(encoding: str) -> bytes:
    """The script's bytes, read (and gzip-compressed) once per process."""
    with _lock:
        return _body_unlocked(encoding)


@router.get("/ui/plotly-{version}.css")
def plotly_stylesheet(version: str) -> Response:
    """plotly.js's own CSS as a stylesheet (see :func:`mltrail.server.ui._plotly.stylesheet`)."""
    if version != _plotly.version():
        return Response("no such plotly.js version\n", 404, media_type="text/plain")
    with _lock:
        if "css" not in _bodies:
            _bodies["css"] = _plotly.stylesheet(_body_unlocked("identity").decode("utf-8")).encode()
        css = _bodies["css"]
    return Response(css, media_type="text/css", headers={"Cache-Control": _CACHE_FOREVER})


@router.get("/ui/plotly-{version}.min.js")
def plotly_js(request: Request, version: str) -> Response:
    """plotly.js of the installed ``plotly`` package; 404 for any other version."""
    if version != _plotly.version():
        return Response("no such plotly.js version\n", 404, media_type="text/plain")
    accepts = request.headers.get("accept-encoding", "")
    encoding = "gzip" if "gzip" in accepts.lower() else "identity"
    headers = {"Cache-Control": _CACHE_FOREVER, "Vary": "Accept-Encoding"}
    if encoding == "gzip":
        headers["Content-Encoding"] = "gzip"
    return Response(_body(encoding), media_type="text/javascript", headers=headers)
