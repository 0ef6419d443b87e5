"""Metric series for charts: min/max buckets by step range, raw pages, binary form.

Everything works on the NumPy arrays :meth:`TrackingStore.metric_history` returns (sorted by
``(step, timestamp)``); no per-point Python objects are made except for the at most
``points`` buckets that go into the JSON answer.

Bucketing is by *step range*, not by point count: the range ``[step_min, step_max]`` (the
whole series by default) is cut into ``points`` equal step intervals, and each non-empty
interval becomes one bucket with the min and max of its values (NaN ignored) and the last
point in it as its representative ``(step, timestamp, value)``. A chart that zooms asks for
a narrower range with the same ``points`` and gets finer buckets. When the range holds no
more points than asked for, the points themselves come back (``downsampled: false``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from mltrail.entities import json_safe
from mltrail.errors import InvalidArgumentError

if TYPE_CHECKING:
    import numpy.typing as npt

    from mltrail.store.base import MetricSeries

__all__ = ["downsample", "pack_binary", "raw_page", "step_range"]


def step_range(steps: npt.NDArray[np.int64], step_min: int | None, step_max: int | None) -> slice:
    """The slice of sorted ``steps`` within ``[step_min, step_max]`` (either end open)."""
    if step_min is not None and step_max is not None and step_min > step_max:
        raise InvalidArgumentError(f"step_min ({step_min}) must not exceed step_max ({step_max})")
    lo = 0 if step_min is None else int(np.searchsorted(steps, step_min, side="left"))
    hi = len(steps) if step_max is None else int(np.searchsorted(steps, step_max, side="right"))
    return slice(lo, max(lo, hi))


def _floats(values: npt.NDArray[np.float64]) -> list[Any]:
    out: list[Any] = json_safe(values.tolist())
    return out


def downsample(
    series: MetricSeries,
    points: int,
    step_min: int | None = None,
    step_max: int | None = None,
) -> dict[str, Any]:
    """At most ``points`` min/max buckets of ``series`` over ``[step_min, step_max]``.

    Returns:
        The REST body: ``key, downsampled, steps, timestamps, values, min, max``.
    """
    if points < 1:
        raise InvalidArgumentError(f"points must be >= 1, got {points}")
    window = step_range(series.steps, step_min, step_max)
    s = series.steps[window]
    t = series.timestamps[window]
    vals = series.values[window]
    n = len(s)
    if n <= points:
        return {
            "key": series.key,
            "downsampled": False,
            "steps": s.tolist(),
            "timestamps": t.tolist(),
            "values": _floats(vals),
            "min": _floats(vals),
            "max": _floats(vals),
        }
    lo = int(s[0]) if step_min is None else step_min
    hi = int(s[-1]) if step_max is None else step_max
    span = float(hi - lo) + 1.0
    # steps are >= lo inside the window; float64 keeps bucket edges monotonic
    bucket = ((s - lo).astype(np.float64) * (points / span)).astype(np.int64)
    np.clip(bucket, 0, points - 1, out=bucket)
    starts = np.flatnonzero(np.concatenate(([True], bucket[1:] != bucket[:-1])))
    last = np.concatenate((starts[1:], [n])) - 1
    with np.errstate(invalid="ignore"):
        lows = np.fmin.reduceat(vals, starts)
        highs = np.fmax.reduceat(vals, starts)
    return {
        "key": series.key,
        "downsampled": True,
        "steps": s[last].tolist(),
        "timestamps": t[last].tolist(),
        "values": _floats(vals[last]),
        "min": _floats(lows),
        "max": _floats(highs),
    }


def raw_page(
    series: MetricSeries,
    offset: int,
    limit: int,
    step_min: int | None = None,
    step_max: int | None = None,
) -> dict[str, Any]:
    """Points ``offset .. offset+limit`` of the series (within the step range)."""
    window = step_range(series.steps, step_min, step_max)
    start = min(window.start + offset, window.stop)
    stop = min(start + limit, window.stop)
    return {
        "key": series.key,
        "downsampled": False,
        "steps": series.steps[start:stop].tolist(),
        "timestamps": series.timestamps[start:stop].tolist(),
        "values": _floats(series.values[start:stop]),
        "next_offset": None if stop >= window.stop else stop - window.start,
    }


def pack_binary(
    series: MetricSeries, step_min: int | None = None, step_max: int | None = None
) -> tuple[bytes, int]:
    """The series as little-endian int64 steps, int64 timestamps, float64 values."""
    window = step_range(series.steps, step_min, step_max)
    parts = (
        np.ascontiguousarray(series.steps[window], "<i8").tobytes(),
        np.ascontiguousarray(series.timestamps[window], "<i8").tobytes(),
        np.ascontiguousarray(series.values[window], "<f8").tobytes(),
    )
    return b"".join(parts), window.stop - window.start
