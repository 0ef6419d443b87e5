"""GPU check for capture: NVML hardware capture and raw GPU metric samples, as JSON.

Meant for a machine with a real NVIDIA GPU, run from the repository root without
installing mltrail (``src/`` is put on ``sys.path``); needs only the standard library plus
nvidia-ml-py (``pynvml``), and uses torch only if it is installed. It prints one JSON object:

- ``driver_markers``: which of the files capture looks for to decide a driver is present;
- ``capture_hardware``: :func:`mltrail.capture.hardware.capture_hardware` data, and its cost;
- ``frameworks_after_torch_import``: the torch section once torch is imported (version,
  CUDA, cuDNN, device count);
- ``samples``: 5 samples, 0.2 s apart, of raw NVML utilisation, memory, temperature and
  power per GPU, each query in its own ``try`` (an unsupported one reads as its error), with
  the cost of each sample in microseconds. With torch and CUDA, a matmul load runs on GPU 0
  during the samples so utilisation and power move.

Usage: PYTHONUNBUFFERED=1 python3 bench/gpu_capture_check.py [--no-torch]
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from mltrail.capture import hardware  # noqa: E402


def _read(call: Any, *args: Any) -> Any:
    try:
        return call(*args)
    except Exception as exc:
        return {"error": str(exc) or type(exc).__name__}


def sample(nvml: Any, count: int) -> dict[str, Any]:
    """One sample of utilisation, memory, temperature and power for every GPU."""
    t0 = time.perf_counter()
    gpus = []
    for i in range(count):
        handle = nvml.nvmlDeviceGetHandleByIndex(i)
        util = _read(nvml.nvmlDeviceGetUtilizationRates, handle)
        memory = _read(nvml.nvmlDeviceGetMemoryInfo, handle)
        temp = _read(nvml.nvmlDeviceGetTemperature, handle, nvml.NVML_TEMPERATURE_GPU)
        power = _read(nvml.nvmlDeviceGetPowerUsage, handle)
        gpus.append(
            {
                "index": i,
                "util_gpu_pct": util if isinstance(util, dict) else util.gpu,
                "util_memory_pct": util if isinstance(util, dict) else util.memory,
                "memory_used_bytes": memory if isinstance(memory, dict) else memory.used,
                "temperature_c": temp,
                "power_w": power if isinstance(power, dict) else power / 1000,
            }
        )
    return {"cost_us": round((time.perf_counter() - t0) * 1e6, 1), "gpus": gpus}


def raw_samples(n: int = 5, interval_s: float = 0.2) -> dict[str, Any]:
    """``n`` NVML samples, or why there are none."""
    try:
        import pynvml as nvml

        nvml.nvmlInit()
    except Exception as exc:
        return {"error": f"NVML unavailable: {exc}"}
    try:
        count = nvml.nvmlDeviceGetCount()
        samples = []
        for _ in range(n):
            samples.append(sample(nvml, count))
            time.sleep(interval_s)
        return {"gpu_count": count, "samples": samples}
    finally:
        nvml.nvmlShutdown()


def _load(stop: threading.Event) -> None:
    import torch

    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    while not stop.is_set():
        for _ in range(20):
            a = (a @ a).clamp_(-1, 1)
        torch.cuda.synchronize()


def main() -> None:
    use_torch = "--no-torch" not in sys.argv
    result: dict[str, Any] = {
        "python": sys.version.split()[0],
        "driver_markers": {m: os.path.exists(m) for m in hardware._DRIVER_MARKERS},
    }
    t0 = time.perf_counter()
    captured = hardware.capture_hardware()
    result["capture_hardware_ms"] = round((time.perf_counter() - t0) * 1000, 2)
    t0 = time.perf_counter()
    hardware.capture_hardware()
    result["capture_hardware_again_ms"] = round((time.perf_counter() - t0) * 1000, 2)
    result["capture_hardware"] = captured.data
    stop = threading.Event()
    loader: threading.Thread | None = None
    if use_torch:
        try:
            import torch

            result["frameworks_after_torch_import"] = hardware.frameworks()
            if torch.cuda.is_available():
                loader = threading.Thread(target=_load, args=(stop,), daemon=True)
                loader.start()
                time.sleep(1.0)  # let the load reach the GPU before sampling
        except Exception as exc:
            result["torch_error"] = f"{type(exc).__name__}: {exc}"
    result["load_running"] = loader is not None
    try:
        result["raw"] = raw_samples()
    finally:
        stop.set()
        if loader is not None:
            loader.join(timeout=30)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
