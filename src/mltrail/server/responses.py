"""The JSON error body every part of the server answers with, and security headers."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.types import Message, Send

__all__ = [
    "CSP",
    "FILE_CSP",
    "SECURITY_HEADERS",
    "error_body",
    "send_error",
    "send_html",
]

#: On every response; HTML pages can load only our own scripts, styles and images.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
#: On downloaded run files: nothing in them can run, even if a browser renders them.
FILE_CSP = "sandbox; default-src 'none'; frame-ancestors 'none'"
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    # not no-referrer: under it Chromium sends ``Origin: null`` on our own form posts, and
    # the same-origin check must see the real origin; other sites still get no referrer
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-resource-policy", b"same-origin"),
)


def error_body(code: str, message: str, field: str | None = None) -> bytes:
    """``{"error": {"code", "message", "field"?}}`` as UTF-8 JSON bytes."""
    error: dict[str, str] = {"code": code, "message": message}
    if field is not None:
        error["field"] = field
    return json.dumps({"error": error}, ensure_ascii=False).encode("utf-8", "replace")


async def send_error(
    send: Send,
    status: int,
    code: str,
    message: str,
    extra_headers: tuple[tuple[bytes, bytes], ...] = (),
    field: str | None = None,
) -> None:
    """Send a complete JSON error response on a raw ASGI ``send``."""
    body = error_body(code, message, field)
    await _send(send, status, b"application/json", body, extra_headers)


async def send_html(
    send: Send, status: int, html: str, extra_headers: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    """Send a complete HTML response on a raw ASGI ``send``."""
    body = html.encode("utf-8")
    await _send(send, status, b"text/html; charset=utf-8", body, extra_headers)


async def _send(
    send: Send,
    status: int,
    content_type: bytes,
    body: bytes,
    extra_headers: tuple[tuple[bytes, bytes], ...],
) -> None:
    start: Message = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", content_type),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-store"),
            *extra_headers,
        ],
    }
    await send(start)
    await send({"type": "http.response.body", "body": body})
