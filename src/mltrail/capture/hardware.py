"""Hardware capture: OS, host, CPU, memory, NVIDIA GPUs via NVML, and ML framework builds.

NVML (package nvidia-ml-py, module ``pynvml``) is imported only when an NVIDIA driver is
present (on Linux: ``/proc/driver/nvidia``, ``/dev/nvidiactl`` or WSL's ``/dev/dxg``), which
spares the import on machines without a GPU. Each NVML query runs in its own ``try``, so one
query a GPU does not support never loses the others (mlflow #14736). Frameworks are described
only when the program has already imported them: capture never imports torch, jax or
TensorFlow.
"""

from __future__ import annotations

import os
import platform
import socket
import sys
from typing import TYPE_CHECKING, Any

from mltrail.capture.base import Captured, imported

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["HardwareCapturer", "capture_hardware", "frameworks", "gpus"]

_DRIVER_MARKERS = ("/proc/driver/nvidia", "/dev/nvidiactl", "/dev/dxg")


def _os() -> dict[str, str]:
    uname = platform.uname()
    return {
        "system": uname.system,
        "release": uname.release,
        "version": uname.version,
        "machine": uname.machine,
    }


def _cpuinfo() -> tuple[str | None, int | None]:
    """CPU model and physical core count from /proc/cpuinfo (None where absent)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return None, None
    model: str | None = None
    cores: set[tuple[str, str]] = set()
    package = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "model name" and model is None:
            model = value
        elif key == "physical id":
            package = value
        elif key == "core id":
            cores.add((package, value))
    return model, len(cores) or None


def _cpu() -> dict[str, Any]:
    model, physical = _cpuinfo()
    if physical is None:
        try:
            import psutil

            physical = psutil.cpu_count(logical=False)
        except Exception:  # psutil missing or unable to tell
            physical = None
    try:
        usable: int | None = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = None
    return {
        "model": model or platform.processor() or None,
        "logical": os.cpu_count(),
        "physical": physical,
        "usable": usable,
    }


def _memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        pass
    try:
        import psutil

        return int(psutil.virtual_memory().total)
    except Exception:
        return None


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _cuda_version(raw: int) -> str:
    return f"{raw // 1000}.{raw % 1000 // 10}"


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _query(errors: dict[str, str], field: str, call: Callable[[], Any]) -> Any:
    """Run one NVML query; on failure record why under ``errors[field]`` and return None."""
    try:
        return call()
    except Exception as exc:
        errors[field] = _reason(exc)
        return None


def _mig_mode(nvml: Any, handle: Any) -> dict[str, int] | None:
    current, pending = nvml.nvmlDeviceGetMigMode(handle)
    return {"current": int(current), "pending": int(pending)}


def _gpu(nvml: Any, index: int, system: dict[str, Any]) -> dict[str, Any]:
    errors: dict[str, str] = {}
    gpu: dict[str, Any] = {"index": index, **system}
    handle = _query(errors, "handle", lambda: nvml.nvmlDeviceGetHandleByIndex(index))
    if handle is None:
        gpu["errors"] = errors
        return gpu
    name = _query(errors, "name", lambda: nvml.nvmlDeviceGetName(handle))
    uuid = _query(errors, "uuid", lambda: nvml.nvmlDeviceGetUUID(handle))
    memory = _query(errors, "memory_total_bytes", lambda: nvml.nvmlDeviceGetMemoryInfo(handle))
    capability = _query(
        errors, "compute_capability", lambda: nvml.nvmlDeviceGetCudaComputeCapability(handle)
    )
    mig = _query(errors, "mig_mode", lambda: _mig_mode(nvml, handle))
    gpu.update(
        name=None if name is None else _text(name),
        uuid=None if uuid is None else _text(uuid),
        memory_total_bytes=None if memory is None else int(memory.total),
        compute_capability=None if capability is None else "{}.{}".format(*capability),
        mig_mode=mig,
    )
    if errors:
        gpu["errors"] = errors
    return gpu


def _system(nvml: Any) -> dict[str, Any]:
    errors: dict[str, str] = {}
    driver = _query(errors, "driver_version", nvml.nvmlSystemGetDriverVersion)
    cuda = _query(errors, "cuda_driver_version", nvml.nvmlSystemGetCudaDriverVersion)
    return {
        "driver_version": None if driver is None else _text(driver),
        "cuda_driver_version": None if cuda is None else _cuda_version(int(cuda)),
    }


def _driver_present() -> bool:
    if not sys.platform.startswith("linux"):
        return True  # no cheap check elsewhere: let NVML itself say
    return any(os.path.exists(marker) for marker in _DRIVER_MARKERS)


def gpus() -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Describe every NVIDIA GPU NVML sees.

    NVML ignores ``CUDA_VISIBLE_DEVICES``, so all GPUs of the machine are listed; the
    environment capture records that variable.

    Returns:
        ``(gpus, nvml)``: one dict per GPU (index, name, uuid, memory_total_bytes,
        compute_capability, driver_version, cuda_driver_version, mig_mode as
        ``{"current", "pending"}`` or None where unsupported, and ``errors`` naming each
        query that failed), and ``{"available": bool, "reason": str | None}``. Never raises.
    """
    if not _driver_present():
        return [], {"available": False, "reason": "no NVIDIA driver found"}
    try:
        import pynvml
    except Exception as exc:
        return [], {"available": False, "reason": f"pynvml not importable: {_reason(exc)}"}
    try:
        pynvml.nvmlInit()
    except Exception as exc:
        return [], {"available": False, "reason": f"NVML init failed: {_reason(exc)}"}
    try:
        try:
            count = int(pynvml.nvmlDeviceGetCount())
        except Exception as exc:
            return [], {"available": False, "reason": f"NVML device count: {_reason(exc)}"}
        system = _system(pynvml)
        return [_gpu(pynvml, i, system) for i in range(count)], {
            "available": True,
            "reason": None,
        }
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass  # nothing left to release


