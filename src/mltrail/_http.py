"""The HTTP client for an ``mltrail server``: httpx underneath, errors as ours.

Shared by the tracking store over HTTP (:mod:`mltrail.store.http`) and the object DB over HTTP
(:mod:`mltrail.objects.http`). httpx is imported on the first request, never by
``import mltrail``. Each :class:`ServerClient` holds one ``httpx.Client``, created on first
use and shared by all threads (httpx pools keep-alive connections and is thread-safe), so the
writer thread, transfer workers and the caller reuse warm connections.

The network is set up as other tools read it from the environment:

- proxies: ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``ALL_PROXY`` (upper or lower case), with hosts in
  ``NO_PROXY`` reached directly (curl's rules; ``https://`` goes through ``CONNECT``);
- TLS: the system's trust store, where OpenSSL honours ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``;
  ``MLTRAIL_CA_BUNDLE`` (else ``REQUESTS_CA_BUNDLE``) names a PEM file or a hashed
  directory of the CAs to trust instead (:attr:`mltrail.settings.Settings.ca_bundle`);
- redirects (301, 302, 303, 307, 308) are followed, at most 5 in a row. 303 continues as
  ``GET``; the others repeat the method and body. The ``Authorization`` header only ever goes
  to the server's own origin (its scheme, host and port; or its ``https://`` upgrade):
  a redirect to another host is followed without the token.

Failure model:

- the server cannot be reached (refused, timed out, a proxy or TLS failure, a connection
  dropped twice), or answers 5xx / 429 → :class:`StoreError` (retryable: callers back off and
  try again; nothing was applied). A keep-alive connection the server dropped is retried once
  at once (not while streaming a download into a file);
- any other error answer becomes the :class:`MltrailError` subclass named by the body's
  ``error.code`` (401 :class:`AuthenticationError`, 404 :class:`NotFoundError`, 422
  :class:`InvalidArgumentError`, ...), carrying the server's message;
- a CA bundle or proxy setting that cannot be used, or more than 5 redirects in a row →
  :class:`InvalidArgumentError`.

The token comes from the ``token`` argument or ``MLTRAIL_TOKEN`` and is sent as
``Authorization: Bearer``.
"""

from __future__ import annotations

import functools
import json
import os
import threading
import weakref
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from mltrail import errors
from mltrail.errors import InvalidArgumentError, MltrailError, StoreError
from mltrail.settings import settings

if TYPE_CHECKING:
    import ssl
    from collections.abc import Iterator

    import httpx

__all__ = ["ServerClient"]

_TIMEOUT_S = 30.0
_RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504, 507})
_REDIRECT_STATUS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 5
_CHUNK = 1 << 20
_DEFAULT_PORTS = {"http": 80, "https": 443}


@functools.cache
def _error_classes() -> dict[str, type[MltrailError]]:
    found: dict[str, type[MltrailError]] = {}
    todo: list[type[MltrailError]] = [MltrailError]
    while todo:
        cls = todo.pop()
        found.setdefault(cls.code, cls)
        todo.extend(cls.__subclasses__())
    return found


class _Pool:
    """The lazily made ``httpx.Client`` of one ServerClient (closable from a finalizer)."""

    def __init__(self, timeout: float, ca_bundle: str) -> None:
        self.timeout = timeout
        self.ca_bundle = ca_bundle
        self.client: httpx.Client | None = None
        self.lock = threading.Lock()

    def get(self) -> httpx.Client:
        client = self.client
        if client is None:
            with self.lock:
                if self.client is None:
                    self.client = _new_client(self.timeout, self.ca_bundle)
                client = self.client
        return client

    def close(self) -> None:
        with self.lock:
            client, self.client = self.client, None
        if client is not None:
            client.close()


