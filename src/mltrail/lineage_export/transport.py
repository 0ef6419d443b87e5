"""Where OpenLineage events go: one setting, parsed into an ``openlineage-python`` client.

``MLTRAIL_OPENLINEAGE_URL`` (or ``--to`` of ``mltrail openlineage export``):

- ``http://host:5000`` or ``https://...``: the HTTP transport, posting to
  ``/api/v1/lineage`` (Marquez, DataHub's OpenLineage endpoint); a URL with a path posts to
  that path instead. ``MLTRAIL_OPENLINEAGE_API_KEY`` is sent as a bearer token.
- ``file:///path/events.jsonl``: the file transport, one JSON event per line, appended.
- ``console``: one JSON event per line on stderr.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from mltrail.errors import InvalidArgumentError, MissingExtraError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["check_url", "make_client"]

_RETRY = {"total": 2, "connect": 2, "read": 2, "backoff_factor": 0.2}


def check_url(url: str, what: str = "MLTRAIL_OPENLINEAGE_URL") -> str:
    """``url`` if it names a transport (http(s)://host..., file:///path, console).

    Raises:
        InvalidArgumentError: anything else, naming ``what`` and the accepted forms.
    """
    text = url.strip()
    parts = urlsplit(text)
    ok = (
        text == "console"
        or (parts.scheme in ("http", "https") and bool(parts.hostname))
        or (parts.scheme == "file" and bool(parts.path) and not parts.netloc)
    )
    if not ok:
        raise InvalidArgumentError(
            f"{what}={url!r}: use http(s)://host[:port][/path], file:///path/events.jsonl "
            "or console"
        )
    return text


def make_client(
    url: str,
    *,
    timeout_s: float = 5.0,
    api_key: str = "",
    write: Callable[[str], object] | None = None,
) -> Any:
    """An ``OpenLineageClient`` whose transport is what ``url`` names (see the module doc).

    ``write`` receives the JSON text of each event for ``console`` (default: stderr).

    Raises:
        InvalidArgumentError: a URL of no transport.
        MissingExtraError: openlineage-python is not installed.
    """
    url = check_url(url)
    try:
        from openlineage.client import OpenLineageClient
    except ImportError:
        raise MissingExtraError(
            "OpenLineage events need openlineage-python: pip install 'mltrail[lineage]'"
        ) from None
    return OpenLineageClient(transport=_transport(url, timeout_s, api_key, write))


def _transport(
    url: str, timeout_s: float, api_key: str, write: Callable[[str], object] | None
) -> Any:
    parts = urlsplit(url)
    if url == "console":
        return _line_transport(write or _stderr)
    if parts.scheme == "file":
        from openlineage.client.transport.file import FileConfig, FileTransport

        return FileTransport(FileConfig(log_file_path=parts.path, append=True))
    from openlineage.client.transport.http import HttpConfig, HttpTransport

    base = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
    endpoint = parts.path.lstrip("/") or "api/v1/lineage"
    if parts.query:
        endpoint += "?" + parts.query
    params: dict[str, Any] = {
        "url": base,
        "endpoint": endpoint,
        "timeout": timeout_s,
        "retry": dict(_RETRY),
    }
    if api_key:
        params["auth"] = {"type": "api_key", "apiKey": api_key}
    return HttpTransport(HttpConfig.from_dict(params))


def _stderr(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def _line_transport(write: Callable[[str], object]) -> Any:
    """A transport writing each event's JSON as one line through ``write``."""
    from openlineage.client.serde import Serde
    from openlineage.client.transport.transport import Config, Transport

    class LineTransport(Transport):
        kind = "console"
        config_class = Config

        def emit(self, event: Any) -> None:
            write(Serde.to_json(event))

    return LineTransport()
