"""GPU check for the system sampler: real NVML series while a matmul load runs, as JSON.

Run from the repository root on a machine with an NVIDIA GPU (``src/`` is put on the path;
needs psutil and nvidia-ml-py, and torch for the load): python3 bench/gpu_sampler_check.py
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from mltrail.capture.system import SystemSampler  # noqa: E402


def main() -> None:
    samples: list[dict[str, float]] = []
    stop = threading.Event()

    def load() -> None:
        try:
            import torch
        except ImportError:
            return
        if not torch.cuda.is_available():
            return
        a = torch.randn(8192, 8192, device="cuda")
        while not stop.is_set():
            (a @ a).sum().item()

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    time.sleep(2.0)  # let the load ramp up
    sampler = SystemSampler(samples.append, interval_s=0.5)
    t0 = time.process_time()
    sampler.start()
    time.sleep(3.0)
    sampler.stop()
    cpu_s = time.process_time() - t0
    stop.set()
    gpu_keys = sorted({k for s in samples for k in s if k.startswith("system/gpu/")})
    print(
        json.dumps(
            {
                "gpu_status": sampler.gpu_status,
                "disabled_queries": {k: str(v) for k, v in sampler.disabled_queries.items()},
                "error": repr(sampler.error) if sampler.error else None,
                "samples": len(samples),
                "gpu_keys": gpu_keys,
                "last_gpu_values": {k: samples[-1].get(k) for k in gpu_keys} if samples else {},
                "process_cpu_s_during_3s_incl_load": round(cpu_s, 3),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
