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

from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np
import sqlalchemy as sa

from mltrail.store import buckets
from mltrail.store.sql import statements as q
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
_OF_KEY = (_kc.run_id == sa.bindparam("run_id"), _kc.key == sa.bindparam("key"))
#: chunks, points, first and last step, and whether every chunk is in step order
_AGG = sa.select(
    sa.func.count(),
    sa.func.coalesce(sa.func.sum(_kc.n), 0),
    sa.func.min(_kc.step_min),
    sa.func.max(_kc.step_max),
    sa.func.min(sa.case((_kc.is_sorted, 1), else_=0)),
).where(*_OF_KEY)
_prev = (
    sa.select(_kc.step_min, sa.func.lag(_kc.step_max).over(order_by=_kc.seq).label("prev"))
    .where(*_OF_KEY)
    .subquery()
)
#: consecutive chunks that overlap in steps (the series is then sorted when read)
_OVERLAPS = sa.select(sa.func.count()).select_from(_prev).where(_prev.c.prev > _prev.c.step_min)
#: the chunks that hold steps of ``[lo, hi]``, in order
_WINDOW_ROWS = (
    sa.select(
        _kc.seq,
        _kc.n,
        _kc.step_min,
        _kc.step_max,
        _kc.last_step,
        _kc.last_ms,
        _kc.last_value,
        _kc.v_min,
        _kc.v_max,
    )
    .where(*_OF_KEY, _kc.step_max >= sa.bindparam("lo"), _kc.step_min <= sa.bindparam("hi"))
    .order_by(_kc.seq)
)
_EMPTY = (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float64))
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
    agg = conn.execute(_AGG, args).one()
    total = conn.execute(_COUNT, args).scalar()
    if not agg[0] or total is None or int(agg[1]) != int(total):
        return None
    ordered = bool(agg[4]) and not conn.execute(_OVERLAPS, args).scalar()
    lo = int(agg[2]) if step_min is None else step_min
    hi = int(agg[3]) if step_max is None else step_max
    x = q.Executor(conn)
    rows = x.execute(_WINDOW_ROWS, {**args, "lo": lo, "hi": hi}).fetchall()
    if not rows:
        return buckets.downsample(key, *_EMPTY, points, step_min, step_max)
    cols = list(zip(*rows, strict=True))
    seq, n, smin, smax = (np.array(c, dtype=np.int64) for c in cols[:4])
    if not ordered or int(n.sum()) <= max(RAW_POINTS, points):
        s, t, v = _points(conn, run_id, key, seq.tolist(), ordered)
        return buckets.downsample(key, s, t, v, points, step_min, step_max)
    last_step, last_ms = np.array(cols[4], np.int64), np.array(cols[5], np.int64)
    last_val, v_min, v_max = (_floats(c) for c in cols[6:9])
    # in step order: chunks cut by the range's ends give points, chunks within one bucket
    # one unit each (runs of them one slice), chunks across bucket edges their blocks
    cut = (smin < lo) | (smax > hi)
    whole = ~cut & (buckets_of(smin, lo, hi, points) == buckets_of(smax, lo, hi, points))
    edge_seqs = seq[cut].tolist()
    pts = _points(conn, run_id, key, edge_seqs, True) if edge_seqs else None
    blocks = _blocks(conn, run_id, key, seq[~cut & ~whole].tolist())
    # every unit as a sketch record, in step order, concatenated once
    chunk_units = np.empty(len(seq), SKETCH_DTYPE)
    chunk_units["step"], chunk_units["ms"], chunk_units["val"] = last_step, last_ms, last_val
    chunk_units["min"], chunk_units["max"] = v_min, v_max
    units: list[Any] = []
    j, m = 0, len(seq)
    stops = np.append(np.flatnonzero(~whole), m)  # where each run of whole chunks ends
    while j < m:
        if whole[j]:
            k = int(stops[np.searchsorted(stops, j)])
            units.append(chunk_units[j:k])
            j = k
            continue
        if cut[j]:
            assert pts is not None
            s, t, v = pts
            keep = (s >= max(lo, int(smin[j]))) & (s <= min(hi, int(smax[j])))
            one = np.empty(int(keep.sum()), SKETCH_DTYPE)
            one["step"], one["ms"], one["val"] = s[keep], t[keep], v[keep]
            one["min"] = one["max"] = v[keep]
            units.append(one)
        else:
            units.append(blocks[int(seq[j])])
        j += 1
    # as bytes: concatenating record arrays promotes their dtype once per array (slow)
    u = np.concatenate([a.view(np.uint8) for a in units]).view(SKETCH_DTYPE)
    step, ms, val, lows, highs = (u[f] for f in ("step", "ms", "val", "min", "max"))
    return buckets.bucket_units(key, step, ms, val, lows, highs, points, lo, hi)


def _floats(col: Sequence[float | None]) -> npt.NDArray[np.float64]:
    return np.array([np.nan if x is None else x for x in col], dtype=np.float64)


def buckets_of(s: npt.NDArray[np.int64], lo: int, hi: int, points: int) -> Any:
    span = float(hi - lo) + 1.0
    b = (np.clip(s, lo, hi) - lo).astype(np.float64) * (points / span)
    return np.clip(b.astype(np.int64), 0, points - 1)


def _blocks(conn: sa.Connection, run_id: str, key: str, seqs: list[int]) -> dict[int, Any]:
    out: dict[int, Any] = {}
    x = q.Executor(conn)
    for i in range(0, len(seqs), _IN):
        part = seqs[i : i + _IN]
        params: dict[str, Any] = {f"s{j}": v for j, v in enumerate(part)}
        params.update(run_id=run_id, key=key)
        for seq, blob in x.execute(_blocks_stmt(len(part)), params).fetchall():
            out[int(seq)] = np.frombuffer(blob, SKETCH_DTYPE)
    return out


@cache
def _blocks_stmt(size: int) -> Any:
    """SELECT the blocks of ``size`` chunks (prebuilt per size, run on the DBAPI cursor)."""
    binds: list[Any] = [sa.bindparam(f"s{j}") for j in range(size)]
    return sa.select(_kc.seq, _kc.blocks).where(*_OF_KEY, _kc.seq.in_(binds))
