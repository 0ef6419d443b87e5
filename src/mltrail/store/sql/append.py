"""Append a batch's metric points to chunked series, vectorised across keys.

Each key's points go to its open chunk (the newest) or to new chunks (see
:func:`_merge_open`). What is computed per point or per chunk (bounds, order, min/max, the
last point, the chart sketch of every ``SKETCH_BLOCK`` points) is computed for all the keys
of a batch at once: the batch's points, with each merged key's open chunk in front, are laid
end to end in one array per column and reduced by segment with NumPy. Python touches each
key a few times (its summary, its rows), never each point.

Open chunks small enough to be rewritten are kept in memory between batches
(:class:`OpenChunks`, one per store object), so an append reads no chunk. What the memory
says is checked against the summary row read in the same transaction: a chunk's
``(open_seq, open_n)`` only grows, so when another writer (another process, another store
object) appended to the key the numbers differ and the chunk is read from the database.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import sqlalchemy as sa

from mltrail.store.sql import statements as q
from mltrail.store.sql.schema import CHUNK_POINTS, SKETCH_BLOCK, metric_summaries

if TYPE_CHECKING:
    from collections.abc import Mapping

    import numpy.typing as npt

    from mltrail.store.batch import MetricSeries

__all__ = ["SKETCH_DTYPE", "OpenChunk", "OpenChunks", "append_metrics"]

_IN_CHUNK = 500  # keys per IN (...) list
REWRITE_LIMIT = 2048  # points: an open chunk below this size is rewritten with new points
#: points of open chunks rewritten per batch, at most (about): with many keys the per-key
#: limit drops so a batch never rewrites much more than it adds
REWRITE_BUDGET = 1 << 20
MIN_REWRITE = 64
#: points applied together (their columns, stats and packed rows are in memory at once)
GROUP_POINTS = 1 << 19
#: points of open chunks kept in memory per store object (24 bytes each)
CACHE_POINTS = 1 << 20

SKETCH_DTYPE = np.dtype(
    [("step", "<i8"), ("ms", "<i8"), ("val", "<f8"), ("min", "<f8"), ("max", "<f8")]
)


@dataclass(slots=True)
class OpenChunk:
    """A key's newest chunk as stored: its sequence number, size and packed arrays."""

    seq: int
    n: int
    steps: bytes
    stamps: bytes
    vals: bytes


class OpenChunks:
    """Open chunks kept in memory by a store object: run id -> key -> chunk, bounded."""

    def __init__(self, max_points: int = CACHE_POINTS) -> None:
        self.max_points = max_points
        self.runs: dict[str, dict[str, OpenChunk]] = {}
        self.points = 0
        self._lock = threading.Lock()

    def of(self, run_id: str) -> dict[str, OpenChunk]:
        got = self.runs.get(run_id)
        if got is None:
            got = self.runs[run_id] = {}
        return got

    def put(self, run_id: str, items: list[tuple[str, OpenChunk | None]]) -> None:
        """Remember (or, for None, forget) each key's open chunk."""
        with self._lock:
            chunks = self.of(run_id)
            for key, chunk in items:
                old = chunks.pop(key, None)
                if old is not None:
                    self.points -= old.n
                if chunk is not None and self.points + chunk.n <= self.max_points:
                    chunks[key] = chunk
                    self.points += chunk.n

    def forget(self, run_id: str) -> None:
        """Drop a run's chunks (after a failed transaction: memory may be ahead of it)."""
        with self._lock:
            chunks = self.runs.pop(run_id, {})
            self.points -= sum(c.n for c in chunks.values())


def _nulls(a: npt.NDArray[np.float64]) -> list[float | None]:
    """Floats for SQL: NaN -> NULL (SQLite cannot store NaN); ±inf stays."""
    return [None if x != x else x for x in a.tolist()]


def _nans(values: list[float | None]) -> npt.NDArray[np.float64]:
    return np.array([np.nan if x is None else x for x in values], dtype=np.float64)


