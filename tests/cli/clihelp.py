"""Helpers the CLI tests share: invoke the app in-process, parse its strict JSON."""

from __future__ import annotations

import json
from typing import Any

from typer.testing import CliRunner, Result

from mltrail.cli.main import app

runner = CliRunner()


def cli(*args: str, env: dict[str, str] | None = None) -> Result:
    """Invoke the ``mltrail`` app with ``args``."""
    return runner.invoke(app, list(args), env=env)


def strict_json(text: str) -> Any:
    """json.loads that rejects the non-standard NaN/Infinity literals."""

    def reject(name: str) -> Any:
        raise AssertionError(f"non-standard JSON literal {name} in output")

    return json.loads(text, parse_constant=reject)
