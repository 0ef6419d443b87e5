"""What the commands share that needs neither Typer nor Rich at import: the store, JSON, errors.

The fast path of the console script (:mod:`mltrail.cli._fast`) runs ``runs list``,
``runs show`` and ``metrics`` through these helpers without importing Typer, Click or
pydantic; the Typer commands use the same ones (re-exported by :mod:`mltrail.cli._common`),
so both print the same thing. Rich is imported inside the functions that draw.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltrail.entities import json_safe
from mltrail.errors import NotFoundError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

    from mltrail.api import Api
    from mltrail.entities import RunRecord
    from mltrail.store.base import ConsoleLine
    from mltrail.store.registry import StoreLocation
    from mltrail.store.sql.lite import LiteReader

__all__ = [
    "STATUS_STYLES",
    "CommandError",
    "has_spools",
    "open_api",
    "print_json",
    "status_text",
    "stdout_console",
    "store_exists",
]

STATUS_STYLES = {
    "crashed": "bold red",
    "failed": "bold red",
    "killed": "bold yellow",
    "pruned": "yellow",
    "running": "bold blue",
    "finished": "bold green",
}
_WIDE = 200  # table width when stdout is not a terminal (pipes, files): never squeeze ids


class CommandError(Exception):
    """An error a command reports as ``error: <message>`` (exit status 1), never a traceback.

    For failures that are not :class:`~mltrail.errors.MltrailError` (an output file that
    cannot be written, a page past the end); both the Typer commands and the fast path catch it.
    """


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


def _lite_reader(store: str | None) -> LiteReader | None:
    """A reader of the store with the standard library alone (no SQLAlchemy, no NumPy: see
    :mod:`mltrail.store.sql.lite`), or None when the full path must answer: not an embedded
    store, a spool waiting to be recovered, another schema revision."""
    import sys

    from mltrail.store.registry import resolve_location

    location = resolve_location(store)
    db = _db_file(location)
    if db is None or has_spools(location):
        return None
    finisher = sys.modules.get("mltrail.events.finisher")
    if finisher is not None:  # runs this process finished, still draining: read after them
        finisher.wait(location.uri)
    from mltrail.store.sql.lite import LiteReader

    return LiteReader.open(db)


def lite_runs(store: str | None, project: str | None, limit: int) -> list[RunRecord] | None:
    """The newest ``limit`` runs, read light (None: the full path must answer)."""
    reader = _lite_reader(store)
    if reader is None:
        return None
    with reader:
        return reader.newest_runs(project, limit)


def lite_run(
    store: str | None, run: str, tail: int
) -> tuple[RunRecord, dict[str, dict[str, Any]], list[ConsoleLine], list[str]] | None:
    """A run (by id or prefix), its state, its last ``tail`` console lines and the verdicts
    of its reproductions, read light; None when the full path must answer (see
    :func:`_lite_reader`, and a run with artifacts, whose versions the artifact store reads).

    Raises:
        NotFoundError, AmbiguousIdError: as the store's own resolution of ``run``.
    """
    reader = _lite_reader(store)
    if reader is None:
        return None
    with reader:
        run_id = reader.resolve_run_id(run)
        if reader.has_artifacts(run_id):
            return None
        from mltrail.repro.verdict import REPRODUCTION_TAG, VERDICT_TAG

        (record,) = reader.load([run_id])
        verdicts = reader.tagged_values(run_id, REPRODUCTION_TAG, VERDICT_TAG)
        return record, reader.state(run_id), reader.console_tail(run_id, tail), verdicts


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