class ServerClient:
    """Requests to one server; thread-safe (one shared pool). See the module doc."""

    def __init__(self, url: str, token: str | None = None, timeout: float = _TIMEOUT_S) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidArgumentError(f"server {url!r}: expected http(s)://host[:port]")
        self.url = url
        cfg = settings()
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = None if parts.port == _DEFAULT_PORTS[parts.scheme] else parts.port
        # user:password@ is dropped, as before: the token is the only credential sent
        self._origin = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
        self._base = parts.path.rstrip("/")
        self._token = token if token is not None else cfg.token
        self._pool = _Pool(timeout, cfg.ca_bundle)
        self._codes = _error_classes()
        # a client dropped without close() (an ODB made for one transfer) closes its sockets
        weakref.finalize(self, self._pool.close)

    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: bytes | IO[bytes] | None = None,
        content_type: str | None = None,
        accept: str = "application/json",
        sink: IO[bytes] | None = None,
        ok_404: bool = False,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """One request; returns ``(status, headers, body)`` for a 2xx answer.

        Args:
            body: bytes, or a seekable binary file (streamed; its size is sent as
                ``Content-Length``).
            sink: stream a 2xx response body into this file instead of returning it.
            ok_404: return a 404 answer instead of raising (``HEAD`` existence checks).
            headers: more request headers (``X-Content-Digest`` of an upload).

        Raises:
            StoreError: unreachable, timed out, or a 5xx/429 answer (retryable).
            MltrailError: the error the server named, for other 4xx answers.
        """
        import httpx

        url = self._origin + self._base + path
        if query:
            url += "?" + urlencode({k: v for k, v in query.items() if v is not None})
        headers = {**(headers or {}), "Accept": accept}
        if content_type:
            headers["Content-Type"] = content_type
        content: bytes | _Rewindable | None = None
        if isinstance(body, bytes):
            content = body
        elif body is not None:
            start = body.tell()
            headers["Content-Length"] = str(os.fstat(body.fileno()).st_size - start)
            content = _Rewindable(body, start)
        for attempt in (0, 1):
            client = self._pool.get()
            try:
                status, resp_headers, data = self._exchange(
                    client, method, httpx.URL(url), headers, content, sink
                )
                break
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
                # a keep-alive connection the server closed under us: retry once
                if attempt or sink is not None:
                    raise StoreError(f"server {self.url} dropped the connection: {exc}") from exc
            except httpx.TransportError as exc:
                reason = _reason(exc) + _via_proxy(self._scheme, self._host)
                raise StoreError(f"server {self.url} unreachable: {reason}") from exc
            except httpx.DecodingError as exc:
                raise StoreError(f"server {self.url} sent an undecodable answer: {exc}") from exc
            except RuntimeError:
                if not client.is_closed:  # close() from another thread: reconnect once
                    raise
                if attempt:
                    raise StoreError(f"server {self.url}: the client was closed") from None
        if 200 <= status < 300 or (ok_404 and status == 404):
            return status, resp_headers, data
        raise self._error(status, data)

    def _exchange(
        self,
        client: httpx.Client,
        method: str,
        url: httpx.URL,
        headers: dict[str, str],
        body: bytes | _Rewindable | None,
        sink: IO[bytes] | None,
    ) -> tuple[int, dict[str, str], bytes]:
        """Send, following redirects (see the module doc); the final answer's parts."""
        for _ in range(_MAX_REDIRECTS + 1):
            sent = dict(headers)
            if self._token and self._is_own_origin(url):
                sent["Authorization"] = f"Bearer {self._token}"
            content = body.chunks() if isinstance(body, _Rewindable) else body
            request = client.build_request(method, url, headers=sent, content=content)
            resp = client.send(request, stream=True)
            try:
                location = resp.headers.get("location")
                if resp.status_code in _REDIRECT_STATUS and location:
                    resp.read()  # drain it so the connection goes back to the pool
                    url = resp.url.join(location)
                    if resp.status_code == 303 and method != "HEAD":
                        method, body = "GET", None
                        headers = {k: v for k, v in headers.items() if k == "Accept"}
                    continue
                status = resp.status_code
                resp_headers = {k.lower(): v for k, v in resp.headers.items()}
                if sink is not None and 200 <= status < 300:
                    for chunk in resp.iter_bytes():
                        sink.write(chunk)
                    return status, resp_headers, b""
                return status, resp_headers, resp.read()
            finally:
                resp.close()
        raise InvalidArgumentError(
            f"server {self.url}: more than {_MAX_REDIRECTS} redirects in a row (last to {url})"
        )

    def _is_own_origin(self, url: httpx.URL) -> bool:
        """Whether ``url`` is this server (the token may go there): same scheme, host and
        port, or the plain ``https://`` upgrade of an ``http://`` server on default ports."""
        if url.host != self._host:
            return False
        if url.scheme == self._scheme and url.port == self._port:
            return True
        return self._scheme == "http" and url.scheme == "https" and not (self._port or url.port)

    def json(self, method: str, path: str, **kw: Any) -> Any:
        """:meth:`request` and parse the JSON answer."""
        _, _, data = self.request(method, path, **kw)
        try:
            return json.loads(data)
        except ValueError as exc:
            raise StoreError(f"server {self.url} sent invalid JSON for {path}") from exc

    def _error(self, status: int, data: bytes) -> MltrailError:
        code, message = "", data[:200].decode("utf-8", "replace")
        try:
            err = json.loads(data)["error"]
            code, message = str(err.get("code", "")), str(err.get("message", message))
        except (ValueError, KeyError, TypeError, AttributeError):
            pass
        cls = self._codes.get(code)
        if status in _RETRYABLE_STATUS and (cls is None or not issubclass(cls, StoreError)):
            return StoreError(f"server {self.url} answered {status}: {message}")
        if cls is None:
            cls = {401: errors.AuthenticationError, 403: errors.PermissionDeniedError}.get(
                status, errors.NotFoundError if status == 404 else InvalidArgumentError
            )
        return cls(message)

    def close(self) -> None:
        """Close every connection (the client stays usable: it reconnects on demand)."""
        self._pool.close()


