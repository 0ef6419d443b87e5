"""Rich progress bars for long data operations, drawn on stderr (stdout stays for ``--json``).

A bar is shown only when stderr is a terminal; in pipes, CI logs and tests the callbacks
are no-ops, so output stays clean and cheap.
"""

from __future__ import annotations

import contextlib
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = ["Advance", "bar", "progress_enabled"]

Advance = "Callable[[int], None]"


def progress_enabled(requested: bool = True) -> bool:
    """Whether to draw bars: asked for and stderr is a terminal."""
    return requested and sys.stderr.isatty()


@contextlib.contextmanager
def bar(
    description: str, total: int | None, *, unit: str = "files", enabled: bool = True
) -> Iterator[Callable[[int], None]]:
    """A progress bar; yields ``advance(n)`` (a no-op when bars are off).

    Args:
        description: What is happening (``"hashing"``, ``"pushing to s3"``).
        total: Units expected (None: unknown).
        unit: ``"files"`` or ``"bytes"`` (bytes show a transfer speed).
        enabled: Draw at all (still only on a terminal).
    """
    if not progress_enabled(enabled):
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    counter = (
        (DownloadColumn(), TransferSpeedColumn()) if unit == "bytes" else (MofNCompleteColumn(),)
    )
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        *counter,
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)