def _version(module: Any) -> str | None:
    version = getattr(module, "__version__", None)
    return None if version is None else str(version)


def _torch(torch: Any) -> dict[str, Any]:
    info: dict[str, Any] = {"version": _version(torch)}
    errors: dict[str, str] = {}
    info["cuda"] = _query(errors, "cuda", lambda: torch.version.cuda)
    info["cudnn"] = _query(errors, "cudnn", lambda: torch.backends.cudnn.version())
    info["cuda_available"] = _query(errors, "cuda_available", lambda: torch.cuda.is_available())
    info["device_count"] = _query(errors, "device_count", lambda: torch.cuda.device_count())
    if errors:
        info["errors"] = errors
    return info


def frameworks() -> dict[str, Any]:
    """Versions of the ML frameworks the program has already imported.

    Returns:
        ``{"torch": {...} | None, "jax": {...} | None, "tensorflow": {...} | None}``;
        a framework not yet imported is None (it is never imported here).
    """
    result: dict[str, Any] = {"torch": None, "jax": None, "tensorflow": None}
    if (torch := imported("torch")) is not None:
        result["torch"] = _torch(torch)
    if (jax := imported("jax")) is not None:
        jaxlib = imported("jaxlib")
        result["jax"] = {
            "version": getattr(jax, "__version__", None),
            "jaxlib": getattr(jaxlib, "__version__", None),
        }
    if (tf := imported("tensorflow")) is not None:
        result["tensorflow"] = {"version": getattr(tf, "__version__", None)}
    return result


def capture_hardware() -> Captured:
    """Capture the machine a run executes on.

    Returns:
        Kind ``"hardware"``: ``os`` (system, release, version, machine), ``hostname``,
        ``cpu`` (model, logical, physical, usable), ``memory_bytes``, ``gpus``, ``nvml``
        (available, reason) and ``frameworks``. Never raises; what cannot be probed is None.
    """
    gpu_list, nvml = gpus()
    data: dict[str, Any] = {
        "os": _os(),
        "hostname": socket.gethostname(),
        "cpu": _cpu(),
        "memory_bytes": _memory_bytes(),
        "gpus": gpu_list,
        "nvml": nvml,
        "frameworks": frameworks(),
    }
    return Captured(kind="hardware", data=data)


class HardwareCapturer:
    """:class:`~mltrail.capture.base.Capturer` for hardware."""

    kind = "hardware"

    def available(self) -> bool:
        """Always true: without a GPU the capture still describes CPU and memory."""
        return True

    def capture(self) -> Captured:
        """Capture now; see :func:`capture_hardware`."""
        return capture_hardware()
