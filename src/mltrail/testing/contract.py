"""The TrackingStore contract as a pytest suite (see :mod:`mltrail.store.base`)."""

from __future__ import annotations

import math
import struct
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from mltrail.entities import RunStatus
from mltrail.errors import AmbiguousIdError, IntegrityError, NotFoundError
from mltrail.store.batch import Batch, MetricSeries, RunCreate, StatusChange

if TYPE_CHECKING:
    from mltrail.store.base import TrackingStore

__all__ = ["TrackingStoreContract", "make_batch"]


def _now() -> int:
    return time.time_ns() // 1_000_000


def make_batch(
    run_id: str,
    *,
    project: str | None = "proj",
    source: str | None = None,
    start: int = 0,
    end: int = 0,
    metrics: dict[str, list[tuple[int, float]]] | None = None,
    ts: int | None = None,
    heartbeat_s: float = 5.0,
    created_ms: int | None = None,
    **fields: Any,
) -> Batch:
    """A batch for tests: ``metrics`` maps key → ``[(step, value), ...]``."""
    stamp = _now() if ts is None else ts
    create = None
    if project is not None:
        create = RunCreate(
            project=project,
            name=f"name-{run_id}",
            created_ms=stamp if created_ms is None else created_ms,
            heartbeat_s=heartbeat_s,
            user="tester",
            host="host1",
            command="python train.py",
            config=fields.pop("config", {}),
        )
    cols = {
        key: MetricSeries(
            np.array([s for s, _ in pts], dtype=np.int64),
            np.full(len(pts), stamp, dtype=np.int64),
            np.array([x for _, x in pts], dtype=np.float64),
        )
        for key, pts in (metrics or {}).items()
    }
    return Batch(run_id, source=source, start=start, end=end, create=create, metrics=cols, **fields)


def _bits(values: Any) -> list[bytes]:
    return [struct.pack("<d", float(x)) for x in values]


