"""System metrics: a background sampler logging ``system/...`` series (psutil + NVML).

One sample reads machine CPU and memory, the CPU, RSS, thread and process counts summed over
the run's whole process tree (the process and every descendant), machine-wide disk and network
I/O counted from the sampler's start, and per GPU the run uses: utilisation, memory,
temperature and power. psutil and pynvml are imported lazily, so importing this module costs
nothing. An NVML query that fails once for a device is disabled for that device (never retried
each sample), and nothing the sampler does can raise into the run.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ["SharedSampler", "SystemSampler", "shared_sampler"]

PRIME_S = 0.1
"""Seconds between priming the CPU counters and the first sample of a started sampler."""

_GONE: tuple[str, ...] = ("NoSuchProcess", "AccessDenied", "ZombieProcess")


def _cpu_busy_total(times: Any) -> tuple[float, float]:
    """Busy and total machine CPU seconds, counted as psutil.cpu_percent counts them."""
    total = float(sum(times))
    total -= getattr(times, "guest", 0.0) + getattr(times, "guest_nice", 0.0)
    return total - times.idle - getattr(times, "iowait", 0.0), total


def _query_memory(nv: Any, h: Any) -> dict[str, float]:
    mem = nv.nvmlDeviceGetMemoryInfo(h)
    percent = 100.0 * mem.used / mem.total if mem.total else 0.0
    return {"memory_used_bytes": float(mem.used), "memory_percent": float(percent)}


# One entry per NVML query, each disabled on its own for a device after its first failure.
_GPU_QUERIES: dict[str, Callable[[Any, Any], dict[str, float]]] = {
    "utilization": lambda nv, h: {
        "utilization_percent": float(nv.nvmlDeviceGetUtilizationRates(h).gpu)
    },
    "memory": _query_memory,
    "temperature": lambda nv, h: {
        "temperature_c": float(nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU))
    },
    "power": lambda nv, h: {"power_watts": nv.nvmlDeviceGetPowerUsage(h) / 1000.0},
}

# psutil function -> (key, counter field) pairs, reported as growth since the sampler's start.
_IO_COUNTERS: dict[str, tuple[tuple[str, str], ...]] = {
    "disk_io_counters": (
        ("system/disk/read_bytes", "read_bytes"),
        ("system/disk/write_bytes", "write_bytes"),
    ),
    "net_io_counters": (
        ("system/net/sent_bytes", "bytes_sent"),
        ("system/net/recv_bytes", "bytes_recv"),
    ),
}


def _handle_by_uuid(nv: Any, entry: str) -> Any:
    """The device a CUDA_VISIBLE_DEVICES UUID entry names (CUDA also accepts a unique prefix)."""
    try:
        return nv.nvmlDeviceGetHandleByUUID(entry)
    except Exception:
        if not entry.startswith(("GPU-", "MIG-")) or len(entry) <= 4:
            raise
        handles = [nv.nvmlDeviceGetHandleByIndex(i) for i in range(nv.nvmlDeviceGetCount())]
        found = [h for h in handles if str(nv.nvmlDeviceGetUUID(h)).startswith(entry)]
        if len(found) != 1:
            raise
        return found[0]


class SystemSampler:
    """Samples system metrics every ``interval_s`` seconds on a daemon thread.

    Attributes:
        error: The first exception raised by ``log`` (or by a sample), else None.
        gpu_status: Why GPU metrics are (or are not) recorded, e.g. ``"2 GPU(s): 0, 1"`` or
            ``"NVML unavailable: ..."``; ``"not initialised"`` before the first sample.
        disabled_queries: ``"gpu/{i}/{query}"`` -> the error that disabled that NVML query.
    """

    def __init__(
        self,
        log: Callable[[dict[str, float]], None],
        interval_s: float = 10.0,
        pid: int | None = None,
        gpu_indices: Sequence[int] | None = None,
    ) -> None:
        """Prepares a sampler; nothing is read until :meth:`start` or :meth:`sample`.

        Args:
            log: Receives each sample, a dict of ``system/...`` keys to floats.
            interval_s: Seconds between samples.
            pid: Root of the process tree to measure; the current process by default.
            gpu_indices: NVML indices of the GPUs to sample; by default those named by
                ``CUDA_VISIBLE_DEVICES`` (indices or UUIDs), else all.
        """
        if interval_s <= 0:
            raise ValueError(f"interval_s must be positive, got {interval_s!r}")
        self._log = log
        self.interval_s = float(interval_s)
        self._pid = os.getpid() if pid is None else pid
        self._gpu_indices = None if gpu_indices is None else [int(i) for i in gpu_indices]
        self.error: BaseException | None = None
        self.gpu_status = "not initialised"
        self.disabled_queries: dict[str, str] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ps: Any = None
        self._gone: tuple[type[BaseException], ...] = ()
        self._root: Any = None
        self._procs: dict[int, Any] = {}
        self._io_base: dict[str, float] = {}
        self._cpu_last = (0.0, 0.0)
        self._nvml: Any = None
        self._gpus: list[tuple[int, Any, dict[str, Callable[[Any, Any], dict[str, float]]]]] = []
        self._gpu_ready = False

    def start(self) -> None:
        """Starts the ``mltrail-system`` daemon thread; the first sample follows at once."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="mltrail-system", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stops the thread promptly (no final sample) and shuts NVML down; idempotent.

        Args:
            timeout: Seconds to wait for the thread to finish a sample in progress.
        """
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        if not self._lock.acquire(timeout=timeout):
            return  # a sample is stuck (e.g. a hung driver call): leave NVML to process exit
        try:
            if self._nvml is not None:
                with contextlib.suppress(Exception):
                    self._nvml.nvmlShutdown()
            self._nvml = None
            self._gpus = []
            self._gpu_ready = False
        finally:
            self._lock.release()

    def _loop(self) -> None:
        try:
            with self._lock:
                self._prime()
        except Exception as exc:  # psutil missing: nothing to sample, nothing to raise
            self.error = exc
            return
        if self._stop.wait(PRIME_S):
            return
        next_at = time.monotonic()
        while not self._stop.is_set():
            self._emit()
            next_at = max(next_at + self.interval_s, time.monotonic())
            if self._stop.wait(next_at - time.monotonic()):
                return

    def _emit(self) -> None:
        try:
            values = self.sample()
            self._log(values)
        except Exception as exc:
            if self.error is None:
                self.error = exc

    def sample(self) -> dict[str, float]:
        """Takes one sample now (CPU percentages are since the previous sample or priming).

        Returns:
            ``system/...`` keys to floats; keys whose source is unavailable are omitted.

        Raises:
            ImportError: psutil is not installed.
        """
        with self._lock:
            self._prime()
            ps = self._ps
            busy, total = _cpu_busy_total(ps.cpu_times())
            elapsed = total - self._cpu_last[1]
            share = (busy - self._cpu_last[0]) / elapsed if elapsed > 0 else 0.0
            self._cpu_last = (busy, total)
            out = {"system/cpu_percent": round(100.0 * min(1.0, max(0.0, share)), 2)}
            vm = ps.virtual_memory()
            out["system/memory_percent"] = float(vm.percent)
            out["system/memory_used_bytes"] = float(vm.total - vm.available)
            out.update(self._sample_tree())
            out.update(self._sample_io())
            out.update(self._sample_gpus())
            return out

    def _prime(self) -> None:
        """Imports psutil, primes the CPU counters and the I/O baselines (once)."""
        if self._ps is not None:
            return
        ps = importlib.import_module("psutil")
        self._gone = tuple(getattr(ps, name) for name in _GONE)
        self._cpu_last = _cpu_busy_total(ps.cpu_times())
        try:
            self._root = ps.Process(self._pid)
            for proc in [self._root, *self._root.children(recursive=True)]:
                proc.cpu_percent(None)
                self._procs[proc.pid] = proc
        except self._gone:
            pass
        self._io_base = self._read_io(ps)
        self._ps = ps

    def _sample_tree(self) -> dict[str, float]:
        root = self._root
        if root is None:
            return {}
        try:
            procs = [root, *root.children(recursive=True)]
        except self._gone:
            return {}
        cached: dict[int, Any] = {}
        cpu = rss = threads = count = 0.0
        for found in procs:
            proc = self._procs.get(found.pid, found)
            try:
                with proc.oneshot():
                    # A pid reused by a new process is a different process: start afresh.
                    if proc is not found and proc.create_time() != found.create_time():
                        proc = found
                    pcpu = proc.cpu_percent(None)
                    prss = proc.memory_info().rss
                    pthreads = proc.num_threads()
            except self._gone:
                continue
            cached[proc.pid] = proc
            cpu += pcpu
            rss += prss
            threads += pthreads
            count += 1
        self._procs = cached
        if not count:
            return {}
        return {
            "system/proc/cpu_percent": cpu,
            "system/proc/rss_bytes": rss,
            "system/proc/threads": threads,
            "system/proc/count": count,
        }

    @staticmethod
    def _read_io(ps: Any) -> dict[str, float]:
        out: dict[str, float] = {}
        for function, fields in _IO_COUNTERS.items():
            try:
                counters = getattr(ps, function)()
            except Exception:
                continue
            if counters is not None:  # None: no disks / no network interfaces
                out.update((key, float(getattr(counters, attr))) for key, attr in fields)
        return out

    def _sample_io(self) -> dict[str, float]:
        now = self._read_io(self._ps)
        return {k: max(0.0, v - self._io_base.get(k, v)) for k, v in now.items()}

    def _init_gpus(self) -> None:
        """Initialises NVML once and picks the GPUs to sample; records why when it cannot."""
        self._gpu_ready = True
        try:
            nv = importlib.import_module("pynvml")
        except ImportError as exc:
            self.gpu_status = f"pynvml not installed: {exc}"
            return
        try:
            nv.nvmlInit()
        except Exception as exc:
            self.gpu_status = f"NVML unavailable: {type(exc).__name__}: {exc}"
            return
        self._nvml = nv
        try:
            handles = self._select_gpus(nv)
        except Exception as exc:
            self.gpu_status = f"NVML device enumeration failed: {type(exc).__name__}: {exc}"
            return
        self._gpus = [(i, h, dict(_GPU_QUERIES)) for i, h in handles]
        if self._gpus:
            names = ", ".join(str(i) for i, _, _ in self._gpus)
            self.gpu_status = f"{len(self._gpus)} GPU(s): {names}"
        else:
            self.gpu_status = "no GPUs selected (none present or CUDA_VISIBLE_DEVICES hides all)"

    def _select_gpus(self, nv: Any) -> list[tuple[int, Any]]:
        if self._gpu_indices is not None:
            return [(i, nv.nvmlDeviceGetHandleByIndex(i)) for i in self._gpu_indices]
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        if visible is None:
            return [(i, nv.nvmlDeviceGetHandleByIndex(i)) for i in range(nv.nvmlDeviceGetCount())]
        out: list[tuple[int, Any]] = []
        for position, entry in enumerate(e.strip() for e in visible.split(",")):
            # Like CUDA: devices up to the first entry that names none.
            try:
                if entry.lstrip("-").isdigit():
                    index = int(entry)
                    if index < 0:
                        break
                    out.append((index, nv.nvmlDeviceGetHandleByIndex(index)))
                    continue
                handle = _handle_by_uuid(nv, entry)
            except Exception:
                break
            try:
                index = int(nv.nvmlDeviceGetIndex(handle))
            except Exception:  # e.g. a MIG device: key it by its CUDA ordinal
                index = position
            out.append((index, handle))
        return out

    def _sample_gpus(self) -> dict[str, float]:
        if not self._gpu_ready:
            self._init_gpus()
        nv = self._nvml
        out: dict[str, float] = {}
        for index, handle, queries in self._gpus:
            for name, query in list(queries.items()):
                try:
                    values = query(nv, handle)
                except Exception as exc:
                    del queries[name]
                    self.disabled_queries[f"gpu/{index}/{name}"] = f"{type(exc).__name__}: {exc}"
                    continue
                for key, value in values.items():
                    out[f"system/gpu/{index}/{key}"] = value
        return out


_IO_KEYS = frozenset(key for fields in _IO_COUNTERS.values() for key, _ in fields)


class SharedSampler:
    """One sampling thread for every live run of a process at one interval.

    A run subscribes when it starts and unsubscribes when it finishes, both at the cost of a
    lock: the thread starts with the first subscriber, sleeps without waking while none is
    subscribed, and is a daemon that lives as long as the process (it is never joined, so a
    finishing run never waits for a sample in progress). A new subscriber gets its first
    sample at once (after :data:`PRIME_S` when the thread was idle, so CPU shares cover a real
    interval), then one every ``interval_s`` with the others. I/O counters count from each
    subscriber's own start, as a sampler of its own would.
    """

    def __init__(self, interval_s: float, sampler: SystemSampler | None = None) -> None:
        self.interval_s = float(interval_s)
        self.sampler = sampler or SystemSampler(lambda values: None, interval_s=interval_s)
        self._cond = threading.Condition()
        self._subs: dict[int, tuple[Callable[[dict[str, float]], None], dict[str, float]]] = {}
        self._fresh: set[int] = set()
        self._ids = 0
        self._io_now: dict[str, float] = {}
        self._thread: threading.Thread | None = None

    def subscribe(self, log: Callable[[dict[str, float]], None]) -> int:
        """Start delivering samples to ``log``; returns the subscription's id."""
        with self._cond:
            self._ids += 1
            self._subs[self._ids] = (log, dict(self._io_now))
            self._fresh.add(self._ids)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="mltrail-system-shared", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()
            return self._ids

    def unsubscribe(self, sub: int) -> None:
        """Stop delivering to a subscription; returns at once (idempotent)."""
        with self._cond:
            self._subs.pop(sub, None)
            self._fresh.discard(sub)

    @property
    def subscribers(self) -> int:
        """How many subscriptions are live."""
        with self._cond:
            return len(self._subs)

    def _loop(self) -> None:
        idle = True
        next_at = 0.0
        while True:
            with self._cond:
                while not self._subs:
                    idle = True
                    self._cond.wait()
                if not idle and not self._fresh:
                    self._cond.wait(max(0.0, next_at - time.monotonic()))
                    if not self._fresh and time.monotonic() < next_at:
                        continue  # woken early, by a subscription that has already ended
            if idle:
                self._sample()  # primes the counters; CPU shares need an interval behind them
                time.sleep(PRIME_S)
                idle = False
                next_at = time.monotonic()
            values = self._sample()
            now = time.monotonic()
            with self._cond:
                due = now >= next_at
                targets = [
                    (log, base)
                    for sub, (log, base) in self._subs.items()
                    if due or sub in self._fresh
                ]
                self._fresh.clear()
                if due:
                    next_at = max(next_at + self.interval_s, now)
            for log, base in targets:
                self._deliver(log, base, values)

    def _sample(self) -> dict[str, float] | None:
        try:
            values = self.sampler.sample()
        except Exception as exc:  # psutil missing or broken: nothing to deliver
            if self.sampler.error is None:
                self.sampler.error = exc
            return None
        with self._cond:
            self._io_now = {k: v for k, v in values.items() if k in _IO_KEYS}
        return values

    def _deliver(
        self,
        log: Callable[[dict[str, float]], None],
        base: dict[str, float],
        values: dict[str, float] | None,
    ) -> None:
        if values is None:
            return
        own = {
            k: (max(0.0, v - base.get(k, 0.0)) if k in _IO_KEYS else v) for k, v in values.items()
        }
        try:
            log(own)
        except Exception as exc:  # one run's failing sink must not stop the others
            if self.sampler.error is None:
                self.sampler.error = exc


_shared: dict[float, SharedSampler] = {}
_shared_lock = threading.Lock()


def shared_sampler(interval_s: float) -> SharedSampler:
    """The process's :class:`SharedSampler` for ``interval_s`` (created on first use)."""
    with _shared_lock:
        found = _shared.get(interval_s)
        if found is None:
            found = _shared[interval_s] = SharedSampler(interval_s)
        return found
