"""Metrics from a command's console: ``mltrail run --metric 'loss=([0-9.e+-]+)' -- CMD``.

Each ``NAME=REGEX`` turns every match of REGEX in a line of the command's output (stdout or
stderr) into a point of the series NAME: the value is the regex's first group (the whole
match without one), steps count 0, 1, 2 ... per name. The patterns are recorded with the run
(state ``console_metrics``) so ``mltrail reproduce`` reads the re-run's console the same way.
"""

from __future__ import annotations

import math
import re
import threading
from typing import TYPE_CHECKING

from mltrail.errors import InvalidArgumentError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mltrail.capture.console import ConsoleLine
    from mltrail.sdk.run import Run

__all__ = ["CONSOLE_METRICS_KIND", "ConsoleMetrics", "parse_metric_specs"]

CONSOLE_METRICS_KIND = "console_metrics"


def parse_metric_specs(specs: Sequence[str]) -> list[tuple[str, re.Pattern[str]]]:
    """``NAME=REGEX`` strings as (name, compiled pattern).

    Raises:
        InvalidArgumentError: No ``=``, an empty name, a bad regex, or more than one group.
    """
    from mltrail._validation import check_key

    parsed: list[tuple[str, re.Pattern[str]]] = []
    for spec in specs:
        name, sep, regex = spec.partition("=")
        if not sep or not name.strip() or not regex:
            raise InvalidArgumentError(f"--metric {spec!r}: expected NAME=REGEX")
        try:
            pattern = re.compile(regex)
        except re.error as exc:
            raise InvalidArgumentError(f"--metric {spec!r}: bad regex: {exc}") from None
        if pattern.groups > 1:
            raise InvalidArgumentError(
                f"--metric {spec!r}: use one group around the number (or none)"
            )
        parsed.append((check_key(name.strip(), "metric"), pattern))
    return parsed


class ConsoleMetrics:
    """Feeds console lines through the patterns into ``run`` (thread-safe: both pipes)."""

    def __init__(self, run: Run, specs: Sequence[str]) -> None:
        """Compile ``specs`` (:func:`parse_metric_specs`) and record them with the run."""
        self._run = run
        self._patterns = parse_metric_specs(specs)
        self._steps = dict.fromkeys((name for name, _ in self._patterns), 0)
        self._lock = threading.Lock()
        run.recorder.state(CONSOLE_METRICS_KIND, {"patterns": list(specs)})

    def feed(self, lines: list[ConsoleLine]) -> None:
        """Log every number the patterns find in ``lines``."""
        with self._lock:
            for line in lines:
                text = line[2]
                for name, pattern in self._patterns:
                    for match in pattern.finditer(text):
                        raw = match.group(1) if pattern.groups else match.group(0)
                        try:
                            value = float(raw)
                        except (TypeError, ValueError):
                            continue
                        if math.isnan(value) and raw.strip().lower() != "nan":
                            continue
                        self._run.log({name: value}, step=self._steps[name])
                        self._steps[name] += 1
