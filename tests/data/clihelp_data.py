"""Invoke the ``mltrail`` CLI in-process for the data tests."""

from __future__ import annotations

import json
from typing import Any

from typer.testing import CliRunner

from mltrail.cli.main import app


def run_cli(*args: str, code: int = 0) -> str:
    """Run ``mltrail ARGS``; assert the exit code; return stdout."""
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    return result.stdout


def run_json(*args: str) -> Any:
    """Run ``mltrail ARGS --json`` and parse strict JSON from stdout."""

    def reject(name: str) -> Any:
        raise AssertionError(f"non-standard JSON literal {name}")

    return json.loads(run_cli(*args, "--json"), parse_constant=reject)


def run_error(*args: str) -> str:
    """Run ``mltrail ARGS`` expecting exit 1; return stderr."""
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 1, (result.stdout, result.stderr, result.exception)
    return result.stderr
