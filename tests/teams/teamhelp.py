"""Helpers the team tests share: the CLI in-process."""

from __future__ import annotations

from typer.testing import CliRunner, Result

from mltrail.cli.main import app

runner = CliRunner()


def cli(*args: str) -> Result:
    """Invoke the ``mltrail`` app with ``args``."""
    return runner.invoke(app, list(args))
