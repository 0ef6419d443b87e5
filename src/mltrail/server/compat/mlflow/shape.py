"""The outermost layer for MLflow's paths: errors the middleware answered in our shape
(``{"error": {"code", "message"}}``: 401, 403, 413, 415, 422 from the auth and body-limit
layers, before any MLflow route ran) are rewritten into MLflow's (``error_code``,
``message``), so the client raises the right ``MlflowException`` for them too. Every other
response, and every other path, passes through untouched."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["MLFLOW_PREFIXES", "MlflowErrorShape"]

MLFLOW_PREFIXES = (
    "/api/2.0/mlflow",
    "/ajax-api/2.0/mlflow",
    "/api/3.0/mlflow",
    "/ajax-api/3.0/mlflow",
)
_CODES = {
    "invalid_token": "UNAUTHENTICATED",
    "permission_denied": "PERMISSION_DENIED",
    "cross_origin": "PERMISSION_DENIED",
    "invalid_host": "BAD_REQUEST",
    "not_found": "ENDPOINT_NOT_FOUND",
    "method_not_allowed": "ENDPOINT_NOT_FOUND",
    "payload_too_large": "INVALID_PARAMETER_VALUE",
    "unsupported_media_type": "BAD_REQUEST",
    "invalid_argument": "INVALID_PARAMETER_VALUE",
    "bad_request": "BAD_REQUEST",
    "internal_error": "INTERNAL_ERROR",
}


def _rewrite(body: bytes) -> bytes | None:
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if not isinstance(error, dict) or "error_code" in parsed:
        return None
    code = _CODES.get(str(error.get("code")), "INTERNAL_ERROR")
    return json.dumps({"error_code": code, "message": str(error.get("message", ""))}).encode()


class MlflowErrorShape:
    """See the module docstring."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith(MLFLOW_PREFIXES):
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def shaped(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                kinds = dict(message.get("headers", ()))
                is_json = kinds.get(b"content-type", b"").startswith(b"application/json")
                if message["status"] < 400 or not is_json:
                    await send(message)
                    return
                start = message
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = b"".join(chunks)
            new = _rewrite(body)
            if new is not None:
                body = new
            headers = [(k, v) for k, v in start.get("headers", ()) if k != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body, "more_body": False})

        await self.app(scope, receive, shaped)
