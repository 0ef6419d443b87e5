"""An optional Rich progress bar (on stderr) that costs nothing when turned off."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from types import TracebackType


class Bar:
    """``with Bar(desc, total, enabled) as bar: bar.advance(n, nbytes)``; thread-safe."""

    def __init__(self, description: str, total: int, *, enabled: bool, unit_bytes: int = 0):
        self.enabled = enabled and total > 0
        self._desc = description
        self._total = total
        self._bytes_total = unit_bytes
        self._progress: Any = None
        self._task: Any = None
        self._lock = threading.Lock()

    def __enter__(self) -> Bar:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task(self._desc, total=self._total)
        return self

    def advance(self, n: int = 1) -> None:
        """Count ``n`` more items done."""
        if self._progress is not None:
            with self._lock:
                self._progress.advance(self._task, n)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()
