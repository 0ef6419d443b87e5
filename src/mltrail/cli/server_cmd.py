"""``mltrail server``, ``mltrail ui`` and ``mltrail token create|list|revoke``.

Light to import: FastAPI, uvicorn and the store load inside the commands.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mltrail.cli._common import (
    JsonOption,
    StoreOption,
    cli_errors,
    fail,
    fmt_time,
    print_json,
    stdout_console,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mltrail.server.app import ServerConfig
    from mltrail.store.registry import StoreLocation
    from mltrail.store.tokens import TokenStore

__all__ = ["default_artifacts", "server", "token_app", "ui"]

token_app = typer.Typer(help="Create, list and revoke API tokens of a server's store.")

HostOption = Annotated[str, typer.Option("--host", help="Address to bind (loopback by default).")]
PortOption = Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port.")]


def default_artifacts(location: StoreLocation) -> Path | None:
    """Where run files go when ``--artifacts`` is not given; None for a database server."""
    if location.embedded:
        return Path(location.display) / "artifacts"
    if location.scheme == "sqlite" and location.uri.startswith("sqlite:///"):
        db = Path(location.uri[len("sqlite:///") :])
        return db.parent / f"{db.stem}.artifacts"
    return None


def _config(
    store: str | None,
    artifacts: str | None,
    *,
    auth: bool,
    host: str,
    allowed_hosts: tuple[str, ...] = (),
    presign_s: int = 0,
) -> ServerConfig:
    from mltrail.server.app import ServerConfig
    from mltrail.server.storage import is_url
    from mltrail.store.registry import resolve_location

    location = resolve_location(store)
    root: Path | str | None
    if artifacts and is_url(artifacts):
        root = artifacts  # an object store (s3://bucket/prefix): shared by replicas
    else:
        root = Path(artifacts).expanduser().resolve() if artifacts else default_artifacts(location)
    if root is None:
        fail(f"--artifacts DIR|URL is required with the store {location.display}")
    return ServerConfig(
        store=location.uri,
        artifacts=str(root),
        auth=auth,
        host=host,
        allowed_hosts=allowed_hosts,
        presign_s=presign_s,
    )


def _serve(config: ServerConfig, port: int, workers: int, banner: str) -> None:
    import uvicorn

    from mltrail.server.app import CONFIG_ENV, KEEP_ALIVE_S, create_app

    with cli_errors():
        app = create_app(config)  # opens the store: refuse to start when it is unreachable
    typer.echo(banner, err=True)
    target: object = app
    if workers > 1:
        app.state.store.close()
        os.environ[CONFIG_ENV] = config.to_json()
        target = "mltrail.server.app:create_app_from_env"
    uvicorn.run(
        target,  # type: ignore[arg-type]
        factory=workers > 1,
        workers=workers if workers > 1 else None,
        host=config.host,
        port=port,
        log_level="info",
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=5,
        timeout_keep_alive=KEEP_ALIVE_S,
    )


def server(
    store: StoreOption = None,
    artifacts: Annotated[
        str | None,
        typer.Option(
            "--artifacts",
            metavar="DIR|URL",
            help="Where run files and objects live: a folder (default: beside an SQLite "
            "store) or an object store URL (s3://bucket/prefix, gs://, az://) that "
            "replicas share.",
        ),
    ] = None,
    host: HostOption = "127.0.0.1",
    port: PortOption = 5000,
    workers: Annotated[int, typer.Option("--workers", min=1, max=64)] = 1,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allowed-host",
            metavar="NAME",
            help="Another Host name clients use (repeatable); needed when binding 0.0.0.0.",
        ),
    ] = None,
    presign: Annotated[
        int,
        typer.Option(
            "--presign",
            metavar="SECONDS",
            min=0,
            max=7 * 86400,
            help="With an s3:// --artifacts root: object downloads redirect to presigned "
            "URLs valid SECONDS (clients then need to reach the object store); 0: proxied.",
        ),
    ] = 0,
) -> None:
    """Run the tracking server (REST API + UI); every request needs an API token."""
    with cli_errors():
        config = _config(
            store,
            artifacts,
            auth=True,
            host=host,
            allowed_hosts=tuple(allowed_host or ()),
            presign_s=presign,
        )
    shown = f"[{host}]" if ":" in host else host
    _serve(
        config,
        port,
        workers,
        f"mltrail server on http://{shown}:{port} (tokens required; "
        "make one with: mltrail token create --scope write)",
    )


def ui(
    store: StoreOption = None,
    port: PortOption = 5000,
    open_browser: Annotated[
        bool, typer.Option("--open", help="Open the UI in a web browser.")
    ] = False,
) -> None:
    """Browse this project's runs at http://127.0.0.1:PORT (loopback only, no tokens)."""
    with cli_errors():
        config = _config(store, None, auth=False, host="127.0.0.1")
        _apply_leftover_spools(store)
    url = f"http://127.0.0.1:{port}/"
    typer.echo(f"mltrail ui: {url}  (store {config.store}; Ctrl+C to stop)")
    if open_browser:
        import threading
        import webbrowser

        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    _serve(config, port, 1, f"serving {url}")


