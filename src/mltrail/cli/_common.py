"""What every command shares: the ``--store``/``--json`` options, output, errors.

Kept light: Rich, NumPy and the store are imported inside the functions that need them, so
that ``import mltrail.cli.main`` (and ``mltrail --help``) stays fast.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from mltrail.cli._light import (
    STATUS_STYLES,
    CommandError,
    has_spools,
    open_api,
    print_json,
    status_text,
    stdout_console,
    store_exists,
)
from mltrail.errors import MltrailError
from mltrail.formatting import fmt_duration, fmt_float, fmt_time

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = [
    "STATUS_STYLES",
    "CommandError",
    "JsonOption",
    "StoreOption",
    "cli_errors",
    "fail",
    "fmt_duration",
    "fmt_float",
    "fmt_time",
    "has_spools",
    "open_api",
    "print_json",
    "status_text",
    "stdout_console",
    "store_exists",
]

StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        metavar="URI",
        help=(
            "A directory, sqlite:///file.db or postgresql://...; default: $MLTRAIL_STORE, "
            "else .mltrail/ at the git root (or the current directory)."
        ),
        show_default=False,
    ),
]
JsonOption = Annotated[
    bool,
    typer.Option("--json", help="Print machine-readable JSON on stdout (and nothing else)."),
]


# -- errors --------------------------------------------------------------------------------


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: <message>`` in red on one line of stderr and exit.

    Args:
        message: what went wrong (printed literally, never as Rich markup).
        code: the exit status (1: an expected error).

    Raises:
        typer.Exit: always, with ``code``.
    """
    from rich.console import Console
    from rich.text import Text

    err = Console(stderr=True, highlight=False, soft_wrap=True)
    err.print(Text(f"error: {' '.join(message.split())}", style="red"))
    raise typer.Exit(code)


@contextlib.contextmanager
def cli_errors() -> Iterator[None]:
    """Turn the errors a user can cause into ``error: ...`` and exit status 1.

    Catches :class:`~mltrail.errors.MltrailError`, :class:`CommandError` and ``ValueError``
    (bad settings in the environment); anything else is a bug and keeps its traceback.
    """
    try:
        yield
    except (MltrailError, CommandError, ValueError) as exc:
        fail(str(exc) or type(exc).__name__)
