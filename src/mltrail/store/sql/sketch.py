"""Charts of a metric series from chunk sketches: reads O(chunks + points drawn), not O(series).

A chart asks for at most ``points`` min/max buckets over a step range (the rules are
:mod:`mltrail.store.buckets`'). Every chunk has a sketch row (``metric_sketches``): bounds,
order, last point, min/max, and a record per ``SKETCH_BLOCK`` points. The chart:

1. reads the key's sketch rows (small columns only) and, when their point counts do not add
   up to the summary's (chunks written before the sketches existed), falls back to the points;
2. reads the points of the chunks in range and buckets them exactly when the range holds at
   most ``RAW_POINTS`` points (or the chunks in range are out of step order);
3. otherwise reads points only of the (at most two) chunks cut by the range's ends; a chunk
   that lies within one bucket is one unit (its last point, min, max); a chunk across bucket
   edges is read as its blocks' records. Each unit goes whole to the bucket of its last
   point, so a bucket edge may be off by less than one block (``SKETCH_BLOCK`` points); every
   bucket's min and max are exact for the points it covers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import sqlalchemy as sa

from mltrail.store import buckets
from mltrail.store.sql.append import SKETCH_DTYPE
from mltrail.store.sql.schema import metric_chunks, metric_sketches, metric_summaries

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy.typing as npt

__all__ = ["RAW_POINTS", "chart"]

#: ranges of at most this many points are bucketed exactly from their points
RAW_POINTS = 1 << 18
_IN = 500

_kc = metric_sketches.c
_SKETCH_ROWS = (
    sa.select(
        _kc.seq,
        _kc.n,
        _kc.step_min,
        _kc.step_max,
        _kc.is_sorted,
        _kc.last_step,
        _kc.last_ms,
        _kc.last_value,
        _kc.v_min,
        _kc.v_max,
    )
    .where(_kc.run_id == sa.bindparam("run_id"), _kc.key == sa.bindparam("key"))
    .order_by(_kc.seq)
)
_BLOCKS = sa.select(_kc.seq, _kc.blocks).where(
    _kc.run_id == sa.bindparam("run_id"),
    _kc.key == sa.bindparam("key"),
    _kc.seq.in_(sa.bindparam("seqs", expanding=True)),
)
_mc = metric_chunks.c
_POINTS = (
    sa.select(_mc.seq, _mc.steps, _mc.timestamps, _mc.vals)
    .where(
        _mc.run_id == sa.bindparam("run_id"),
        _mc.key == sa.bindparam("key"),
        _mc.seq.in_(sa.bindparam("seqs", expanding=True)),
    )
    .order_by(_mc.seq)
)
_COUNT = sa.select(metric_summaries.c.count).where(
    metric_summaries.c.run_id == sa.bindparam("run_id"),
    metric_summaries.c.key == sa.bindparam("key"),
)


def _col(rows: Sequence[Any], i: int, dtype: Any) -> Any:
    if dtype is float:
        return np.array([np.nan if r[i] is None else r[i] for r in rows], dtype=np.float64)
    return np.array([r[i] for r in rows], dtype=dtype)


def _points(
    conn: sa.Connection, run_id: str, key: str, seqs: list[int], ordered: bool
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """The points of chunks ``seqs``, ordered by (step, timestamp) as ``read_series`` does."""
    parts: list[Any] = []
    for i in range(0, len(seqs), _IN):
        found = conn.execute(_POINTS, {"run_id": run_id, "key": key, "seqs": seqs[i : i + _IN]})
        parts.extend(found.all())
    parts.sort(key=lambda r: r.seq)
    s = np.concatenate([np.frombuffer(r.steps, "<i8") for r in parts] or [np.empty(0, "<i8")])
    t = np.concatenate([np.frombuffer(r.timestamps, "<i8") for r in parts] or [np.empty(0, "<i8")])
    v = np.concatenate([np.frombuffer(r.vals, "<f8") for r in parts] or [np.empty(0, "<f8")])
    s, t, v = s.astype(np.int64), t.astype(np.int64), v.astype(np.float64)
    if not ordered:
        order = np.lexsort((t, s))  # stable: logging order breaks (step, ts) ties
        s, t, v = s[order], t[order], v[order]
    return s, t, v


def chart(
    conn: sa.Connection,
    run_id: str,
    key: str,
    points: int,
    step_min: int | None = None,
    step_max: int | None = None,
) -> dict[str, Any] | None:
    """The chart body (see :func:`mltrail.store.buckets.downsample`); None when the key has
    no sketched series to draw from (no points, or chunks written before sketches)."""
    buckets.check_points(points, step_min, step_max)
    args = {"run_id": run_id, "key": key}
    rows = conn.execute(_SKETCH_ROWS, args).all()
    total = conn.execute(_COUNT, args).scalar()
    if not rows or total is None or sum(r.n for r in rows) != total:
        return None
    seq = _col(rows, 0, np.int64)
    n = _col(rows, 1, np.int64)
    smin, smax = _col(rows, 2, np.int64), _col(rows, 3, np.int64)
    ordered = bool(all(r.is_sorted for r in rows) and np.all(smax[:-1] <= smin[1:]))
    lo = int(smin.min()) if step_min is None else step_min
    hi = int(smax.max()) if step_max is None else step_max
    inside = np.flatnonzero((smax >= lo) & (smin <= hi))
    if not ordered or int(n[inside].sum()) <= max(RAW_POINTS, points):
        s, t, v = _points(conn, run_id, key, seq[inside].tolist(), ordered)
        return buckets.downsample(key, s, t, v, points, step_min, step_max)
    # in step order: chunks cut by the range's ends give points, the others units
    cut = (smin[inside] < lo) | (smax[inside] > hi)
    b_lo = buckets_of(smin[inside], lo, hi, points)
    b_hi = buckets_of(smax[inside], lo, hi, points)
    whole = ~cut & (b_lo == b_hi)
    split = ~cut & ~whole
    edge_seqs = seq[inside[cut]].tolist()
    pts = _points(conn, run_id, key, edge_seqs, True) if edge_seqs else None
    blocks = _blocks(conn, run_id, key, seq[inside[split]].tolist())
    last_step, last_ms = _col(rows, 5, np.int64), _col(rows, 6, np.int64)
    last_val, v_min, v_max = _col(rows, 7, float), _col(rows, 8, float), _col(rows, 9, float)
    units: list[tuple[Any, ...]] = []
    for j, c in enumerate(inside.tolist()):
        if whole[j]:
            units.append(
                (
                    last_step[c : c + 1],
                    last_ms[c : c + 1],
                    last_val[c : c + 1],
                    v_min[c : c + 1],
                    v_max[c : c + 1],
                )
            )
        elif split[j]:
            b = blocks[int(seq[c])]
            units.append((b["step"], b["ms"], b["val"], b["min"], b["max"]))
        elif pts is not None:
            s, t, v = pts
            keep = (s >= max(lo, int(smin[c]))) & (s <= min(hi, int(smax[c])))
            units.append((s[keep], t[keep], v[keep], v[keep], v[keep]))
    u5 = [np.concatenate([u[i] for u in units]) for i in range(5)]
    return buckets.bucket_units(key, u5[0], u5[1], u5[2], u5[3], u5[4], points, lo, hi)


def buckets_of(s: npt.NDArray[np.int64], lo: int, hi: int, points: int) -> Any:
    span = float(hi - lo) + 1.0
    b = (np.clip(s, lo, hi) - lo).astype(np.float64) * (points / span)
    return np.clip(b.astype(np.int64), 0, points - 1)


def _blocks(conn: sa.Connection, run_id: str, key: str, seqs: list[int]) -> dict[int, Any]:
    out: dict[int, Any] = {}
    for i in range(0, len(seqs), _IN):
        part = {"run_id": run_id, "key": key, "seqs": seqs[i : i + _IN]}
        for r in conn.execute(_BLOCKS, part):
            out[int(r.seq)] = np.frombuffer(r.blocks, SKETCH_DTYPE)
    return out