def _apply_leftover_spools(store: str | None) -> None:
    """Runs of processes that died show up (crashed, with what they logged) before browsing."""
    from mltrail.cli._common import has_spools
    from mltrail.store.registry import resolve_location

    if has_spools(resolve_location(store)):
        from mltrail.api import Api

        recovered = Api(store).recovered
        if recovered:
            typer.echo(f"applied {len(recovered)} spool(s) left by processes that died")


@contextlib.contextmanager
def _tokens(store: str | None) -> Iterator[TokenStore]:
    from mltrail.store.registry import open_store

    opened = open_store(store, shared=False)
    try:
        from mltrail.store.optional import HasTokens

        if not isinstance(opened, HasTokens):
            fail(f"the store {opened.uri} cannot keep API tokens")
        yield opened.tokens()
    finally:
        opened.close()


@token_app.command("create")
def create_token(
    scope: Annotated[
        str, typer.Option("--scope", help="read, write or admin.", show_default=False)
    ],
    store: StoreOption = None,
    project: Annotated[
        str | None, typer.Option("--project", help="Limit the token to one project.")
    ] = None,
    name: Annotated[str, typer.Option("--name", help="A label (who or what uses it).")] = "",
    expires_days: Annotated[
        float | None, typer.Option("--expires-days", min=0.001, help="Expire after D days.")
    ] = None,
) -> None:
    """Create an API token; the token is the last line of the output (shown only once)."""
    with cli_errors(), _tokens(store) as tokens:
        expires_ms = None
        if expires_days is not None:
            expires_ms = time.time_ns() // 1_000_000 + int(expires_days * 86_400_000)
        record, plaintext = tokens.create(scope, project=project, name=name, expires_ms=expires_ms)
    where = f"project {record.project}" if record.project else "every project"
    until = f", expires {fmt_time(record.expires_ms)}" if record.expires_ms else ""
    typer.echo(
        f"created token {record.token_id} ({record.scope}, {where}{until}); "
        "copy it now, it is not shown again:",
        err=False,
    )
    typer.echo(plaintext)


@token_app.command("list")
def list_tokens(
    store: StoreOption = None,
    include_revoked: Annotated[bool, typer.Option("--all", help="Include revoked tokens.")] = False,
    as_json: JsonOption = False,
) -> None:
    """List tokens (never their secrets)."""
    from rich.table import Table

    with cli_errors(), _tokens(store) as tokens:
        found = tokens.list(include_revoked=include_revoked)
    if as_json:
        print_json([t.to_dict() for t in found])
        return
    console = stdout_console()
    if not found:
        console.print("no tokens")
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("id", "name", "scope", "project", "created", "expires", "revoked"):
        table.add_column(column, no_wrap=column != "name")
    for t in found:
        table.add_row(
            t.token_id,
            t.name,
            str(t.scope),
            t.project or "*",
            fmt_time(t.created_ms),
            fmt_time(t.expires_ms),
            fmt_time(t.revoked_ms),
        )
    console.print(table)


@token_app.command("revoke")
def revoke_token(
    token_id: Annotated[str, typer.Argument(metavar="ID", help="The token id (mlt_<ID>_...).")],
    store: StoreOption = None,
) -> None:
    """Revoke a token; servers refuse it within a second."""
    with cli_errors(), _tokens(store) as tokens:
        record = tokens.revoke(token_id)
    typer.echo(f"revoked token {record.token_id} ({record.name or 'unnamed'})")
