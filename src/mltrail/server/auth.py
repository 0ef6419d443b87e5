"""Authentication, authorisation and HTTP hardening: one pure ASGI middleware in front of all.

:class:`SecurityMiddleware` is the outermost layer of the app. For every HTTP request, in
order:

1. **Security headers** on every response it lets out (``nosniff``, ``same-origin`` referrer,
   ``DENY`` framing, a strict Content-Security-Policy unless the response set a stricter
   one), and any ``Access-Control-*`` header removed: the server never speaks CORS.
2. **Host check** against DNS rebinding: the ``Host`` header must name loopback, the bound
   host or a configured name (400 ``invalid_host`` otherwise), with or without auth.
3. **Default-deny auth** (``mltrail server``): every path but ``GET /health`` and the UI's
   stylesheet (``GET /ui/static/ui.css``: the login page is styled; no data in it) needs
   ``Authorization: Bearer mlt_<id>_<secret>`` or the ``mltrail_token`` cookie; a token in
   the query string counts for nothing. Missing/invalid → 401 (an HTML login form for a
   browser's page request). ``POST /login`` with a valid token in its form field ``token``
   passes to the UI's handler, which sets the cookie. Without auth (``mltrail ui``) every
   request acts as a local admin, and the Host check still applies.
4. **Scope:** GET/HEAD/OPTIONS need ``read``, anything else ``write`` (403 otherwise);
   ``POST /login`` and ``/logout`` need only ``read``.
5. **Cross-origin writes** (a page elsewhere posting to us): a non-GET request gets 403
   ``cross_origin`` when its ``Origin`` names another host, when it is ``null`` (an opaque
   origin: a sandboxed frame, a ``file:`` or ``data:`` page, which may be anyone's; our own
   pages never send it, as the ``same-origin`` referrer policy lets the browser send the
   real origin), or when the browser's ``Sec-Fetch-Site`` says the request came from
   another site. No ``Origin`` at all is a non-browser client (SDK, CLI, curl): allowed.
6. **Last resort:** an exception no handler turned into a response becomes a 500 JSON error
   without a traceback (logged here).

Project-scoped tokens are enforced by the routes (:func:`principal_of`): a run of another
project is 404 before any side effect. The principal is ``request.state.principal``.
"""

from __future__ import annotations

import hashlib
import html
import logging
import threading
import time
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from mltrail.errors import AuthenticationError, MltrailError
from mltrail.server.responses import CSP, SECURITY_HEADERS, send_error, send_html
from mltrail.store.tokens import Scope

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from starlette.requests import Request
    from starlette.types import ASGIApp, Message, Receive, Send
    from starlette.types import Scope as AsgiScope

    from mltrail.store.tokens import Token, TokenStore

__all__ = [
    "COOKIE_NAME",
    "LOCAL_PRINCIPAL",
    "Principal",
    "SecurityMiddleware",
    "TokenVerifier",
    "default_allowed_hosts",
    "principal_of",
]

log = logging.getLogger("mltrail.server")

COOKIE_NAME = "mltrail_token"
#: GET/HEAD without a token: the health check, and the stylesheet of the login page
PUBLIC_PATHS = frozenset({"/health", "/ui/static/ui.css"})
#: POSTs that only need a read scope (a read-only user must be able to log in and out)
READ_POSTS = frozenset({"/login", "/logout"})
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_MAX_LOGIN_FORM = 16 * 1024
_LOOPBACK = ("localhost", "127.0.0.1", "::1", "[::1]")
_CACHE_TTL_S = 0.5  # revocation is seen by every process within this (contract: 1 s)
_CACHE_MAX = 10_000


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is making a request: a token's identity, or the local user of ``mltrail ui``."""

    token_id: str | None
    name: str
    scope: Scope
    project: str | None

    def can_see(self, project: str) -> bool:
        """Whether this principal may see (or touch) ``project``."""
        return self.project is None or self.project == project

    @classmethod
    def from_token(cls, token: Token) -> Principal:
        """The principal a verified token stands for."""
        return cls(token.token_id, token.name, token.scope, token.project)


LOCAL_PRINCIPAL = Principal(None, "local", Scope.ADMIN, None)


