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
    help=(
        "Experiment tracking and reproducibility. Every run keeps what it depended on (code "
        "and its uncommitted diff, data digests, config, environment, seeds, hardware) and "
        "what it produced (metrics, console, files, artifacts), in an embedded store or a team "
        "server.\n\n"
        "Start with: mltrail run -- python train.py; then mltrail runs list, mltrail runs "
        "show RUN, mltrail diff RUN RUN, mltrail reproduce RUN, mltrail ui."
    ),
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


def _hide_flag_types() -> None:
    """A flag takes no value, but Typer's help prints ``<bool>`` beside it: leave it out."""
    from typer.core import TyperOption

    shown = TyperOption.display_type_rich
    if getattr(shown, "_mltrail", False):
        return

    def display_type_rich(self: TyperOption, ctx: typer.Context) -> str | None:
        return None if self.is_flag else shown(self, ctx)

    display_type_rich._mltrail = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign,assignment]


_hide_flag_types()
_TRACK, _INSPECT, _REPRO = "Track", "Inspect", "Reproduce"
_DATA, _PROVE, _SERVE = "Data, artifacts and models", "Provenance", "Server and stores"
_PASSTHROUGH = {"allow_interspersed_args": False}
# Track: run things and record them
app.command("run", context_settings=_PASSTHROUGH, rich_help_panel=_TRACK)(run_cmd.run_command)
app.command("preflight", context_settings=_PASSTHROUGH, rich_help_panel=_TRACK)(run_cmd.preflight)
app.add_typer(sweep_cmd.app, name="sweep", rich_help_panel=_TRACK)
app.command("agent", rich_help_panel=_TRACK)(sweep_cmd.agent)
app.command("sync", rich_help_panel=_TRACK)(sync.sync)
# Inspect: read what was recorded
app.add_typer(runs.app, name="runs", rich_help_panel=_INSPECT)
app.add_typer(projects.app, name="projects", rich_help_panel=_INSPECT)
app.command("metrics", rich_help_panel=_INSPECT)(metrics.export_metrics)
app.command("diff", rich_help_panel=_INSPECT)(diff_cmd.diff)
app.command("lineage", rich_help_panel=_INSPECT)(artifacts_cmd.lineage)
# Reproduce: re-run and judge
app.command("reproduce", rich_help_panel=_REPRO)(repro_cmd.reproduce)
app.command("verify-determinism", context_settings=_PASSTHROUGH, rich_help_panel=_REPRO)(
    repro_cmd.verify_determinism
)
app.command("check", rich_help_panel=_REPRO)(repro_cmd.check)
# Data, artifacts and models
app.add_typer(data_cmd.app, name="data", rich_help_panel=_DATA)
app.add_typer(artifacts_cmd.app, name="artifacts", rich_help_panel=_DATA)
app.add_typer(models_cmd.app, name="models", rich_help_panel=_DATA)
models_cmd.app.command("sign")(attest_cmd.sign_model)
models_cmd.app.command("export-docs")(attest_cmd.export_docs)
# Provenance
app.add_typer(audit_cmd.app, name="audit", rich_help_panel=_PROVE)
app.add_typer(attest_cmd.app, name="attest", rich_help_panel=_PROVE)
app.add_typer(openlineage_cmd.app, name="openlineage", rich_help_panel=_PROVE)
# Server and stores
app.command("server", rich_help_panel=_SERVE)(server_cmd.server)
app.command("ui", rich_help_panel=_SERVE)(server_cmd.ui)
app.add_typer(server_cmd.token_app, name="token", rich_help_panel=_SERVE)
app.add_typer(db_cmd.app, name="db", rich_help_panel=_SERVE)
app.add_typer(store_cmd.app, name="store", rich_help_panel=_SERVE)


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
