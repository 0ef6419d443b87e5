"""Metric series for charts: min/max buckets by step range, raw pages, binary form.

The bucketing rules are :mod:`mltrail.store.buckets`' (by *step range*: ``points`` equal step
intervals over ``[step_min, step_max]``, each non-empty one a bucket with its min and max, NaN
ignored, and its last point; the points themselves when no more than ``points``).
:func:`chart` is what the series endpoint should answer with: a store that keeps chart
summaries (``HasMetricBuckets``, the SQL stores) draws from them without loading the series;
any other store's series is loaded and bucketed here. No per-point Python objects are made
except for the at most ``points`` buckets that go into the JSON answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from mltrail.entities import json_safe
from mltrail.store import buckets
from mltrail.store.buckets import step_range
from mltrail.store.optional import HasMetricBuckets

if TYPE_CHECKING:
    import numpy.typing as npt

    from mltrail.store.base import MetricSeries, TrackingStore

__all__ = ["chart", "downsample", "pack_binary", "raw_page", "step_range"]


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
    return buckets.downsample(
        series.key, series.steps, series.timestamps, series.values, points, step_min, step_max
    )


def chart(
    store: TrackingStore,
    run_id: str,
    key: str,
    points: int,
    step_min: int | None = None,
    step_max: int | None = None,
) -> dict[str, Any]:
    """The downsampled body for the series endpoint: from the store's chart summaries when
    it keeps them (O(chunks + points drawn)), else by loading the whole series."""
    if isinstance(store, HasMetricBuckets):
        return store.metric_buckets(run_id, key, points, step_min, step_max)
    return downsample(store.metric_history(run_id, key), points, step_min, step_max)


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
