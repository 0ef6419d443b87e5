"""``mltrail openlineage export RUN... [--project P] [--to URL]``: past runs as OpenLineage
events (START, then COMPLETE/FAIL/ABORT once ended), sent to a lineage server, appended to a
file, or printed one JSON object per line."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from mltrail.cli._common import StoreOption, cli_errors, fail, stdout_console

if TYPE_CHECKING:
    from mltrail.store.base import TrackingStore

__all__ = ["app"]

app = typer.Typer(help="OpenLineage events of runs (for Marquez, DataHub, ...).")
_MAX_RUNS = 10_000


@app.command("export")
def export(
    runs: Annotated[
        list[str] | None, typer.Argument(metavar="RUN...", help="Run ids (or unique prefixes).")
    ] = None,
    project: Annotated[
        str | None, typer.Option("--project", "-p", help="Every run of this project.")
    ] = None,
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            metavar="URL",
            help=(
                "http(s)://host[:port][/path], file:///path/events.jsonl or console; default "
                "$MLTRAIL_OPENLINEAGE_URL, else JSON lines on stdout."
            ),
        ),
    ] = None,
    store: StoreOption = None,
) -> None:
    """Send the OpenLineage events of past runs (the same run ids live runs send)."""
    if not runs and project is None:
        fail("name runs (RUN...) or --project")
    from mltrail.cli._common import open_api
    from mltrail.lineage_export.export import run_events
    from mltrail.lineage_export.transport import check_url, make_client
    from mltrail.settings import settings

    with cli_errors():
        cfg = settings()
        dest = check_url(to, "--to") if to is not None else cfg.openlineage_url
        api = open_api(store)
        ids = [api.store.resolve_run_id(r) for r in runs or ()]
        if project is not None:
            ids += _project_runs(api.store, project)
        batch = [
            e
            for rid in dict.fromkeys(ids)
            for e in run_events(api.store, rid, cfg.openlineage_namespace)
        ]
        if not dest:
            from openlineage.client.serde import Serde

            for event in batch:
                typer.echo(Serde.to_json(event))
            return
        client = make_client(
            dest, timeout_s=cfg.openlineage_timeout_s, api_key=cfg.openlineage_api_key
        )
        try:
            for event in batch:
                client.emit(event)
        except Exception as exc:  # the transport's own errors (HTTP, file system)
            fail(f"sending to {dest}: {type(exc).__name__}: {exc}")
    stdout_console().print(f"{len(batch)} events of {len(dict.fromkeys(ids))} runs sent to {dest}")


def _project_runs(store: TrackingStore, project: str) -> list[str]:
    out: list[str] = []
    token: str | None = None
    while True:
        page = store.search_runs(project=project, page_token=token, limit=1000)
        out += [r.run_id for r in page.runs]
        token = page.next_token
        if token is None or len(out) >= _MAX_RUNS:
            return out[:_MAX_RUNS]
