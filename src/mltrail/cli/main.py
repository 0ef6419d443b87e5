"""The ``mltrail`` command: the Typer app and the console-script entry point.

Importing this module is light (Typer and the command modules only); Rich tables, the store
and NumPy load inside the command that needs them.
"""

from __future__ import annotations

from typing import Annotated

import typer

from mltrail.cli import diff_cmd, metrics, projects, run_cmd, runs, sync

__all__ = ["app", "main"]

app = typer.Typer(
    name="mltrail",
    help="Experiment tracking: list, inspect and export runs; apply leftover spools.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(runs.app, name="runs")
app.add_typer(projects.app, name="projects")
app.command("metrics")(metrics.export_metrics)
app.command("sync")(sync.sync)
app.command("diff")(diff_cmd.diff)
_PASSTHROUGH = {"allow_interspersed_args": False}
app.command("run", context_settings=_PASSTHROUGH)(run_cmd.run_command)
app.command("preflight", context_settings=_PASSTHROUGH)(run_cmd.preflight)


def _print_version(value: bool) -> None:
    if value:
        from mltrail import __version__

        typer.echo(f"mltrail {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """Experiment tracking: list, inspect and export runs; apply leftover spools."""


def main() -> None:
    """Run the CLI (the ``mltrail`` console script)."""
    app()
