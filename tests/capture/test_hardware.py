"""Hardware capture: the real no-GPU path, and the NVML path through a fake pynvml module."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import types
from collections.abc import Callable
from typing import Any

import pytest

from mltrail.capture import hardware
from mltrail.capture.base import Capturer
from mltrail.capture.hardware import HardwareCapturer, capture_hardware, frameworks, gpus

HAS_DRIVER = any(os.path.exists(m) for m in ("/proc/driver/nvidia", "/dev/nvidiactl"))


class NVMLError(Exception):
    """Stands in for pynvml.NVMLError."""


class NVMLErrorNotSupported(NVMLError):
    """Stands in for pynvml.NVMLError_NotSupported (its str() matches the real one)."""

    def __str__(self) -> str:
        return "Not Supported"


def raises(exc: Exception) -> Callable[..., Any]:
    """A function that raises ``exc`` whatever it is called with."""

    def call(*args: Any) -> Any:
        raise exc

    return call


def fake_pynvml(**overrides: Callable[..., Any]) -> types.ModuleType:
    """A pynvml look-alike with two GPUs: an A100 without MIG support and an H100 in MIG mode."""
    devices = [
        {"name": b"NVIDIA A100-SXM4-80GB", "uuid": "GPU-aaaa", "total": 80 * 2**30, "cc": (8, 0)},
        {"name": "NVIDIA H100 80GB HBM3", "uuid": b"GPU-bbbb", "total": 79 * 2**30, "cc": (9, 0)},
    ]
    calls: list[str] = []
    module = types.ModuleType("pynvml")

    def mig(handle: int) -> tuple[int, int]:
        if handle == 0:
            raise NVMLErrorNotSupported()
        return (1, 0)

    functions: dict[str, Callable[..., Any]] = {
        "nvmlInit": lambda: calls.append("init"),
        "nvmlShutdown": lambda: calls.append("shutdown"),
        "nvmlDeviceGetCount": lambda: len(devices),
        "nvmlSystemGetDriverVersion": lambda: "550.54.15",
        "nvmlSystemGetCudaDriverVersion": lambda: 12040,
        "nvmlDeviceGetHandleByIndex": lambda i: i,
        "nvmlDeviceGetName": lambda h: devices[h]["name"],
        "nvmlDeviceGetUUID": lambda h: devices[h]["uuid"],
        "nvmlDeviceGetMemoryInfo": lambda h: types.SimpleNamespace(
            total=devices[h]["total"], used=0, free=devices[h]["total"]
        ),
        "nvmlDeviceGetCudaComputeCapability": lambda h: devices[h]["cc"],
        "nvmlDeviceGetMigMode": mig,
    }
    functions.update(overrides)
    for name, function in functions.items():
        setattr(module, name, function)
    module.calls = calls  # type: ignore[attr-defined]
    return module


@pytest.fixture
def with_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend an NVIDIA driver is installed, so NVML is tried."""
    monkeypatch.setattr(hardware, "_driver_present", lambda: True)


@pytest.mark.skipif(HAS_DRIVER, reason="an NVIDIA driver is present on this machine")
def test_no_gpu_machine_records_nvml_unavailable() -> None:
    """On a machine without an NVIDIA driver, capture says so and lists no GPU."""
    data = capture_hardware().data
    assert data["gpus"] == []
    assert data["nvml"] == {"available": False, "reason": "no NVIDIA driver found"}


@pytest.mark.skipif(HAS_DRIVER, reason="an NVIDIA driver is present on this machine")
@pytest.mark.usefixtures("with_driver")
def test_real_pynvml_without_library_records_init_failure() -> None:
    """The real pynvml, asked to start without libnvidia-ml, fails as data, not as an error."""
    pytest.importorskip("pynvml")
    found, nvml = gpus()
    assert found == []
    assert nvml["available"] is False
    assert nvml["reason"].startswith("NVML init failed: ")


@pytest.mark.usefixtures("with_driver")
def test_pynvml_not_installed_is_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the pynvml module, the reason names the failed import."""
    monkeypatch.setitem(sys.modules, "pynvml", None)
    found, nvml = gpus()
    assert found == []
    assert nvml["available"] is False
    assert nvml["reason"].startswith("pynvml not importable")


@pytest.mark.usefixtures("with_driver")
def test_gpus_are_described_and_one_unsupported_query_loses_nothing_else(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Both GPUs are fully described; MIG NotSupported on one is None plus a recorded reason."""
    fake = fake_pynvml()
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    data = capture_hardware().data
    assert data["nvml"] == {"available": True, "reason": None}
    assert data["gpus"] == [
        {
            "index": 0,
            "name": "NVIDIA A100-SXM4-80GB",
            "uuid": "GPU-aaaa",
            "memory_total_bytes": 80 * 2**30,
            "compute_capability": "8.0",
            "driver_version": "550.54.15",
            "cuda_driver_version": "12.4",
            "mig_mode": None,
            "errors": {"mig_mode": "Not Supported"},
        },
        {
            "index": 1,
            "name": "NVIDIA H100 80GB HBM3",
            "uuid": "GPU-bbbb",
            "memory_total_bytes": 79 * 2**30,
            "compute_capability": "9.0",
            "driver_version": "550.54.15",
            "cuda_driver_version": "12.4",
            "mig_mode": {"current": 1, "pending": 0},
        },
    ]
    assert fake.calls == ["init", "shutdown"]
    json.dumps(data)