@cache
def _summaries_stmt(size: int) -> Any:
    """SELECT the summaries of ``size`` keys of a run (one prebuilt statement per size)."""
    ms = metric_summaries.c
    binds: list[Any] = [sa.bindparam(f"k{i}") for i in range(size)]
    return sa.select(*(getattr(ms, c) for c in _SUMMARY_COLUMNS)).where(
        ms.run_id == sa.bindparam("run_id"), ms.key.in_(binds)
    )


_SUMMARY_COLUMNS = (
    "key",
    "last_value",
    "last_step",
    "last_ms",
    "min_value",
    "max_value",
    "count",
    "open_seq",
    "open_n",
)


class _Old(NamedTuple):
    key: str
    last_value: float | None
    last_step: int
    last_ms: int
    min_value: float | None
    max_value: float | None
    total: int  # the ``count`` column
    open_seq: int
    open_n: int


def _summaries(x: q.Executor, run_id: str, keys: list[str]) -> dict[str, _Old]:
    """The stored summaries of ``keys`` (on the DBAPI cursor: 10^4 rows in ~10 ms)."""
    found: dict[str, _Old] = {}
    for i in range(0, len(keys), _IN_CHUNK):
        part = keys[i : i + _IN_CHUNK]
        params = {f"k{j}": k for j, k in enumerate(part)}
        params["run_id"] = run_id
        rows = x.execute(_summaries_stmt(len(part)), params).fetchall()
        found.update({r[0]: _Old(*r) for r in rows})
    return found


def _merge_open(open_n: int, limit: int) -> bool:
    """Whether the new points are written into the open chunk (rewriting it) or start a new
    chunk. Rewriting costs the open chunk's size, so it is done only while the chunk is below
    ``limit`` (which shrinks as a batch carries more keys): a steady trickle writes chunks of
    about ``limit`` points, a burst chunks of its own size (up to ``CHUNK_POINTS``), and no
    point is rewritten more than about ``limit / points per batch`` times.
    """
    return open_n < min(limit, CHUNK_POINTS)


def _seg_reduce(fn: Any, a: npt.NDArray[Any], starts: npt.NDArray[np.int64]) -> Any:
    with np.errstate(invalid="ignore"):
        return fn.reduceat(a, starts)


