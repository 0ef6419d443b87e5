"""Chunked series at scale: many keys across batches, a second writer, chart sketches.

Every check compares with a brute force over the points themselves, on every backend.
"""

from __future__ import annotations

import numpy as np
import pytest

from mltrail.store import buckets
from mltrail.store.batch import Batch, MetricSeries
from mltrail.store.registry import open_store
from mltrail.store.sql import append, sketch
from mltrail.store.sql.schema import SKETCH_BLOCK
from mltrail.testing import make_batch


def _random_series(rng, n, kind):
    if kind == "forward":
        s = np.cumsum(rng.integers(1, 4, n)).astype(np.int64)
    elif kind == "repeats":
        s = np.sort(rng.integers(0, n // 3 + 1, n)).astype(np.int64)
    else:  # out of order
        s = rng.integers(0, n, n).astype(np.int64)
    t = (1_700_000_000_000 + rng.integers(0, 10, n)).astype(np.int64)
    v = rng.standard_normal(n)
    v[rng.random(n) < 0.05] = np.nan
    if n > 3 and kind == "forward":
        v[1:3] = np.inf, -np.inf
    return s, t, v


def _brute(s, t, v):
    """Sorted by (step, timestamp), ties in logging order; a series logged in step order is
    read back as logged (the store does not sort it)."""
    if np.all(s[1:] >= s[:-1]):
        return s, t, v
    order = np.lexsort((t, s))
    return s[order], t[order], v[order]


def _split(rng, n, parts):
    cuts = np.sort(rng.choice(np.arange(1, n), size=min(parts - 1, n - 1), replace=False))
    return np.split(np.arange(n), cuts)


def _same(a, b):
    return np.array_equal(a, b) or (
        a.dtype.kind == "f" and np.array_equal(a.view(np.int64), b.view(np.int64))
    )


@pytest.mark.parametrize(("chunk_points", "group_points"), [(16384, 1 << 19), (37, 500)])
def test_many_keys_in_several_batches_equal_one_batch(
    store, monkeypatch, chunk_points, group_points
):
    """300 keys (forward, repeated and out-of-order steps, NaN, inf) applied in one batch and
    in many batches of random sizes (merging into open chunks, starting new ones, splitting
    full ones) give the same series and summaries, equal to the points sorted by brute force.
    """
    monkeypatch.setattr(append, "CHUNK_POINTS", chunk_points)
    monkeypatch.setattr(append, "GROUP_POINTS", group_points)  # keys applied in groups
    monkeypatch.setattr(append, "REWRITE_BUDGET", 3000)  # the per-key limit drops to ~64
    rng = np.random.default_rng(7)
    kinds = ("forward", "repeats", "shuffled")
    data = {
        f"k{i:03d}/x": _random_series(rng, int(rng.integers(1, 400)), kinds[i % 3])
        for i in range(300)
    }
    one = make_batch("one")
    one.metrics = {k: MetricSeries(*cols) for k, cols in data.items()}
    store.apply_batch(one)
    store.apply_batch(make_batch("many"))
    pieces = {
        k: _split(rng, len(cols[0]), 12) if len(cols[0]) > 1 else [np.arange(1)]
        for k, cols in data.items()
    }
    for b in range(12):
        batch = Batch("many")
        for k, cols in data.items():
            if b < len(pieces[k]):
                idx = pieces[k][b]
                batch.metrics[k] = MetricSeries(*(c[idx] for c in cols))
        store.apply_batch(batch)
    rec_one, rec_many = store.get_run("one"), store.get_run("many")
    for k, cols in data.items():
        want = _brute(*cols)
        for run in ("one", "many"):
            got = store.metric_history(run, k)
            assert _same(got.steps, want[0]) and _same(got.timestamps, want[1]), (run, k)
            assert _same(got.values, want[2]), (run, k)
        a, b = rec_one.metrics[k], rec_many.metrics[k]
        assert a.count == b.count == len(cols[0])
        assert (a.last_step, a.last_timestamp_ms) == (b.last_step, b.last_timestamp_ms)
        assert _same(np.array([a.last, a.min, a.max]), np.array([b.last, b.min, b.max]))
        finite = cols[2][~np.isnan(cols[2])]
        if len(finite):
            assert a.min == finite.min() and a.max == finite.max()


def test_a_second_store_appending_to_the_run_is_not_lost(store_uri):
    """Two store objects (two writers) append to the same keys in turn: each sees that the
    open chunk it remembers is stale and reads it, so no point is lost or duplicated."""
    first = open_store(store_uri, shared=False)
    second = open_store(store_uri, shared=False)
    try:
        first.apply_batch(make_batch("r"))
        rng = np.random.default_rng(3)
        keys = [f"m{i}" for i in range(20)]
        want = {k: [] for k in keys}
        step = 0
        for turn in range(10):
            writer = (first, second, first, first, second)[turn % 5]
            batch = Batch("r")
            for k in keys:
                n = int(rng.integers(1, 30))
                s = np.arange(step, step + n, dtype=np.int64)
                v = rng.standard_normal(n)
                batch.metrics[k] = MetricSeries(s, s + 1000, v)
                want[k].append((s, v))
            step += 40
            writer.apply_batch(batch)
        for reader in (first, second):
            for k in keys:
                got = reader.metric_history("r", k)
                assert np.array_equal(got.steps, np.concatenate([s for s, _ in want[k]]))
                assert np.array_equal(got.values, np.concatenate([v for _, v in want[k]]))
            assert reader.get_run("r").metrics["m0"].count == sum(len(s) for s, _ in want["m0"])
    finally:
        first.close()
        second.close()


def test_a_failed_batch_leaves_no_stale_open_chunk(tmp_path):
    """A batch that fails after its chunks were written (rolled back) must not leave the
    store object remembering chunks the database does not hold."""
    store = open_store(str(tmp_path), shared=False)
    s = np.arange(10, dtype=np.int64)
    store.apply_batch(make_batch("r", source="src", start=0, end=10))
    store.apply_batch(Batch("r", metrics={"m": MetricSeries(s, s, s * 1.0)}))
    bad = Batch("r", source="src", start=999, end=1000)  # does not continue the source
    bad.metrics = {"m": MetricSeries(s + 10, s, s * 2.0)}
    with pytest.raises(Exception, match="continue"):
        store.apply_batch(bad)
    store.apply_batch(Batch("r", metrics={"m": MetricSeries(s + 20, s, s * 3.0)}))
    got = store.metric_history("r", "m")
    assert got.steps.tolist() == list(range(10)) + list(range(20, 30))
    store.close()


def _check_chart(body, s, t, v, points, lo, hi):
    """Buckets of the sketch path against the points: contiguous, min/max exact for the
    points each covers, representative exact, edges off by less than one block."""
    window = (s >= lo) & (s <= hi)
    ws, wt, wv = s[window], t[window], v[window]
    got = np.array(body["steps"], dtype=np.int64)
    assert body["downsampled"] and 0 < len(got) <= points
    assert got[-1] == ws[-1]
    exact = buckets._bucket_of(got, lo, hi, points)
    assert np.all(np.diff(exact) > 0)
    ends = np.searchsorted(ws, got, side="right")
    begins = np.concatenate(([0], ends[:-1]))
    for i, (a, b) in enumerate(zip(begins.tolist(), ends.tolist(), strict=True)):
        part = wv[a:b]
        with np.errstate(invalid="ignore"):
            lo_v, hi_v = np.fmin.reduce(part), np.fmax.reduce(part)
        assert _same(np.float64(_num(body["min"][i])), lo_v), i
        assert _same(np.float64(_num(body["max"][i])), hi_v), i
        assert _same(np.float64(_num(body["values"][i])), wv[b - 1]), i
        assert body["timestamps"][i] == wt[b - 1]
        off = buckets._bucket_of(ws[a:b], lo, hi, points) != exact[i]
        assert int(off.sum()) < SKETCH_BLOCK, i


def _num(x):
    return float(x) if not isinstance(x, str) else float(x.replace("Infinity", "inf"))


@pytest.mark.parametrize("seed", [1, 2])
def test_chart_min_max_equal_brute_force_at_random_zooms(store, monkeypatch, seed):
    """A forward series in chunks of random sizes, charted at random zooms through the
    sketches (the exact-points threshold lowered so small data takes the sketch path): every
    bucket's min/max/last equal the points'; small ranges equal the exact downsample."""
    monkeypatch.setattr(sketch, "RAW_POINTS", 600)
    monkeypatch.setattr(append, "CHUNK_POINTS", 700)
    rng = np.random.default_rng(seed)
    n = 20_000
    s = np.cumsum(rng.integers(1, 5, n)).astype(np.int64)
    t = np.arange(n, dtype=np.int64) + 10**12
    v = np.cumsum(rng.standard_normal(n))
    v[rng.random(n) < 0.02] = np.nan
    v[100:300] = np.nan  # a block all NaN
    store.apply_batch(make_batch("r"))
    for idx in _split(rng, n, 25):
        store.apply_batch(Batch("r", metrics={"m": MetricSeries(s[idx], t[idx], v[idx])}))
    full = store.metric_history("r", "m")
    assert np.array_equal(full.steps, s)
    sketched = 0
    for _ in range(25):
        points = int(rng.choice([1, 7, 100, 1000]))
        if rng.random() < 0.3:
            lo, hi = None, None
        else:
            a, b = np.sort(rng.integers(int(s[0]) - 5, int(s[-1]) + 5, 2))
            lo, hi = int(a), int(b)
        body = store.metric_buckets("r", "m", points, lo, hi)
        in_range = int(
            (
                (s >= (lo if lo is not None else s[0])) & (s <= (hi if hi is not None else s[-1]))
            ).sum()
        )
        if in_range <= max(600, points) + 2 * 700:
            want = buckets.downsample("m", s, t, v, points, lo, hi)
            if body == want:
                continue
        sketched += 1
        _check_chart(body, s, t, v, points, s[0] if lo is None else lo, s[-1] if hi is None else hi)
    assert sketched > 5


def test_chart_falls_back_without_sketches_and_out_of_order(store):
    """Chunks without sketch rows (a store written before them) and out-of-order series
    chart exactly like the whole series bucketed."""
    rng = np.random.default_rng(5)
    store.apply_batch(make_batch("r"))
    s = rng.integers(0, 5000, 3000).astype(np.int64)
    v = rng.standard_normal(3000)
    store.apply_batch(
        Batch("r", metrics={"m": MetricSeries(s, s, v), "f": MetricSeries(np.sort(s), s, v)})
    )
    store.apply_batch(
        Batch(
            "r",
            metrics={
                "f": MetricSeries(np.arange(5000, 9000), np.arange(4000), rng.standard_normal(4000))
            },
        )
    )
    for key in ("m", "f"):
        full = store.metric_history("r", key)
        for points, lo, hi in ((50, None, None), (10, 100, 2000), (5000, None, None)):
            want = buckets.downsample(key, full.steps, full.timestamps, full.values, points, lo, hi)
            assert store.metric_buckets("r", key, points, lo, hi) == want
    with store._engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM metric_sketches")
    full = store.metric_history("r", "f")
    want = buckets.downsample("f", full.steps, full.timestamps, full.values, 30, None, None)
    assert store.metric_buckets("r", "f", 30) == want


def test_chart_of_a_missing_key_or_run_is_not_found(store):
    from mltrail.errors import InvalidArgumentError, NotFoundError

    store.apply_batch(make_batch("r", metrics={"m": [(1, 1.0)]}))
    with pytest.raises(NotFoundError):
        store.metric_buckets("r", "nope", 10)
    with pytest.raises(NotFoundError):
        store.metric_buckets("nope", "m", 10)
    with pytest.raises(InvalidArgumentError):
        store.metric_buckets("r", "m", 0)


def test_server_chart_uses_the_store_sketches_or_the_whole_series(store):
    """``server.series.chart`` asks a store with chart summaries and buckets the whole series
    of any other store; both give the same body for a short series."""
    from mltrail.server.series import chart, downsample

    class Plain:  # a store without HasMetricBuckets
        def metric_history(self, run_id, key):
            return store.metric_history(run_id, key)

    s = np.arange(5000, dtype=np.int64)
    store.apply_batch(make_batch("r"))
    store.apply_batch(Batch("r", metrics={"m": MetricSeries(s, s, np.sin(s * 0.01))}))
    want = downsample(store.metric_history("r", "m"), 100, 10, 4000)
    assert chart(store, "r", "m", 100, 10, 4000) == want
    assert chart(Plain(), "r", "m", 100, 10, 4000) == want