@pytest.mark.usefixtures("with_driver")
def test_every_query_failing_still_returns_each_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """With every per-device and system query unsupported, each GPU is listed with its reasons."""
    failing = raises(NVMLErrorNotSupported())
    fake = fake_pynvml(
        nvmlSystemGetDriverVersion=failing,
        nvmlSystemGetCudaDriverVersion=failing,
        nvmlDeviceGetName=failing,
        nvmlDeviceGetUUID=failing,
        nvmlDeviceGetMemoryInfo=failing,
        nvmlDeviceGetCudaComputeCapability=failing,
    )
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    found, nvml = gpus()
    assert nvml["available"] is True
    assert [g["index"] for g in found] == [0, 1]
    assert found[0]["name"] is None and found[0]["driver_version"] is None
    assert set(found[0]["errors"]) == {
        "name",
        "uuid",
        "memory_total_bytes",
        "compute_capability",
        "mig_mode",
    }
    assert found[1]["mig_mode"] == {"current": 1, "pending": 0}


@pytest.mark.usefixtures("with_driver")
def test_handle_failure_affects_only_that_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """A GPU whose handle cannot be had is listed with the reason; the other is complete."""

    def handle(index: int) -> int:
        if index == 0:
            raise NVMLError("GPU is lost")
        return index

    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(nvmlDeviceGetHandleByIndex=handle))
    found, _ = gpus()
    assert found[0]["errors"] == {"handle": "GPU is lost"}
    assert found[1]["name"] == "NVIDIA H100 80GB HBM3"


@pytest.mark.usefixtures("with_driver")
@pytest.mark.parametrize("stage", ["nvmlInit", "nvmlDeviceGetCount"])
def test_init_or_count_failure_is_recorded_and_nvml_shut_down(
    monkeypatch: pytest.MonkeyPatch, stage: str
) -> None:
    """NVML failing to start or count is recorded; once started it is always shut down."""
    fake = fake_pynvml(**{stage: raises(NVMLError("Driver Not Loaded"))})
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    found, nvml = gpus()
    assert found == []
    assert nvml["available"] is False
    assert "Driver Not Loaded" in nvml["reason"]
    assert fake.calls == ([] if stage == "nvmlInit" else ["init", "shutdown"])


def test_host_cpu_and_memory_are_described() -> None:
    """OS, hostname, CPU counts and memory describe this machine."""
    data = capture_hardware().data
    uname = platform.uname()
    assert data["os"] == {
        "system": uname.system,
        "release": uname.release,
        "version": uname.version,
        "machine": uname.machine,
    }
    assert data["hostname"]
    assert data["cpu"]["logical"] == os.cpu_count()
    assert data["cpu"]["physical"] is None or 1 <= data["cpu"]["physical"] <= os.cpu_count()
    assert data["cpu"]["model"]
    assert data["memory_bytes"] > 2**20


def test_physical_cores_match_psutil() -> None:
    """The /proc/cpuinfo core count agrees with psutil's."""
    psutil = pytest.importorskip("psutil")
    assert capture_hardware().data["cpu"]["physical"] == psutil.cpu_count(logical=False)


def test_capture_never_imports_frameworks_or_probes() -> None:
    """Importing and running every capture leaves torch, numpy, NVML and psutil unimported."""
    code = (
        "import json, sys\n"
        "from mltrail.capture import config, environment, git, hardware, seeds\n"
        "heavy = ('torch', 'numpy', 'hydra', 'omegaconf', 'pynvml', 'psutil', 'jax')\n"
        "assert not [m for m in heavy if m in sys.modules], 'import'\n"
        "data = hardware.capture_hardware().data\n"
        "environment.capture_environment(); config.capture_config({'a': 1})\n"
        "seeds.capture_seeds(); git.capture_code()\n"
        "print(json.dumps({'loaded': [m for m in heavy if m in sys.modules],"
        " 'frameworks': data['frameworks']}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    assert set(result["loaded"]) <= ({"pynvml"} if HAS_DRIVER else set())
    assert result["frameworks"] == {"torch": None, "jax": None, "tensorflow": None}


def test_imported_torch_is_described() -> None:
    """Once the program imported torch, its version, CUDA and cuDNN builds are recorded."""
    torch = pytest.importorskip("torch")
    info = frameworks()["torch"]
    assert info["version"] == torch.__version__
    assert info["cuda"] == torch.version.cuda
    assert info["cuda_available"] == torch.cuda.is_available()
    assert info["device_count"] == torch.cuda.device_count()


def test_imported_jax_and_tensorflow_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Already-imported jax and tensorflow report their versions."""
    monkeypatch.setitem(sys.modules, "jax", types.SimpleNamespace(__version__="0.4.30"))
    monkeypatch.setitem(sys.modules, "jaxlib", types.SimpleNamespace(__version__="0.4.29"))
    monkeypatch.setitem(sys.modules, "tensorflow", types.SimpleNamespace(__version__="2.16.1"))
    found = frameworks()
    assert found["jax"] == {"version": "0.4.30", "jaxlib": "0.4.29"}
    assert found["tensorflow"] == {"version": "2.16.1"}


def test_hardware_capturer_satisfies_the_protocol() -> None:
    """HardwareCapturer is a Capturer returning kind "hardware"."""
    capturer = HardwareCapturer()
    assert isinstance(capturer, Capturer)
    assert capturer.available() is True
    assert capturer.capture().kind == "hardware"
