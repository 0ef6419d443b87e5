"""``mltrail runs list`` and ``mltrail runs show``."""

from __future__ import annotations

import json
import math
from collections import Counter
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mltrail.cli._common import (
    JsonOption,
    StoreOption,
    cli_errors,
    fmt_duration,
    fmt_float,
    fmt_time,
    open_api,
    print_json,
    status_text,
    stdout_console,
)

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from mltrail.entities import RunRecord

__all__ = ["app", "list_runs", "show_run"]

_TRACEBACK_LINES = 12  # the end of a failed run's traceback, printed by `runs show`

app = typer.Typer(help="List and inspect runs.", no_args_is_help=True)

MAX_METRIC_COLUMNS = 4


def metric_columns(records: list[RunRecord], limit: int = MAX_METRIC_COLUMNS) -> list[str]:
    """The metric keys to show as columns: those present in the most runs, then by name.

    Args:
        records: the runs being listed.
        limit: at most this many keys.

    Returns:
        Up to ``limit`` metric keys.
    """
    counts = Counter(key for r in records for key in r.metrics)
    ranked = sorted(counts, key=lambda k: (-counts[k], k))
    return ranked[:limit]


@app.command("list")
def list_runs(
    project: Annotated[
        str | None, typer.Option("--project", "-p", help="Only runs of this project.")
    ] = None,
    filter: Annotated[
        str | None,
        typer.Option(
            "--filter",
            "-f",
            metavar="EXPR",
            help='Filter expression, e.g. "params.lr < 0.01 and metrics.acc > 0.9".',
        ),
    ] = None,
    order_by: Annotated[
        str | None,
        typer.Option(
            "--order-by",
            "-o",
            metavar="KEY",
            help="KEY [asc|desc], comma-separated (default: newest first).",
        ),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, help="Show at most this many runs.")
    ] = 50,
    as_json: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """List runs as a table: id, project, name, status, created, duration, last metrics."""
    with cli_errors():
        api = open_api(store)
        records = api.runs(project=project, filter=filter, order_by=order_by, limit=limit + 1)
    more = len(records) > limit
    records = records[:limit]
    if as_json:
        print_json([r.to_dict() for r in records])
        return
    console = stdout_console()
    if not records:
        console.print("no runs")
        return
    console.print(_runs_table(records))
    if more:
        console.print(
            f"[dim]showing the first {limit} runs; use --limit to see more[/dim]",
        )


def _runs_table(records: list[RunRecord]) -> Table:
    from rich.table import Table
    from rich.text import Text

    keys = metric_columns(records)
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("id", no_wrap=True, style="cyan")
    table.add_column("project", overflow="fold")
    table.add_column("name", overflow="fold")
    table.add_column("status", no_wrap=True)
    table.add_column("created", no_wrap=True)
    table.add_column("duration", no_wrap=True, justify="right")
    for key in keys:
        table.add_column(Text(key), justify="right", overflow="fold")
    for r in records:
        cells = [fmt_float(r.metrics[k].last) if k in r.metrics else "" for k in keys]
        table.add_row(
            Text(r.run_id),
            Text(r.project),
            Text(r.name),
            status_text(r.status.value),
            fmt_time(r.created_ms),
            fmt_duration(r.duration_ms),
            *cells,
        )
    return table