class _Rewindable:
    """A file body sent from ``start``, again from ``start`` on a retry or a redirect."""

    def __init__(self, file: IO[bytes], start: int) -> None:
        self.file = file
        self.start = start

    def chunks(self) -> Iterator[bytes]:
        self.file.seek(self.start)
        while chunk := self.file.read(_CHUNK):
            yield chunk


def _new_client(timeout: float, ca_bundle: str) -> httpx.Client:
    import http.cookiejar

    import httpx

    verify = _ssl_context(
        ca_bundle, os.environ.get("SSL_CERT_FILE", ""), os.environ.get("SSL_CERT_DIR", "")
    )
    try:
        return httpx.Client(
            verify=verify,
            timeout=httpx.Timeout(timeout),
            trust_env=True,  # proxies from the environment
            follow_redirects=False,  # _exchange follows them, deciding where the token goes
            # no cookies kept or sent, and bodies as they are (as the stdlib client did)
            cookies=http.cookiejar.CookieJar(
                http.cookiejar.DefaultCookiePolicy(allowed_domains=[])
            ),
            headers={"Accept-Encoding": "identity", "User-Agent": "mltrail"},
        )
    except (ValueError, ImportError) as exc:  # a malformed or SOCKS proxy URL
        raise InvalidArgumentError(f"proxy settings in the environment: {exc}") from exc


@functools.lru_cache(maxsize=8)
def _ssl_context(ca_bundle: str, cert_file: str, cert_dir: str) -> ssl.SSLContext:
    """The TLS context (cached: loading a trust store takes ~50 ms). ``cert_file`` and
    ``cert_dir`` (``SSL_CERT_FILE``/``SSL_CERT_DIR``) only key the cache: OpenSSL reads them."""
    import ssl

    if not ca_bundle:
        return ssl.create_default_context()
    try:
        if os.path.isdir(ca_bundle):
            return ssl.create_default_context(capath=ca_bundle)
        return ssl.create_default_context(cafile=ca_bundle)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)
        raise InvalidArgumentError(
            f"CA bundle {ca_bundle!r} (MLTRAIL_CA_BUNDLE or REQUESTS_CA_BUNDLE) cannot be "
            f"used: {reason}"
        ) from exc


def _via_proxy(scheme: str, host: str) -> str:
    """`` (through the proxy URL)`` when the environment sends ``host`` through a proxy (the
    standard library's reading of NO_PROXY: only for the message; httpx picks the route)."""
    import urllib.request

    proxies = urllib.request.getproxies()  # what httpx reads too
    proxy = proxies.get(scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass(host):
        return ""
    return f" (through the proxy {proxy})"


def _reason(exc: BaseException) -> str:
    """What went wrong, from the first telling error in ``exc``'s chain."""
    import ssl

    import httpx

    cur: BaseException | None = exc
    while cur is not None:
        if isinstance(cur, ssl.SSLCertVerificationError):
            return (
                f"TLS certificate verification failed: {cur.verify_message or cur.reason}; "
                "if the server's certificate is signed by a private CA, set MLTRAIL_CA_BUNDLE "
                "to that CA's PEM file"
            )
        if isinstance(cur, ssl.SSLError):
            return f"TLS failed: {cur.reason or cur}"
        if isinstance(cur, httpx.ProxyError):
            return f"the proxy refused: {cur}"
        if isinstance(cur, OSError) and cur.strerror:
            return cur.strerror
        cur = cur.__cause__ or cur.__context__
    return str(exc) or type(exc).__name__
