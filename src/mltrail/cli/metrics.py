"""``mltrail metrics``: the Typer command; the export itself is :mod:`.metrics_export`."""

from __future__ import annotations

from pathlib import Path  # noqa: TC003 (Typer reads the annotations at runtime)
from typing import Annotated

import typer

from mltrail.cli._common import StoreOption, cli_errors
from mltrail.cli.metrics_export import SLICE, ExportFormat, export, write_csv, write_json

__all__ = ["SLICE", "ExportFormat", "export_metrics", "write_csv", "write_json"]


def export_metrics(
    run: Annotated[str, typer.Argument(metavar="RUN", help="A run id or unambiguous id prefix.")],
    keys: Annotated[
        list[str] | None,
        typer.Argument(metavar="KEY", help="Metric keys to export (default: all)."),
    ] = None,
    fmt: Annotated[
        ExportFormat, typer.Option("--format", case_sensitive=False, help="Output format.")
    ] = ExportFormat.CSV,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", metavar="FILE", help="Write here instead of stdout.", dir_okay=False
        ),
    ] = None,
    store: StoreOption = None,
) -> None:
    """Export the full series of a run's metrics (all keys unless KEYs are given)."""
    with cli_errors():
        export(run, keys, fmt, output, store)
