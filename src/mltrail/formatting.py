"""Values for people, the same in the CLI and the web UI: floats, times, durations, sizes.

Leaf module (stdlib only): the CLI and the server both import it, and neither imports the other.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

__all__ = ["KEY_PACKAGES", "fmt_bytes", "fmt_duration", "fmt_float", "fmt_time"]

#: Packages worth naming first wherever an environment is summarised.
KEY_PACKAGES = (
    "numpy",
    "torch",
    "jax",
    "jaxlib",
    "tensorflow",
    "scikit-learn",
    "pandas",
    "transformers",
    "lightning",
)


def fmt_float(x: float | None) -> str:
    """A float for a table: 6 significant digits; ``nan``/``inf``/``-inf`` as such."""
    if x is None:
        return ""
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.6g}"


def fmt_time(ms: int | None) -> str:
    """Epoch milliseconds as local time ``YYYY-mm-dd HH:MM:SS``; empty when unknown."""
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def fmt_duration(ms: int | None) -> str:
    """A duration for people: ``850ms``, ``12.3s``, ``4m 05s``, ``2h 03m``, ``3d 04h``."""
    if ms is None:
        return ""
    if ms < 1000:
        return f"{max(ms, 0)}ms"
    s = ms / 1000
    if s < 60:
        return f"{s:.1f}s"
    m, sec = divmod(int(s), 60)
    if m < 60:
        return f"{m}m {sec:02d}s"
    h, m = divmod(m, 60)
    if h < 24:
        return f"{h}h {m:02d}m"
    d, h = divmod(h, 24)
    return f"{d}d {h:02d}h"


def fmt_bytes(n: Any, unknown: str = "unknown") -> str:
    """A byte count for people: ``512 B``, ``1.5 KiB``, ``3.2 GiB``; ``unknown`` otherwise."""
    if not isinstance(n, int | float) or isinstance(n, bool) or not math.isfinite(n):
        return unknown
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"  # pragma: no cover - the loop always returns
