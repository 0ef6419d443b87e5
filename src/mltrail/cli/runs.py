"""``mltrail runs list`` and ``mltrail runs show``: the Typer commands.

What they do and print lives in :mod:`mltrail.cli.runs_view` (no Typer), which the console
script's fast path calls too.
"""

from __future__ import annotations

from typing import Annotated

import typer

from mltrail.cli import runs_view
from mltrail.cli._common import JsonOption, StoreOption, cli_errors
from mltrail.cli.runs_view import MAX_METRIC_COLUMNS, metric_columns

__all__ = ["MAX_METRIC_COLUMNS", "app", "list_runs", "metric_columns", "show_run"]

app = typer.Typer(help="List and inspect runs.", no_args_is_help=True)


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
    columns: Annotated[
        str | None,
        typer.Option(
            "--columns",
            "-c",
            metavar="COLS",
            help=(
                "The value columns, comma-separated: metric keys (last value; "
                "'metrics.' optional), params.KEY, tags.KEY (default: the most common "
                "metrics, yours before system/*)."
            ),
        ),
    ] = None,
    as_json: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """List runs as a table: id, project, name, status, created, duration, last metrics."""
    with cli_errors():
        runs_view.list_runs(project, filter, order_by, limit, as_json, store, columns)


@app.command("show")
def show_run(
    run: Annotated[str, typer.Argument(metavar="RUN", help="A run id or unambiguous id prefix.")],
    keys: Annotated[
        str | None,
        typer.Option(
            "--keys",
            "-k",
            metavar="PATTERN",
            help=(
                "Only metric keys matching this glob, over the whole key and case-sensitive "
                "(* any characters, / included; ? one; classes in square brackets): 'loss', "
                "'train/*', '*acc*'. Applies to --json too."
            ),
        ),
    ] = None,
    max_keys: Annotated[
        int,
        typer.Option(
            "--max-keys",
            min=0,
            metavar="N",
            help="Print at most N metric keys (a page; 0: all). --json always has them all.",
        ),
    ] = runs_view.DEFAULT_MAX_KEYS,
    page: Annotated[
        int,
        typer.Option("--page", min=1, metavar="N", help="Which page of --max-keys keys."),
    ] = 1,
    patch: Annotated[
        bool,
        typer.Option(
            "--patch",
            help=(
                "Print only the run's uncommitted code as a patch (the diff of tracked files "
                "and the untracked source files saved with it): git apply takes it."
            ),
        ),
    ] = False,
    as_json: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """Show one run: overview, params, config, tags, metrics, artifacts and captured state.

    Metrics: the first --max-keys keys by name, then a line counting keys and points and
    saying how to see the others (--page, --keys, --json).

    Artifacts are the versions the run used (inputs) and produced (outputs). The captured
    state is code, environment, hardware, seeds, the invocation, and the last lines of the
    console; ``--json`` adds them as ``inputs``, ``outputs``, ``state`` and ``console_tail``.
    """
    with cli_errors():
        if patch:
            from mltrail.cli.run_text import print_patch

            print_patch(run, store)
            return
        runs_view.show_run(run, as_json, store, keys=keys, max_keys=max_keys, page=page)


@app.command("console")
def console(
    run: Annotated[str, typer.Argument(metavar="RUN", help="A run id or unambiguous id prefix.")],
    stream: Annotated[
        str | None,
        typer.Option("--stream", metavar="STREAM", help="Only stdout or only stderr lines."),
    ] = None,
    follow: Annotated[
        bool,
        typer.Option("--follow", "-F", help="Keep printing new lines while the run is running."),
    ] = False,
    as_json: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """Print a run's whole console: stdout lines to stdout, stderr lines to stderr."""
    from mltrail.cli.run_text import print_console

    with cli_errors():
        print_console(run, store, stream=stream, follow=follow, as_json=as_json)
