"""The ``mltrail`` command: the Typer app and the console-script entry point.

Importing this module is light (Typer and the command modules only); Rich tables, the store
and NumPy load inside the command that needs them.
"""

from __future__ import annotations

from typing import Annotated

import typer

from mltrail.cli import (
    artifacts_cmd,
    attest_cmd,
    audit_cmd,
    data_cmd,
    db_cmd,
    diff_cmd,
    metrics,
    models_cmd,
    openlineage_cmd,
    projects,
    repro_cmd,
    run_cmd,
    runs,
    server_cmd,
    store_cmd,
    sweep_cmd,
    sync,
)

__all__ = ["app", "main"]

app = typer.Typer(
    name="mltrail",
    help="Experiment tracking: list, inspect and export runs; apply leftover spools.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(runs.app, name="runs")
app.add_typer(projects.app, name="projects")
app.add_typer(artifacts_cmd.app, name="artifacts")
app.add_typer(models_cmd.app, name="models")
app.add_typer(audit_cmd.app, name="audit")
app.add_typer(openlineage_cmd.app, name="openlineage")
app.add_typer(attest_cmd.app, name="attest")
models_cmd.app.command("sign")(attest_cmd.sign_model)
models_cmd.app.command("export-docs")(attest_cmd.export_docs)
app.command("lineage")(artifacts_cmd.lineage)
app.add_typer(data_cmd.app, name="data")
app.command("metrics")(metrics.export_metrics)
app.command("sync")(sync.sync)
app.command("diff")(diff_cmd.diff)
app.command("server")(server_cmd.server)
app.command("ui")(server_cmd.ui)
app.add_typer(server_cmd.token_app, name="token")
app.add_typer(db_cmd.app, name="db")
app.add_typer(store_cmd.app, name="store")
_PASSTHROUGH = {"allow_interspersed_args": False}
app.command("run", context_settings=_PASSTHROUGH)(run_cmd.run_command)
app.command("preflight", context_settings=_PASSTHROUGH)(run_cmd.preflight)
app.command("reproduce")(repro_cmd.reproduce)
app.command("verify-determinism", context_settings=_PASSTHROUGH)(repro_cmd.verify_determinism)
app.command("check")(repro_cmd.check)
app.add_typer(sweep_cmd.app, name="sweep")
app.command("agent")(sweep_cmd.agent)


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