class TrackingStoreContract:
    """Every TrackingStore backend must pass these tests."""

    # -- runs -------------------------------------------------------------------------

    def test_create_and_get_run(self, store: TrackingStore) -> None:
        """A created run reads back with its fields, params, tags and nested config."""
        store.apply_batch(
            make_batch(
                "r1",
                params={"lr": 0.01, "opt": "adam", "n": 3, "flag": True, "none": None},
                tags={"goal": "recall"},
                config={"model": {"depth": 4}, "lr": 0.01},
            )
        )
        rec = store.get_run("r1")
        assert (rec.run_id, rec.project, rec.name, rec.status) == (
            "r1",
            "proj",
            "name-r1",
            RunStatus.RUNNING,
        )
        assert rec.params == {"lr": 0.01, "opt": "adam", "n": 3, "flag": True, "none": None}
        assert rec.tags == {"goal": "recall"}
        assert rec.config == {"model": {"depth": 4}, "lr": 0.01}
        assert (rec.user, rec.host, rec.command) == ("tester", "host1", "python train.py")
        assert rec.end_ms is None

    def test_missing_run_raises_not_found(self, store: TrackingStore) -> None:
        """Reading or writing an unknown run raises NotFoundError."""
        with pytest.raises(NotFoundError):
            store.get_run("nope")
        with pytest.raises(NotFoundError):
            store.apply_batch(make_batch("nope", project=None, tags={"a": "b"}))
        with pytest.raises(NotFoundError):
            store.metric_history("nope", "loss")

    def test_resolve_run_id_prefix(self, store: TrackingStore) -> None:
        """Unique prefixes resolve; ambiguous ones and unknown ones raise."""
        for rid in ("abc111", "abc222", "xyz999"):
            store.apply_batch(make_batch(rid))
        assert store.resolve_run_id("x") == "xyz999"
        assert store.resolve_run_id("abc1") == "abc111"
        assert store.resolve_run_id("abc111") == "abc111"
        with pytest.raises(AmbiguousIdError):
            store.resolve_run_id("abc")
        with pytest.raises(NotFoundError):
            store.resolve_run_id("q")
        with pytest.raises(NotFoundError):
            store.resolve_run_id("a%")

    def test_list_projects_counts_runs(self, store: TrackingStore) -> None:
        """Projects are listed by name with their run counts."""
        store.apply_batch(make_batch("a1", project="beta"))
        store.apply_batch(make_batch("a2", project="alpha"))
        store.apply_batch(make_batch("a3", project="beta"))
        assert [(p.name, p.run_count) for p in store.list_projects()] == [("alpha", 1), ("beta", 2)]

    # -- batches: atomic and idempotent -----------------------------------------------

    def test_batch_applied_once(self, store: TrackingStore) -> None:
        """Re-applying a batch of a source is a no-op; nothing is duplicated."""
        b = make_batch(
            "r1", source="r1.s", start=0, end=100, metrics={"loss": [(0, 1.0), (1, 0.5)]}
        )
        assert store.apply_batch(b).applied
        assert not store.apply_batch(b).applied
        assert store.ingest_position("r1.s") == 100
        nxt = make_batch(
            "r1", project=None, source="r1.s", start=100, end=150, metrics={"loss": [(2, 0.25)]}
        )
        assert store.apply_batch(nxt).applied
        assert not store.apply_batch(b).applied
        assert list(store.metric_history("r1", "loss").values) == [1.0, 0.5, 0.25]
        assert store.get_run("r1").metrics["loss"].count == 3

    def test_batch_gap_is_integrity_error(self, store: TrackingStore) -> None:
        """A batch starting past the applied position raises and applies nothing."""
        store.apply_batch(make_batch("r1", source="s", start=0, end=10))
        with pytest.raises(IntegrityError):
            store.apply_batch(
                make_batch("r1", project=None, source="s", start=20, end=30, tags={"x": "y"})
            )
        assert store.get_run("r1").tags == {}
        assert store.ingest_position("s") == 10

    def test_unknown_source_position_is_zero(self, store: TrackingStore) -> None:
        """A source never seen has position 0."""
        assert store.ingest_position("never") == 0

    # -- params and tags --------------------------------------------------------------

    def test_params_are_immutable(self, store: TrackingStore) -> None:
        """Same value again is a no-op; a different value is reported and not applied."""
        store.apply_batch(make_batch("r1", params={"lr": 0.01, "opt": "adam"}))
        same = store.apply_batch(make_batch("r1", project=None, params={"lr": 0.01}))
        assert same.param_conflicts == {}
        diff = store.apply_batch(
            make_batch("r1", project=None, params={"lr": 0.1, "new": 1}, tags={"t": "v"})
        )
        assert diff.param_conflicts == {"lr": (0.01, 0.1)}
        rec = store.get_run("r1")
        assert rec.params == {"lr": 0.01, "opt": "adam", "new": 1}
        assert rec.tags == {"t": "v"}

    def test_param_keys_are_case_sensitive(self, store: TrackingStore) -> None:
        """``lr`` and ``LR`` are two keys."""
        store.apply_batch(make_batch("r1", params={"lr": 1, "LR": 2}))
        assert store.get_run("r1").params == {"lr": 1, "LR": 2}

    def test_tags_are_mutable(self, store: TrackingStore) -> None:
        """A tag set again takes the new value."""
        store.apply_batch(make_batch("r1", tags={"stage": "a", "keep": "k"}))
        store.apply_batch(make_batch("r1", project=None, tags={"stage": "b"}))
        assert store.get_run("r1").tags == {"stage": "b", "keep": "k"}

    def test_unicode_round_trip(self, store: TrackingStore) -> None:
        """Emoji, astral chars, RTL override and ZWJ survive in keys and values."""
        odd = "x\u202eevil\u200d👩‍🔬𝔘"
        store.apply_batch(
            make_batch("r1", params={odd: odd}, tags={odd: odd}, metrics={odd: [(0, 1.0)]})
        )
        rec = store.get_run("r1")
        assert rec.params[odd] == odd and rec.tags[odd] == odd
        assert list(store.metric_history("r1", odd).values) == [1.0]

    def test_large_param_value(self, store: TrackingStore) -> None:
        """A 64 KB param value is stored whole."""
        big = "v" * 65536
        store.apply_batch(make_batch("r1", params={"big": big}))
        assert store.get_run("r1").params["big"] == big

    # -- metrics ----------------------------------------------------------------------

    def test_special_floats_round_trip_bit_exact(self, store: TrackingStore) -> None:
        """NaN, ±inf, -0.0 and extreme magnitudes come back bit for bit."""
        vals = [math.nan, math.inf, -math.inf, -0.0, 1e308, 5e-324, 1.7976931348623157e308, 0.1]
        store.apply_batch(make_batch("r1", metrics={"m": list(enumerate(vals))}))
        got = store.metric_history("r1", "m")
        assert _bits(got.values) == _bits(vals)
        assert got.values.dtype == np.float64 and got.steps.dtype == np.int64

    def test_extreme_steps(self, store: TrackingStore) -> None:
        """Step 0 and 2**63-1 are stored."""
        store.apply_batch(make_batch("r1", metrics={"m": [(0, 1.0), (2**63 - 1, 2.0)]}))
        assert list(store.metric_history("r1", "m").steps) == [0, 2**63 - 1]

    def test_out_of_order_and_repeated_steps_are_kept(self, store: TrackingStore) -> None:
        """Steps 5,3,4,4 all stay; reads order by step, ties in logging order."""
        store.apply_batch(make_batch("r1", metrics={"m": [(5, 1.0), (3, 2.0), (4, 3.0)]}))
        store.apply_batch(make_batch("r1", project=None, metrics={"m": [(4, 4.0), (1, 5.0)]}))
        got = store.metric_history("r1", "m")
        assert list(got.steps) == [1, 3, 4, 4, 5]
        assert list(got.values) == [5.0, 2.0, 3.0, 4.0, 1.0]

    def test_summary_last_min_max_count(self, store: TrackingStore) -> None:
        """last is the value at the highest step; min/max skip NaN; count counts all."""
        store.apply_batch(make_batch("r1", metrics={"m": [(0, 3.0), (10, 1.0), (5, math.nan)]}))
        store.apply_batch(make_batch("r1", project=None, metrics={"m": [(7, -2.0)]}))
        s = store.get_run("r1").metrics["m"]
        assert (s.last, s.last_step, s.min, s.max, s.count) == (1.0, 10, -2.0, 3.0, 4)
        store.apply_batch(make_batch("r1", project=None, metrics={"m": [(10, math.nan)]}))
        s = store.get_run("r1").metrics["m"]
        assert math.isnan(s.last) and s.last_step == 10 and s.count == 5

    def test_all_nan_summary(self, store: TrackingStore) -> None:
        """A series of NaN only has NaN last/min/max."""
        store.apply_batch(make_batch("r1", metrics={"m": [(0, math.nan)]}))
        s = store.get_run("r1").metrics["m"]
        assert math.isnan(s.last) and math.isnan(s.min) and math.isnan(s.max)

    def test_long_series_spans_chunks(self, store: TrackingStore) -> None:
        """A series longer than a chunk, in uneven batches, reads back whole and ordered."""
        rng = np.random.default_rng(0)
        values = rng.standard_normal(40_000)
        cuts = [0, 1, 17, 16_000, 16_385, 33_000, 40_000]
        for i, (a, b) in enumerate(zip(cuts, cuts[1:], strict=False)):
            store.apply_batch(
                make_batch(
                    "r1",
                    project="p" if i == 0 else None,
                    metrics={"m": [(s, float(values[s])) for s in range(a, b)]},
                )
            )
        got = store.metric_history("r1", "m")
        assert len(got) == 40_000
        assert np.array_equal(got.steps, np.arange(40_000))
        assert np.array_equal(got.values, values)
        assert store.get_run("r1").metrics["m"].count == 40_000

    def test_trickle_of_small_batches_reads_back_whole(self, store: TrackingStore) -> None:
        """Thousands of points arriving a few per batch read back complete and in order."""
        store.apply_batch(make_batch("r1"))
        for start in range(0, 3000, 7):
            pts = [(s, float(s)) for s in range(start, min(start + 7, 3000))]
            store.apply_batch(make_batch("r1", project=None, metrics={"m": pts}))
        got = store.metric_history("r1", "m")
        assert np.array_equal(got.steps, np.arange(3000))
        assert np.array_equal(got.values, np.arange(3000, dtype=np.float64))
        summary = store.get_run("r1").metrics["m"]
        assert (summary.count, summary.last, summary.max) == (3000, 2999.0, 2999.0)

    def test_unknown_metric_key_not_found(self, store: TrackingStore) -> None:
        """A run without the key raises NotFoundError naming the key."""
        store.apply_batch(make_batch("r1"))
        with pytest.raises(NotFoundError, match="loss"):
            store.metric_history("r1", "loss")

    # -- status -----------------------------------------------------------------------

    def test_status_transitions(self, store: TrackingStore) -> None:
        """A status change sets status and end time; a conditional crash never overrides it."""
        store.apply_batch(make_batch("r1"))
        end = _now()
        store.apply_batch(
            make_batch("r1", project=None, status=StatusChange(RunStatus.FINISHED, end))
        )
        store.apply_batch(
            make_batch(
                "r1",
                project=None,
                status=StatusChange(RunStatus.CRASHED, None, only_if_running=True),
            )
        )
        rec = store.get_run("r1")
        assert rec.status is RunStatus.FINISHED and rec.end_ms == end

    def test_crash_ends_at_last_heartbeat(self, store: TrackingStore) -> None:
        """A crash with no end time ends the run at its last heartbeat."""
        store.apply_batch(make_batch("r1", created_ms=1000))
        store.apply_batch(make_batch("r1", project=None, heartbeat_ms=5000))
        store.apply_batch(make_batch("r1", project=None, heartbeat_ms=4000))  # late, older
        store.apply_batch(
            make_batch(
                "r1",
                project=None,
                status=StatusChange(RunStatus.CRASHED, None, only_if_running=True),
            )
        )
        rec = store.get_run("r1")
        assert rec.status is RunStatus.CRASHED and rec.end_ms == 5000 == rec.heartbeat_ms

    def test_stale_heartbeat_reads_as_crashed(self, store: TrackingStore) -> None:
        """A running run whose heartbeat is older than 3 intervals is reported crashed."""
        old = _now() - 60_000
        store.apply_batch(make_batch("stale", created_ms=old, heartbeat_s=1.0))
        store.apply_batch(make_batch("fresh", heartbeat_s=1.0))
        stale = store.get_run("stale")
        assert stale.status is RunStatus.CRASHED and stale.end_ms == old
        assert store.get_run("fresh").status is RunStatus.RUNNING

    def test_resume_sets_running(self, store: TrackingStore) -> None:
        """A resume reopens a finished run."""
        store.apply_batch(make_batch("r1", status=StatusChange(RunStatus.FINISHED, _now())))
        store.apply_batch(make_batch("r1", project=None, resume_ms=_now()))
        rec = store.get_run("r1")
        assert rec.status is RunStatus.RUNNING and rec.end_ms is None

    # -- search -----------------------------------------------------------------------

    def test_search_filters_orders_and_pages(self, store: TrackingStore) -> None:
        """Search applies project, filter and order, and pages through every match once."""
        for i in range(12):
            store.apply_batch(
                make_batch(
                    f"run{i:02d}",
                    project="p" if i < 10 else "q",
                    params={"lr": 0.01 if i % 2 else 0.1},
                    metrics={"acc": [(0, i / 10)]},
                    created_ms=1000 + i,
                )
            )
        page = store.search_runs(
            project="p",
            filter="params.lr = 0.01 and metrics.acc > 0.2",
            order_by="metrics.acc desc",
            limit=100,
        )
        assert [r.run_id for r in page.runs] == ["run09", "run07", "run05", "run03"]
        seen, token = [], None
        while True:
            page = store.search_runs(project="p", limit=3, page_token=token)
            seen += [r.run_id for r in page.runs]
            token = page.next_token
            if token is None:
                break
        assert seen == [f"run{i:02d}" for i in range(9, -1, -1)]
        assert store.search_runs(project="missing").runs == []

    # -- captured state, blobs, console -----------------------------------------------

    def test_state_documents_by_kind(self, store: TrackingStore) -> None:
        """State documents are kept per kind; a later document of a kind replaces it."""
        code = {"repos": [{"sha": "abc", "dirty": True, "diff": "sha256:00"}]}
        store.apply_batch(make_batch("r1", state={"code": code, "seeds": {"seed": 1}}))
        store.apply_batch(make_batch("r1", project=None, state={"seeds": {"seed": 2}}))
        assert store.get_state("r1") == {"code": code, "seeds": {"seed": 2}}
        with pytest.raises(NotFoundError):
            store.get_state("nope")

    def test_blobs_are_content_addressed(self, store: TrackingStore) -> None:
        """A blob reads back by digest; storing it twice is harmless; unknown digests raise."""
        import hashlib

        content = bytes(range(256)) * 100
        digest = "sha256:" + hashlib.sha256(content).hexdigest()
        store.apply_batch(make_batch("r1", blobs={digest: content}))
        store.apply_batch(make_batch("r2", blobs={digest: content}))
        assert store.get_blob(digest) == content
        with pytest.raises(NotFoundError):
            store.get_blob("sha256:" + "0" * 64)

    def test_console_lines_in_order_and_tail(self, store: TrackingStore) -> None:
        """Console lines read back in order, and tail returns the last N."""
        lines = [(1000 + i, "stdout" if i % 3 else "stderr", f"line {i} ü\\t") for i in range(50)]
        store.apply_batch(make_batch("r1", console=lines[:20]))
        store.apply_batch(make_batch("r1", project=None, console=lines[20:]))
        got = store.read_console("r1")
        assert [(c.timestamp_ms, c.stream, c.text) for c in got] == lines
        assert [c.text for c in store.read_console("r1", tail=3)] == [x[2] for x in lines[-3:]]
        assert store.read_console("r1", tail=0) == []
        with pytest.raises(NotFoundError):
            store.read_console("nope")
