"""What every command shares: the ``--store``/``--json`` options, output, errors.

Kept light: Rich, NumPy and the store are imported inside the functions that need them, so
that ``import mltrail.cli.main`` (and ``mltrail --help``) stays fast.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from mltrail.entities import json_safe
from mltrail.errors import MltrailError, NotFoundError
from mltrail.formatting import fmt_duration, fmt_float, fmt_time

if TYPE_CHECKING:
    from collections.abc import Iterator

    from rich.console import Console
    from rich.text import Text

    from mltrail.api import Api
    from mltrail.store.registry import StoreLocation

__all__ = [
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

STATUS_STYLES = {
    "crashed": "bold red",
    "failed": "bold red",
    "killed": "bold yellow",
    "running": "bold blue",
    "finished": "bold green",
}
_WIDE = 200  # table width when stdout is not a terminal (pipes, files): never squeeze ids


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

    Catches :class:`~mltrail.errors.MltrailError` and ``ValueError`` (bad settings in the
    environment); anything else is a bug and keeps its traceback.
    """
    try:
        yield
    except (MltrailError, ValueError) as exc:
        fail(str(exc) or type(exc).__name__)


# -- the store -----------------------------------------------------------------------------


def _db_file(location: StoreLocation) -> Path | None:
    """The SQLite file behind ``location``; None for server stores."""
    prefix = "sqlite:///"
    if location.scheme != "sqlite" or not location.uri.startswith(prefix):
        return None
    return Path(location.uri[len(prefix) :])


def has_spools(location: StoreLocation) -> bool:
    """Whether any spool waits in the store's spool folder."""
    from mltrail.events.spool import SPOOL_SUFFIX

    folder = location.spool_dir
    return folder.is_dir() and any(folder.glob(f"*{SPOOL_SUFFIX}"))


def store_exists(location: StoreLocation) -> bool:
    """False only for an SQLite store whose file does not exist yet."""
    db = _db_file(location)
    return db is None or db.exists()


def open_api(store: str | None) -> Api:
    """Open the store for reading (applying orphaned spools, as :class:`Api` does).

    A read never creates a store: naming a folder or file that holds none (a typo, the wrong
    directory) is an error rather than a new empty store.

    Raises:
        NotFoundError: no store there, and no spool waiting to create it.
        InvalidArgumentError: a malformed store URI.
        StoreError: the store cannot be opened.
    """
    from mltrail.api import Api
    from mltrail.store.registry import resolve_location

    location = resolve_location(store)
    if not store_exists(location) and not has_spools(location):
        raise NotFoundError(f"no mltrail store at {location.display} (nothing logged there yet)")
    return Api(store)


# -- output --------------------------------------------------------------------------------


def stdout_console() -> Console:
    """A Rich console on stdout; wide when stdout is not a terminal, so rows do not wrap."""
    from rich.console import Console

    console = Console(highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = _WIDE
    return console


def print_json(obj: Any) -> None:
    """Write ``obj`` to stdout as strict JSON (non-finite floats as strings), then a newline."""
    sys.stdout.write(json.dumps(json_safe(obj), allow_nan=False, indent=2) + "\n")
    sys.stdout.flush()


def status_text(status: str) -> Text:
    """A run status as coloured, badge-like text (failures red, running blue, ...)."""
    from rich.text import Text

    return Text(status, style=STATUS_STYLES.get(status, "bold"))