def principal_of(request: Request) -> Principal:
    """The principal the middleware attached to ``request``.

    Raises:
        AuthenticationError: none attached (the middleware is missing: deny).
    """
    found = request.scope.get("state", {}).get("principal")
    if not isinstance(found, Principal):
        raise AuthenticationError("request was not authenticated")
    return found


def default_allowed_hosts(bound_host: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """Loopback names, the bound host (unless a wildcard) and ``extra``, lowercased."""
    names = {*_LOOPBACK, *(h.strip().lower() for h in extra if h.strip())}
    bound = bound_host.strip().lower()
    if bound and bound not in ("0.0.0.0", "::", "[::]"):
        names.add(f"[{bound}]" if ":" in bound and not bound.startswith("[") else bound)
    return frozenset(names)


class TokenVerifier:
    """Verifies tokens against a :class:`TokenStore`, caching a success for at most 0.5 s."""

    def __init__(self, tokens: TokenStore, ttl_s: float = _CACHE_TTL_S) -> None:
        self._tokens = tokens
        self._ttl = ttl_s
        self._cache: dict[bytes, tuple[float, Token]] = {}
        self._lock = threading.Lock()

    def verify(self, plaintext: str) -> Token:
        """The active token; raises :class:`AuthenticationError` otherwise (blocking)."""
        key = hashlib.sha256(plaintext.encode("utf-8", "surrogatepass")).digest()
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if (
            hit is not None
            and now - hit[0] < self._ttl
            and hit[1].is_active(time.time_ns() // 10**6)
        ):
            return hit[1]
        token = self._tokens.verify(plaintext)
        with self._lock:
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[key] = (now, token)
        return token


def _header(scope: AsgiScope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _host_name(host_header: str) -> str:
    host = host_header.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        return host[: end + 1] if end > 0 else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _wants_html(scope: AsgiScope) -> bool:
    return scope.get("method") == "GET" and "text/html" in (_header(scope, b"accept") or "")


def login_page(error: str | None = None, next_path: str = "/") -> str:
    """The minimal sign-in form shown to a browser without a valid token (no script)."""
    message = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>mltrail: sign in</title></head><body><main>"
        "<h1>mltrail</h1><p>This server needs an API token "
        "(<code>mltrail token create --scope read</code>).</p>"
        f"{message}"
        '<form method="post" action="/login">'
        f'<input type="hidden" name="next" value="{html.escape(next_path)}">'
        '<label for="token">Token</label> '
        '<input id="token" name="token" type="password" autocomplete="off" required> '
        '<button type="submit">Sign in</button></form></main></body></html>\n'
    )


class SecurityMiddleware:
    """See the module docstring.

    Args:
        app: the ASGI app it guards.
        verifier: token verification; None turns auth off (``mltrail ui``: local admin).
        allowed_hosts: accepted ``Host`` names (lowercase, no port); ``"*"`` accepts any.
        login_page: ``(error, next_path) -> HTML``: the sign-in page a browser without a
            valid token gets (401), ``next_path`` the page it asked for; the UI supplies its
            own, the default is a minimal form.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        verifier: TokenVerifier | None,
        allowed_hosts: frozenset[str],
        login_page: Callable[[str | None, str], str] = login_page,
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.allowed_hosts = allowed_hosts
        self.login_page = login_page

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def secured_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [
                    (k, v)
                    for k, v in message.get("headers", ())
                    if not k.lower().startswith(b"access-control-")
                ]
                names = {k.lower() for k, _ in headers}
                headers.extend(h for h in SECURITY_HEADERS if h[0] not in names)
                if b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", CSP.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self._handle(scope, receive, secured_send)
        except Exception as exc:
            log.error(
                "unhandled error on %s %s: %s",
                scope.get("method"),
                scope.get("path"),
                type(exc).__name__,
                exc_info=exc,
            )
            if not started:
                await send_error(
                    secured_send, 500, "internal_error", "internal server error (see the log)"
                )

    async def _handle(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        host = _header(scope, b"host")
        if "*" not in self.allowed_hosts and (
            host is None or _host_name(host) not in self.allowed_hosts
        ):
            await send_error(
                send,
                400,
                "invalid_host",
                "the Host header names a host this server does not serve "
                "(add it with --allowed-host)",
            )
            return
        method = scope["method"]
        path = scope["path"]
        if path in PUBLIC_PATHS and method in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        if method not in _READ_METHODS and not self._same_origin(scope, host or ""):
            await send_error(
                send, 403, "cross_origin", "cross-origin requests that change data are refused"
            )
            return
        if self.verifier is None:
            principal = LOCAL_PRINCIPAL
        else:
            found = await self._authenticate(scope, receive)
            if found is None:
                await self._deny(scope, send)
                return
            principal, receive = found
        needed = Scope.READ if method in _READ_METHODS or path in READ_POSTS else Scope.WRITE
        if not principal.scope.allows(needed):
            await send_error(
                send,
                403,
                "permission_denied",
                f"this token has the {principal.scope} scope; {method} needs {needed}",
            )
            return
        state = scope.setdefault("state", {})
        state["principal"] = principal
        # the UI reads request.state.token (None when auth is off): its .project scopes pages
        state["token"] = principal if self.verifier is not None else None
        if principal.token_id is not None:
            from mltrail.audit.actor import acting_as

            with acting_as(f"token:{principal.token_id}"):  # what the audit trail records
                await self.app(scope, receive, send)
            return
        await self.app(scope, receive, send)

    @staticmethod
    def _same_origin(scope: AsgiScope, host: str) -> bool:
        site = _header(scope, b"sec-fetch-site")  # set by the browser; a page cannot forge it
        if site is not None and site.strip().lower() not in ("same-origin", "none"):
            return False
        origin = _header(scope, b"origin")
        if origin is None:  # not a browser (SDK, CLI, curl)
            return True
        if origin.strip().lower() == "null":  # an opaque origin: could be anyone's page
            return False
        rest = origin.partition("://")[2]
        return bool(rest) and rest.lower() == host.strip().lower()

    async def _authenticate(
        self, scope: AsgiScope, receive: Receive
    ) -> tuple[Principal, Receive] | None:
        import anyio

        assert self.verifier is not None
        auth = _header(scope, b"authorization")
        plaintext: str | None = None
        if auth is not None:
            kind, _, value = auth.strip().partition(" ")
            if kind.lower() != "bearer" or not value.strip():
                return None
            plaintext = value.strip()
        else:
            plaintext = _cookie(scope)
        if plaintext is None and scope["method"] == "POST" and scope["path"] == "/login":
            form, receive = await _read_login_form(receive)
            plaintext = form
        if plaintext is None:
            return None
        try:
            token = await anyio.to_thread.run_sync(self.verifier.verify, plaintext)
        except AuthenticationError:
            return None
        except MltrailError as exc:  # the store is down: not the client's fault
            log.warning("token verification failed: %s", exc)
            raise
        return Principal.from_token(token), receive

    async def _deny(self, scope: AsgiScope, send: Send) -> None:
        challenge = ((b"www-authenticate", b'Bearer realm="mltrail"'),)
        if _wants_html(scope) or (scope["method"] == "POST" and scope["path"] == "/login"):
            error = "That token is not valid." if scope["path"] == "/login" else None
            await send_html(send, 401, self.login_page(error, _next_path(scope)), challenge)
            return
        await send_error(
            send,
            401,
            "invalid_token",
            "a valid API token is required: Authorization: Bearer mlt_<id>_<secret>",
            challenge,
        )


def _next_path(scope: AsgiScope) -> str:
    """Where to go after logging in: the page asked for (a path on this site), else ``/``."""
    path = str(scope.get("path") or "/")
    if scope.get("method") != "GET" or path in ("/login", "/logout"):
        return "/"
    query = bytes(scope.get("query_string") or b"").decode("latin-1")
    target = path + ("?" + query if query else "")
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _cookie(scope: AsgiScope) -> str | None:
    raw = _header(scope, b"cookie")
    if not raw:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except CookieError:
        return None
    morsel = jar.get(COOKIE_NAME)
    return morsel.value if morsel is not None and morsel.value else None


async def _read_login_form(receive: Receive) -> tuple[str | None, Receive]:
    """Read a small urlencoded form; return its ``token`` field and a replaying receive."""
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            return None, receive
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > _MAX_LOGIN_FORM:
            return None, receive
        chunks.append(chunk)
        more = bool(message.get("more_body", False))
    body = b"".join(chunks)
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    try:
        fields = parse_qs(body.decode("utf-8"), max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        return None, replay
    values = fields.get("token")
    return (values[0].strip() if values else None), replay
