"""The system metrics sampler: real psutil samples, the process tree, lifecycle, fake NVML."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import types
from collections.abc import Iterator
from typing import Any

import psutil
import pytest

from mltrail.capture.system import SystemSampler

BASE_KEYS = {
    "system/cpu_percent",
    "system/memory_percent",
    "system/memory_used_bytes",
    "system/proc/cpu_percent",
    "system/proc/rss_bytes",
    "system/proc/threads",
    "system/proc/count",
}
GPU_KEYS = ("utilization_percent", "memory_used_bytes", "memory_percent", "temperature_c")
CHILD = (
    "import sys, time\nb = b'x' * (50 * 1024 * 1024)\nprint('ready', flush=True)\ntime.sleep(30)\n"
)


def _no_log(values: dict[str, float]) -> None:
    """Discards a sample."""


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """Makes pynvml unimportable, so no test depends on the machine's GPUs."""
    monkeypatch.setitem(sys.modules, "pynvml", None)


@pytest.fixture
def child() -> Iterator[subprocess.Popen[str]]:
    """A child python holding ~50 MB resident, ready when yielded."""
    proc = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield proc
    finally:
        proc.kill()
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()


class NVMLError(Exception):
    """Stands in for pynvml.NVMLError."""


class NVMLErrorNotSupported(NVMLError):
    """Stands in for pynvml.NVMLError_NotSupported."""


def fake_pynvml(count: int = 4, power_ok: bool = True) -> Any:
    """A fake pynvml with ``count`` GPUs; ``calls`` counts each query by name."""
    nv: Any = types.ModuleType("pynvml")
    nv.calls = {}
    nv.NVML_TEMPERATURE_GPU = 0
    nv.NVMLError = NVMLError
    uuids = {f"GPU-{i}{i}{i}-fake": i for i in range(count)}

    def counted(name: str, fn: Any) -> Any:
        def wrapper(*args: Any) -> Any:
            nv.calls[name] = nv.calls.get(name, 0) + 1
            return fn(*args)

        return wrapper

    def by_index(i: int) -> int:
        if not 0 <= i < count:
            raise NVMLError("Invalid Argument")
        return i

    def by_uuid(u: str) -> int:
        if u not in uuids:
            raise NVMLError("Not Found")
        return uuids[u]

    def power(h: int) -> int:
        if not power_ok:
            raise NVMLErrorNotSupported("Not Supported")
        return 250_000 + h

    nv.nvmlInit = counted("init", lambda: None)
    nv.nvmlShutdown = counted("shutdown", lambda: None)
    nv.nvmlDeviceGetCount = lambda: count
    nv.nvmlDeviceGetHandleByIndex = by_index
    nv.nvmlDeviceGetHandleByUUID = by_uuid
    nv.nvmlDeviceGetIndex = lambda h: h
    nv.nvmlDeviceGetUUID = lambda h: f"GPU-{h}{h}{h}-fake"
    nv.nvmlDeviceGetUtilizationRates = counted(
        "util", lambda h: types.SimpleNamespace(gpu=10 * h, memory=0)
    )
    nv.nvmlDeviceGetMemoryInfo = counted(
        "memory", lambda h: types.SimpleNamespace(used=1024 * h, total=4096, free=0)
    )
    nv.nvmlDeviceGetTemperature = counted("temperature", lambda h, sensor: 40 + h)
    nv.nvmlDeviceGetPowerUsage = counted("power", power)
    return nv


def test_sample_of_this_process_has_every_base_key(no_gpu: None) -> None:
    """A direct sample of this process has all machine and process-tree keys, as floats."""
    sampler = SystemSampler(_no_log)
    sampler.sample()
    values = sampler.sample()
    assert set(values) >= BASE_KEYS
    assert all(isinstance(v, float) for v in values.values())
    assert values["system/proc/count"] >= 1
    assert values["system/proc/threads"] >= 1
    assert values["system/proc/rss_bytes"] >= psutil.Process().memory_info().rss / 2
    assert 0 <= values["system/cpu_percent"] <= 100
    assert 0 < values["system/memory_percent"] <= 100
    assert not any(k.startswith("system/gpu/") for k in values)
    for key in ("system/disk/read_bytes", "system/net/sent_bytes"):
        assert values.get(key, 0.0) >= 0