def _last_top(
    s: npt.NDArray[np.int64], starts: npt.NDArray[np.int64], lens: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """Per segment, the index of the highest step (the latest on ties)."""
    top = np.repeat(np.maximum.reduceat(s, starts), lens)
    idx = np.where(s == top, np.arange(len(s)), -1)
    out: npt.NDArray[np.int64] = np.maximum.reduceat(idx, starts)
    return out


def _sorted_segments(
    s: npt.NDArray[np.int64], starts: npt.NDArray[np.int64]
) -> npt.NDArray[np.bool_]:
    """Per segment, whether its steps never go down."""
    ok = np.ones(len(starts), dtype=bool)
    down = np.flatnonzero(s[1:] < s[:-1]) + 1
    if len(down):
        seg = np.searchsorted(starts, down, side="right") - 1
        ok[seg[down != starts[seg]]] = False
    return ok


def append_metrics(
    x: q.Executor,
    run_id: str,
    metrics: Mapping[str, MetricSeries],
    fresh: bool = False,
    cache: OpenChunks | None = None,
) -> None:
    """Append every key's points of a batch to its chunks and update its summary.

    ``fresh``: the run was created in this transaction, so it has no series yet. ``cache``:
    the store object's open chunks (updated here; forget the run if the transaction fails).
    """
    keys = [k for k, col in metrics.items() if len(col)]
    if not keys:
        return
    limit = max(MIN_REWRITE, min(REWRITE_LIMIT, REWRITE_BUDGET // len(keys)))
    # keys in groups of about GROUP_POINTS points: what a group needs in memory is bounded
    group: list[str] = []
    size = 0
    for key in keys:
        group.append(key)
        size += len(metrics[key])
        if size >= GROUP_POINTS:
            _append_group(x, run_id, group, [metrics[k] for k in group], fresh, cache, limit)
            group, size = [], 0
    if group:
        _append_group(x, run_id, group, [metrics[k] for k in group], fresh, cache, limit)


def _append_group(
    x: q.Executor,
    run_id: str,
    keys: list[str],
    cols: list[MetricSeries],
    fresh: bool,
    cache: OpenChunks | None,
    limit: int,
) -> None:
    olds = {} if fresh else _summaries(x, run_id, keys)
    mem = cache.of(run_id) if cache is not None else {}
    lens = np.fromiter((len(c) for c in cols), np.int64, len(cols))
    starts = np.concatenate(([0], np.cumsum(lens)[:-1])).astype(np.int64)
    summary = _summary_columns(keys, olds, cols, starts, lens)

    # which keys rewrite their open chunk, and with which points in front
    first_seq: list[int] = []
    merged: list[bool] = []
    prefix: dict[int, OpenChunk] = {}
    for i, key in enumerate(keys):
        old = olds.get(key)
        if old is None:
            first_seq.append(0)
            merged.append(False)
            continue
        merge = _merge_open(old.open_n, limit)
        merged.append(merge)
        first_seq.append(old.open_seq if merge else old.open_seq + 1)
        if merge:
            got = mem.get(key)
            if got is None or got.seq != old.open_seq or got.n != old.open_n:
                # not in memory, or another writer appended since: read it
                where = {"run_id": run_id, "key": key, "seq": old.open_seq}
                blob = x.one(q.CHUNK_GET, where)
                got = OpenChunk(old.open_seq, old.open_n, *(bytes(b) for b in blob[:3]))
            prefix[i] = got
    pre = np.fromiter((prefix[i].n if i in prefix else 0 for i in range(len(keys))), np.int64)
    chunks = _chunk_columns(keys, first_seq, cols, prefix, lens + pre)
    last_chunk = _write_chunks(x, run_id, keys, merged, chunks, cache, limit)
    summary["open_seq"], summary["open_n"] = last_chunk
    exists = np.fromiter((k in olds for k in keys), bool, len(keys))
    for stmt, mask in ((q.SUMMARIES_INSERT, ~exists), (q.SUMMARY_UPDATE, exists)):
        idx = np.flatnonzero(mask).tolist()
        if not idx:
            continue
        rows = {name: [col[i] for i in idx] for name, col in summary.items()}
        if stmt is q.SUMMARY_UPDATE:
            rows["b_key"] = rows.pop("key")
            x.columns(stmt, {**rows, "b_run": run_id}, len(idx))
        else:
            x.columns(stmt, {**rows, "run_id": run_id}, len(idx))


def _summary_columns(
    keys: list[str],
    olds: Mapping[str, _Old],
    cols: list[MetricSeries],
    starts: npt.NDArray[np.int64],
    lens: npt.NDArray[np.int64],
) -> dict[str, list[Any]]:
    """Each key's summary: the batch's points merged with the stored summary. Columns of
    the summary table, one entry per key."""
    s = np.concatenate([c.steps for c in cols]).astype(np.int64, copy=False)
    v = np.concatenate([c.values for c in cols]).astype(np.float64, copy=False)
    top = _last_top(s, starts, lens)
    last_step = s[top]
    last_ms = np.array(
        [c.timestamps[i] for c, i in zip(cols, (top - starts).tolist(), strict=True)],
        dtype=np.int64,
    )
    last_v = v[top]
    lo = _seg_reduce(np.fmin, v, starts)
    hi = _seg_reduce(np.fmax, v, starts)
    del s, v
    count = lens.copy()
    if olds:
        have = [i for i, k in enumerate(keys) if k in olds]
        o = [olds[keys[i]] for i in have]
        idx = np.array(have, dtype=np.int64)
        o_step = np.array([r.last_step for r in o], dtype=np.int64)
        keep = o_step > last_step[idx]
        kidx = idx[keep]
        kept = [r for r, k in zip(o, keep.tolist(), strict=True) if k]
        last_step[kidx] = o_step[keep]
        last_ms[kidx] = np.array([r.last_ms for r in kept], dtype=np.int64)
        last_v[kidx] = _nans([r.last_value for r in kept])
        lo[idx] = np.fmin(lo[idx], _nans([r.min_value for r in o]))
        hi[idx] = np.fmax(hi[idx], _nans([r.max_value for r in o]))
        count[idx] += np.array([r.total for r in o], dtype=np.int64)
    return {
        "key": keys,
        "last_value": _nulls(last_v),
        "last_step": last_step.tolist(),
        "last_ms": last_ms.tolist(),
        "min_value": _nulls(lo),
        "max_value": _nulls(hi),
        "count": count.tolist(),
    }


def _chunk_columns(
    keys: list[str],
    first_seq: list[int],
    cols: list[MetricSeries],
    prefix: Mapping[int, OpenChunk],
    seg_lens: npt.NDArray[np.int64],
) -> dict[str, Any]:
    """Each key's points (its open chunk's, if in ``prefix``, then the batch's) cut into
    chunks of at most ``CHUNK_POINTS``: the chunk and sketch columns, one entry per chunk.
    Stats come from all keys' points laid end to end; the packed arrays from each key's own
    (so the whole batch is never held twice)."""
    parts: list[list[Any]] = [[], [], []]
    for i, col in enumerate(cols):
        p = prefix.get(i)
        if p is not None:
            parts[0].append(np.frombuffer(p.steps, "<i8"))
            parts[1].append(np.frombuffer(p.stamps, "<i8"))
            parts[2].append(np.frombuffer(p.vals, "<f8"))
        parts[0].append(col.steps)
        parts[1].append(col.timestamps)
        parts[2].append(col.values)
    s = np.concatenate(parts[0]).astype("<i8", copy=False)
    t = np.concatenate(parts[1]).astype("<i8", copy=False)
    v = np.concatenate(parts[2]).astype("<f8", copy=False)
    del parts
    seg_start = np.concatenate(([0], np.cumsum(seg_lens)[:-1])).astype(np.int64)
    per_key = (seg_lens + CHUNK_POINTS - 1) // CHUNK_POINTS
    key_of = np.repeat(np.arange(len(keys)), per_key)
    first_chunk = np.concatenate(([0], np.cumsum(per_key)[:-1])).astype(np.int64)
    within = np.arange(len(key_of)) - first_chunk[key_of]
    c_start = seg_start[key_of] + within * CHUNK_POINTS
    c_len = np.minimum(CHUNK_POINTS, seg_lens[key_of] - within * CHUNK_POINTS)
    c_end = c_start + c_len
    c_last = c_end - 1
    seq = (np.array(first_seq, dtype=np.int64)[key_of] + within).tolist()
    n = c_len.tolist()
    ordered = _sorted_segments(s, c_start).tolist()
    step_min = _seg_reduce(np.minimum, s, c_start).tolist()
    step_max = _seg_reduce(np.maximum, s, c_start).tolist()
    # sketch blocks: every SKETCH_BLOCK points of a chunk, the last one possibly shorter
    nblk = (c_len + SKETCH_BLOCK - 1) // SKETCH_BLOCK
    chunk_of = np.repeat(np.arange(len(c_start)), nblk)
    first_blk = np.concatenate(([0], np.cumsum(nblk)[:-1])).astype(np.int64)
    b_start = c_start[chunk_of] + (np.arange(len(chunk_of)) - first_blk[chunk_of]) * SKETCH_BLOCK
    b_last = np.minimum(b_start + SKETCH_BLOCK, c_end[chunk_of]) - 1
    blk = np.empty(len(b_start), SKETCH_DTYPE)
    blk["step"], blk["ms"], blk["val"] = s[b_last], t[b_last], v[b_last]
    blk["min"] = _seg_reduce(np.fmin, v, b_start)
    blk["max"] = _seg_reduce(np.fmax, v, b_start)
    bb = blk.tobytes()
    del blk
    size = SKETCH_DTYPE.itemsize
    blocks = [
        bb[a * size : b * size]
        for a, b in zip(first_blk.tolist(), (first_blk + nblk).tolist(), strict=True)
    ]
    del bb
    sketch = {
        "n": n,
        "step_min": step_min,
        "step_max": step_max,
        "is_sorted": ordered,
        "last_step": s[c_last].tolist(),
        "last_ms": t[c_last].tolist(),
        "last_value": _nulls(v[c_last]),
        "v_min": _nulls(_seg_reduce(np.fmin, v, c_start)),
        "v_max": _nulls(_seg_reduce(np.fmax, v, c_start)),
        "blocks": blocks,
    }
    ms_min = _seg_reduce(np.minimum, t, c_start).tolist()
    ms_max = _seg_reduce(np.maximum, t, c_start).tolist()
    del s, t, v
    steps, stamps, vals = _packed(cols, prefix, key_of.tolist(), within.tolist(), n)
    return {
        "key_of": key_of,
        "within": within,
        "last": (first_chunk + per_key - 1).tolist(),
        "key": [keys[i] for i in key_of.tolist()],
        "seq": seq,
        "chunk": {
            "n": n,
            "step_min": step_min,
            "step_max": step_max,
            "ms_min": ms_min,
            "ms_max": ms_max,
            "is_sorted": ordered,
            "steps": steps,
            "timestamps": stamps,
            "vals": vals,
        },
        "sketch": sketch,
    }


def _packed(
    cols: list[MetricSeries],
    prefix: Mapping[int, OpenChunk],
    key_of: list[int],
    within: list[int],
    n: list[int],
) -> tuple[list[bytes], list[bytes], list[bytes]]:
    """Each chunk's packed steps, timestamps and values: a key's open chunk (if rewritten)
    followed by its new points, cut at ``CHUNK_POINTS``."""
    out: tuple[list[bytes], list[bytes], list[bytes]] = ([], [], [])
    whole: list[bytes] = []
    for c, i in enumerate(key_of):
        if not within[c]:  # a key's first chunk: pack the key's points once
            col, p = cols[i], prefix.get(i)
            whole = [
                np.ascontiguousarray(a, dtype).tobytes()
                for a, dtype in ((col.steps, "<i8"), (col.timestamps, "<i8"), (col.values, "<f8"))
            ]
            if p is not None:
                whole = [p.steps + whole[0], p.stamps + whole[1], p.vals + whole[2]]
        for packed, dest in zip(whole, out, strict=True):
            if within[c] or n[c] * 8 != len(packed):
                lo = within[c] * CHUNK_POINTS * 8
                packed = packed[lo : lo + n[c] * 8]
            dest.append(packed)
    return out


def _write_chunks(
    x: q.Executor,
    run_id: str,
    keys: list[str],
    merged: list[bool],
    chunks: dict[str, Any],
    cache: OpenChunks | None,
    limit: int,
) -> tuple[list[int], list[int]]:
    """Write the chunks and their sketches; returns each key's last chunk (seq, n)."""
    key_col, seq, cols = chunks["key"], chunks["seq"], chunks["chunk"]
    rewrite = (np.array(merged, dtype=bool)[chunks["key_of"]] & (chunks["within"] == 0)).tolist()
    if any(rewrite):
        for stmt, pick in ((q.CHUNK_UPDATE, True), (q.CHUNKS_INSERT, False)):
            sel = [c for c, r in enumerate(rewrite) if r is pick]
            part: dict[str, Any] = {name: [col[c] for c in sel] for name, col in cols.items()}
            names = ("b_run", "b_key", "b_seq") if pick else ("run_id", "key", "seq")
            part[names[0]] = run_id
            part[names[1]] = [key_col[c] for c in sel]
            part[names[2]] = [seq[c] for c in sel]
            x.columns(stmt, part, len(sel))
    else:
        x.columns(q.CHUNKS_INSERT, {**cols, "run_id": run_id, "key": key_col, "seq": seq}, len(seq))
    sketch = {**chunks["sketch"], "run_id": run_id, "key": key_col, "seq": seq}
    x.columns(q.sketch_upsert(x.dialect.name), sketch, len(seq))
    last, n = chunks["last"], cols["n"]
    steps, stamps, vals = cols["steps"], cols["timestamps"], cols["vals"]
    if cache is not None:
        cache.put(
            run_id,
            [
                (
                    keys[i],
                    OpenChunk(seq[c], n[c], steps[c], stamps[c], vals[c]) if n[c] < limit else None,
                )
                for i, c in enumerate(last)
            ],
        )
    return [seq[c] for c in last], [n[c] for c in last]
