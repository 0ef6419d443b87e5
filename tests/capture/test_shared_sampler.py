"""One sampling thread per process: runs subscribe and unsubscribe without waiting."""

from __future__ import annotations

import threading
import time

import pytest
from test_system import no_gpu  # noqa: F401

from mltrail.capture.system import SharedSampler, SystemSampler, shared_sampler


class Sink:
    def __init__(self) -> None:
        self.samples: list[tuple[float, dict[str, float]]] = []
        self.event = threading.Event()

    def __call__(self, values: dict[str, float]) -> None:
        self.samples.append((time.monotonic(), values))
        self.event.set()

    def wait_for(self, n: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.samples) < n:
            assert time.monotonic() < deadline, f"{len(self.samples)} of {n} samples"
            time.sleep(0.01)


def _threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name == "mltrail-system-shared")


def test_first_sample_at_once_then_on_the_interval(no_gpu: None) -> None:  # noqa: F811
    hub = SharedSampler(0.2)
    sink = Sink()
    t0 = time.monotonic()
    sub = hub.subscribe(sink)
    sink.wait_for(3)
    hub.unsubscribe(sub)
    first, second, third = (t for t, _ in sink.samples[:3])
    assert first - t0 < 1.0  # priming, then at once
    assert 0.1 < second - first < 1.0 and 0.1 < third - second < 1.0
    assert "system/cpu_percent" in sink.samples[0][1]


def test_many_runs_share_one_thread_and_leave_at_once(no_gpu: None) -> None:  # noqa: F811
    hub = SharedSampler(0.1)
    before = _threads()
    sinks = [Sink() for _ in range(5)]
    subs = [hub.subscribe(s) for s in sinks]
    for s in sinks:
        s.wait_for(2)
    assert _threads() == before + 1
    t0 = time.perf_counter()
    for sub in subs:
        hub.unsubscribe(sub)
    assert time.perf_counter() - t0 < 0.05  # never joins a thread
    assert hub.subscribers == 0
    counts = [len(s.samples) for s in sinks]
    time.sleep(0.4)
    assert [len(s.samples) for s in sinks] == counts  # nothing after leaving
    late = Sink()  # the idle thread wakes for a newcomer
    sub = hub.subscribe(late)
    late.wait_for(1)
    hub.unsubscribe(sub)
    assert _threads() == before + 1


def test_a_newcomer_gets_its_own_first_sample_without_disturbing_others(
    no_gpu: None,  # noqa: F811
) -> None:
    hub = SharedSampler(0.5)
    old = Sink()
    a = hub.subscribe(old)
    old.wait_for(1)
    n_old = len(old.samples)
    new = Sink()
    b = hub.subscribe(new)
    new.wait_for(1)
    assert new.samples[0][0] - old.samples[0][0] < 0.5  # did not wait for the next tick
    assert len(old.samples) == n_old  # the old subscriber got no extra sample
    hub.unsubscribe(a)
    hub.unsubscribe(b)


def test_io_counts_from_each_subscribers_start(monkeypatch: pytest.MonkeyPatch) -> None:
    counter = {"n": 0.0}

    class Fake(SystemSampler):
        def sample(self) -> dict[str, float]:
            counter["n"] += 1000.0
            return {"system/disk/read_bytes": counter["n"], "system/cpu_percent": 1.0}

    hub = SharedSampler(0.05, Fake(lambda v: None, interval_s=0.05))
    first = Sink()
    a = hub.subscribe(first)
    first.wait_for(4)
    second = Sink()
    b = hub.subscribe(second)
    second.wait_for(1)
    hub.unsubscribe(a)
    hub.unsubscribe(b)
    assert second.samples[0][1]["system/disk/read_bytes"] <= 2000.0
    assert first.samples[-1][1]["system/disk/read_bytes"] > 2000.0
    assert all(v["system/cpu_percent"] == 1.0 for _, v in second.samples)


def test_a_failing_sink_does_not_stop_the_others(no_gpu: None) -> None:  # noqa: F811
    hub = SharedSampler(0.05)

    def broken(values: dict[str, float]) -> None:
        raise RuntimeError("sink down")

    good = Sink()
    a = hub.subscribe(broken)
    b = hub.subscribe(good)
    good.wait_for(3)
    hub.unsubscribe(a)
    hub.unsubscribe(b)
    assert isinstance(hub.sampler.error, RuntimeError)


def test_one_hub_per_interval() -> None:
    assert shared_sampler(7.5) is shared_sampler(7.5)
    assert shared_sampler(7.5) is not shared_sampler(8.5)