def test_process_tree_includes_a_child(no_gpu: None, child: subprocess.Popen[str]) -> None:
    """RSS and process count sum over the tree: a 50 MB child shows up in both."""
    own = SystemSampler(_no_log, pid=psutil.Process().pid)
    alone = SystemSampler(_no_log, pid=child.pid).sample()
    with_child = own.sample()
    assert with_child["system/proc/count"] >= 2
    assert alone["system/proc/rss_bytes"] >= 50 * 1024 * 1024
    child.kill()
    child.wait()
    without_child = own.sample()
    assert without_child["system/proc/count"] == with_child["system/proc/count"] - 1
    grew = with_child["system/proc/rss_bytes"] - without_child["system/proc/rss_bytes"]
    assert grew >= 45 * 1024 * 1024


def test_vanishing_child_is_skipped(
    no_gpu: None, monkeypatch: pytest.MonkeyPatch, child: subprocess.Popen[str]
) -> None:
    """A child that exits between listing and reading is skipped without error."""
    dead = psutil.Process(child.pid)
    child.kill()
    child.wait()
    monkeypatch.setattr(psutil.Process, "children", lambda self, recursive=False: [dead])
    values = SystemSampler(_no_log).sample()
    assert values["system/proc/count"] == 1


def test_io_counters_missing_are_omitted(no_gpu: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Disk and network keys are left out when psutil has no counters for them."""
    monkeypatch.setattr(psutil, "disk_io_counters", lambda *a, **k: None)
    monkeypatch.setattr(psutil, "net_io_counters", lambda *a, **k: None)
    values = SystemSampler(_no_log).sample()
    assert not any(k.startswith(("system/disk/", "system/net/")) for k in values)
    assert set(values) >= BASE_KEYS


def test_start_samples_at_once_and_stop_is_prompt(no_gpu: None) -> None:
    """The thread samples right after start, and stop returns well within 1 s at 10 s interval."""
    got = threading.Event()
    samples: list[dict[str, float]] = []

    def log(values: dict[str, float]) -> None:
        samples.append(values)
        got.set()

    sampler = SystemSampler(log, interval_s=10.0)
    sampler.start()
    assert got.wait(3.0)
    assert any(t.name == "mltrail-system" and t.daemon for t in threading.enumerate())
    t0 = time.perf_counter()
    sampler.stop()
    assert time.perf_counter() - t0 < 1.0
    sampler.stop()
    assert not any(t.name == "mltrail-system" for t in threading.enumerate())
    assert len(samples) == 1 and set(samples[0]) >= BASE_KEYS


def test_log_errors_do_not_kill_the_thread(no_gpu: None) -> None:
    """A raising log callback is recorded once in error, and sampling goes on."""
    calls = []
    enough = threading.Event()

    def log(values: dict[str, float]) -> None:
        calls.append(values)
        if len(calls) >= 3:
            enough.set()
        raise RuntimeError(f"boom {len(calls)}")

    sampler = SystemSampler(log, interval_s=0.01)
    sampler.start()
    try:
        assert enough.wait(5.0)
    finally:
        sampler.stop()
    assert isinstance(sampler.error, RuntimeError) and str(sampler.error) == "boom 1"


def test_pynvml_missing_gives_no_gpu_keys(no_gpu: None) -> None:
    """Without pynvml: no GPU keys, no error, and gpu_status says why."""
    sampler = SystemSampler(_no_log)
    values = sampler.sample()
    assert not any(k.startswith("system/gpu/") for k in values)
    assert "pynvml not installed" in sampler.gpu_status
    sampler.stop()


def test_nvml_init_failure_gives_no_gpu_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """NVML present but no driver: no GPU keys, recorded once, never retried."""
    nv: Any = fake_pynvml()

    def no_driver() -> None:
        nv.calls["init"] = nv.calls.get("init", 0) + 1
        raise NVMLError("NVML Shared Library Not Found")

    nv.nvmlInit = no_driver
    monkeypatch.setitem(sys.modules, "pynvml", nv)
    sampler = SystemSampler(_no_log)
    for _ in range(3):
        assert not any(k.startswith("system/gpu/") for k in sampler.sample())
    assert sampler.gpu_status.startswith("NVML unavailable") and "Library" in sampler.gpu_status
    assert nv.calls["init"] == 1


def test_fake_gpus_give_every_gpu_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """With NVML, each GPU gets utilisation, memory, temperature and power keys."""
    nv: Any = fake_pynvml(count=2)
    monkeypatch.setitem(sys.modules, "pynvml", nv)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    sampler = SystemSampler(_no_log)
    values = sampler.sample()
    for i in (0, 1):
        for key in (*GPU_KEYS, "power_watts"):
            assert f"system/gpu/{i}/{key}" in values
    assert values["system/gpu/1/utilization_percent"] == 10.0
    assert values["system/gpu/1/memory_percent"] == 25.0
    assert values["system/gpu/1/memory_used_bytes"] == 1024.0
    assert values["system/gpu/1/temperature_c"] == 41.0
    assert values["system/gpu/1/power_watts"] == 250.001
    assert sampler.gpu_status == "2 GPU(s): 0, 1"
    sampler.stop()
    assert nv.calls["init"] == 1 and nv.calls["shutdown"] == 1


@pytest.mark.parametrize(
    ("visible", "indices", "expected"),
    [
        ("2,GPU-000-fake", None, {2, 0}),
        ("GPU-33,GPU-1", None, {3, 1}),  # unique UUID prefixes, as CUDA allows
        ("GPU-,1", None, set()),  # an ambiguous prefix names no device
        ("3", None, {3}),
        ("", None, set()),
        ("1,7,2", None, {1}),  # like CUDA: stop at the first invalid entry
        ("0,1", [3], {3}),  # explicit indices win
    ],
)
def test_gpu_selection(
    monkeypatch: pytest.MonkeyPatch, visible: str, indices: list[int] | None, expected: set[int]
) -> None:
    """GPUs come from gpu_indices, else CUDA_VISIBLE_DEVICES (indices or UUIDs)."""
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(count=4))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    values = SystemSampler(_no_log, gpu_indices=indices).sample()
    found = {int(k.split("/")[2]) for k in values if k.startswith("system/gpu/")}
    assert found == expected


@pytest.mark.parametrize("visible", ["", "GPU-", "nonsense", "-1"])
def test_cuda_visible_devices_can_hide_the_only_gpu(
    monkeypatch: pytest.MonkeyPatch, visible: str
) -> None:
    """An empty, bare-prefix or invalid CUDA_VISIBLE_DEVICES selects no GPU, even with one."""
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(count=1))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    sampler = SystemSampler(_no_log)
    assert not any(k.startswith("system/gpu/") for k in sampler.sample())
    assert sampler.gpu_status.startswith("no GPUs selected")


def test_unsupported_power_is_disabled_after_one_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    """A NotSupported power query is tried once, then disabled; other keys continue."""
    nv: Any = fake_pynvml(count=1, power_ok=False)
    monkeypatch.setitem(sys.modules, "pynvml", nv)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    sampler = SystemSampler(_no_log)
    for _ in range(5):
        values = sampler.sample()
        assert "system/gpu/0/power_watts" not in values
        assert all(f"system/gpu/0/{key}" in values for key in GPU_KEYS)
    assert nv.calls["power"] == 1
    assert nv.calls["util"] == 5
    assert "NotSupported" in sampler.disabled_queries["gpu/0/power"]


def test_real_pynvml_never_raises() -> None:
    """Whatever this machine has (GPU or not), a sample with the real pynvml succeeds."""
    pytest.importorskip("pynvml")
    sampler = SystemSampler(_no_log)
    try:
        assert set(sampler.sample()) >= BASE_KEYS
        assert sampler.gpu_status != "not initialised"
    finally:
        sampler.stop()


def test_import_is_light() -> None:
    """Importing the module imports neither psutil nor pynvml."""
    code = (
        "import sys, mltrail.capture.system\n"
        "assert 'psutil' not in sys.modules and 'pynvml' not in sys.modules, sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)


def test_psutil_missing_never_raises_into_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without psutil the thread records the ImportError and ends quietly."""
    monkeypatch.setitem(sys.modules, "psutil", None)
    sampler = SystemSampler(_no_log, interval_s=0.01)
    sampler.start()
    sampler.stop()
    assert isinstance(sampler.error, ImportError)
    with pytest.raises(ImportError):
        sampler.sample()
