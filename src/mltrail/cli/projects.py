"""``mltrail projects list``."""

from __future__ import annotations

import typer

from mltrail.cli._common import (
    JsonOption,
    StoreOption,
    cli_errors,
    fmt_time,
    open_api,
    print_json,
    stdout_console,
)

__all__ = ["app", "list_projects"]

app = typer.Typer(help="List projects.", no_args_is_help=True)


@app.command("list")
def list_projects(as_json: JsonOption = False, store: StoreOption = None) -> None:
    """List projects: name, run count, created."""
    from rich.table import Table
    from rich.text import Text

    with cli_errors():
        found = open_api(store).projects()
    if as_json:
        print_json([p.to_dict() for p in found])
        return
    console = stdout_console()
    if not found:
        console.print("no projects")
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("name", overflow="fold")
    table.add_column("runs", justify="right", no_wrap=True)
    table.add_column("created", no_wrap=True)
    for p in found:
        table.add_row(Text(p.name, style="cyan"), str(p.run_count), fmt_time(p.created_ms))
    console.print(table)