@app.command("show")
def show_run(
    run: Annotated[str, typer.Argument(metavar="RUN", help="A run id or unambiguous id prefix.")],
    as_json: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """Show one run: overview, params, config, tags, metrics, artifacts and captured state.

    Artifacts are the versions the run used (inputs) and produced (outputs). The captured
    state is code, environment, hardware, seeds, the invocation, and the last lines of the
    console; ``--json`` adds them as ``inputs``, ``outputs``, ``state`` and ``console_tail``.
    """
    from mltrail.cli.artifacts_cmd import print_run_artifacts, run_artifacts
    from mltrail.cli.state_view import CONSOLE_TAIL, console_tail_dicts, print_state

    with cli_errors():
        api = open_api(store)
        record = api.run(run)
        state = api.state(record.run_id)
        tail = api.console(record.run_id, tail=CONSOLE_TAIL)
        inputs, outputs = run_artifacts(api, record.run_id)
    if as_json:
        print_json(
            {
                **record.to_dict(),
                "state": state,
                "console_tail": console_tail_dicts(tail),
                "inputs": [v.to_dict() for v in inputs],
                "outputs": [v.to_dict() for v in outputs],
            }
        )
        return
    console = stdout_console()
    _print_run(console, record)
    _print_error(console, state.get("error"))
    print_run_artifacts(console, inputs, outputs)
    print_state(console, state, tail)


def _print_error(console: Console, doc: dict[str, Any] | None) -> None:
    """The exception that failed the run (type, message, where, the traceback's end)."""
    if not isinstance(doc, dict):
        return
    from rich.text import Text

    from mltrail.capture.errors import one_line

    _section(console, "error")
    console.print(Text(one_line(doc), style="bold red"))
    lines = str(doc.get("traceback") or "").rstrip().splitlines()
    if lines:
        console.print(Text("\n".join(lines[-_TRACEBACK_LINES:]), style="red"))


def _section(console: Console, title: str) -> None:
    from rich.text import Text

    console.print()
    console.print(Text(title, style="bold magenta"))


def _print_run(console: Console, r: RunRecord) -> None:
    from rich.table import Table
    from rich.text import Text

    overview = Table.grid(padding=(0, 2))
    overview.add_column(style="bold", no_wrap=True)
    overview.add_column(overflow="fold")
    overview.add_row("id", Text(r.run_id, style="cyan"))
    overview.add_row("project", Text(r.project))
    overview.add_row("name", Text(r.name))
    overview.add_row("status", status_text(r.status.value))
    overview.add_row("created", fmt_time(r.created_ms))
    overview.add_row("ended", fmt_time(r.end_ms) or "-")
    if r.end_ms is None and r.heartbeat_ms is not None:
        overview.add_row("last heartbeat", fmt_time(r.heartbeat_ms))
    overview.add_row("duration", fmt_duration(r.duration_ms) or "-")
    overview.add_row("user", Text(r.user))
    overview.add_row("host", Text(r.host))
    overview.add_row("command", Text(r.command))
    _section(console, "overview")
    console.print(overview)

    _section(console, "params")
    if r.params:
        params = Table(box=None, show_header=False, pad_edge=False)
        params.add_column(style="bold", overflow="fold")
        params.add_column(overflow="fold")
        for key in sorted(r.params):
            params.add_row(Text(key), Text(_param_text(r.params[key])))
        console.print(params)
    else:
        console.print("[dim](none)[/dim]")

    _section(console, "config")
    if r.config:
        text = json.dumps(r.config, indent=2, sort_keys=True, default=str)
        console.print(Text(text))
    else:
        console.print("[dim](none)[/dim]")

    _section(console, "tags")
    if r.tags:
        tags = Table(box=None, show_header=False, pad_edge=False)
        tags.add_column(style="bold", overflow="fold")
        tags.add_column(overflow="fold")
        for key in sorted(r.tags):
            tags.add_row(Text(key), Text(r.tags[key]))
        console.print(tags)
    else:
        console.print("[dim](none)[/dim]")

    _section(console, "metrics")
    if r.metrics:
        console.print(_metrics_table(r))
    else:
        console.print("[dim](none)[/dim]")


def _param_text(value: object) -> str:
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else fmt_float(value)
    return str(value)


def _metrics_table(r: RunRecord) -> Table:
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("key", overflow="fold")
    for name in ("last", "step", "min", "max", "count"):
        table.add_column(name, justify="right", no_wrap=True)
    for key in sorted(r.metrics):
        m = r.metrics[key]
        table.add_row(
            Text(key),
            fmt_float(m.last),
            str(m.last_step),
            fmt_float(m.min),
            fmt_float(m.max),
            str(m.count),
        )
    return table
