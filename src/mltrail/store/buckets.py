"""Min/max buckets of a metric series by step range, for charts (pure NumPy, no SQL).

Bucketing is by *step range*, not by point count: the range ``[lo, hi]`` (the whole series by
default) is cut into ``points`` equal step intervals, and each non-empty interval becomes one
bucket with the min and max of its values (NaN ignored) and the last point in it as its
representative ``(step, timestamp, value)``. When the range holds no more points than asked
for, the points themselves come back (``downsampled: false``).

:func:`downsample` buckets points; :func:`bucket_units` buckets *units*, runs of consecutive
points already summarised (last point, min, max), as a store's chart sketches give them: a
unit goes whole to the bucket of its last point.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from mltrail.entities import json_safe
from mltrail.errors import InvalidArgumentError

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = ["bucket_units", "check_points", "downsample", "step_range"]


def check_points(points: int, step_min: int | None, step_max: int | None) -> None:
    if points < 1:
        raise InvalidArgumentError(f"points must be >= 1, got {points}")
    if step_min is not None and step_max is not None and step_min > step_max:
        raise InvalidArgumentError(f"step_min ({step_min}) must not exceed step_max ({step_max})")


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


def _bucket_of(s: npt.NDArray[np.int64], lo: int, hi: int, points: int) -> npt.NDArray[np.int64]:
    span = float(hi - lo) + 1.0
    # steps are >= lo inside the window; float64 keeps bucket edges monotonic
    bucket = ((s - lo).astype(np.float64) * (points / span)).astype(np.int64)
    np.clip(bucket, 0, points - 1, out=bucket)
    return bucket


def downsample(
    key: str,
    steps: npt.NDArray[np.int64],
    stamps: npt.NDArray[np.int64],
    values: npt.NDArray[np.float64],
    points: int,
    step_min: int | None = None,
    step_max: int | None = None,
) -> dict[str, Any]:
    """At most ``points`` buckets of the sorted series over ``[step_min, step_max]``.

    Returns:
        The REST body: ``key, downsampled, steps, timestamps, values, min, max``.
    """
    check_points(points, step_min, step_max)
    window = step_range(steps, step_min, step_max)
    s, t, vals = steps[window], stamps[window], values[window]
    if len(s) <= points:
        return {
            "key": key,
            "downsampled": False,
            "steps": s.tolist(),
            "timestamps": t.tolist(),
            "values": _floats(vals),
            "min": _floats(vals),
            "max": _floats(vals),
        }
    lo = int(s[0]) if step_min is None else step_min
    hi = int(s[-1]) if step_max is None else step_max
    return bucket_units(key, s, t, vals, vals, vals, points, lo, hi)


def bucket_units(
    key: str,
    last_step: npt.NDArray[np.int64],
    last_ms: npt.NDArray[np.int64],
    last_val: npt.NDArray[np.float64],
    lows: npt.NDArray[np.float64],
    highs: npt.NDArray[np.float64],
    points: int,
    lo: int,
    hi: int,
) -> dict[str, Any]:
    """Buckets of units in step order (a point is a unit of one): each unit goes to the
    bucket of its last step; a bucket's min/max are its units' (NaN ignored), its
    representative is its last unit's last point."""
    n = len(last_step)
    if not n:
        empty: list[Any] = []
        return {
            "key": key,
            "downsampled": True,
            "steps": empty,
            "timestamps": [],
            "values": [],
            "min": [],
            "max": [],
        }
    bucket = _bucket_of(last_step, lo, hi, points)
    starts = np.flatnonzero(np.concatenate(([True], bucket[1:] != bucket[:-1])))
    last = np.concatenate((starts[1:], [n])) - 1
    with np.errstate(invalid="ignore"):
        mins = np.fmin.reduceat(lows, starts)
        maxs = np.fmax.reduceat(highs, starts)
    return {
        "key": key,
        "downsampled": True,
        "steps": last_step[last].tolist(),
        "timestamps": last_ms[last].tolist(),
        "values": _floats(last_val[last]),
        "min": _floats(mins),
        "max": _floats(maxs),
    }
