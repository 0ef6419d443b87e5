"""GPU check of ``mltrail reproduce``'s verdicts: default vs deterministic CUDA kernels.

Runs ``examples/repro_torch.py`` on CUDA twice with ``seed_everything(seed,
deterministic=True)`` and twice with the same seed and default kernels, compares each pair
with :func:`mltrail.repro.compare.compare_runs` (every metric point, bit for bit, then
within ``--rtol``/``--atol``) and prints one JSON object: the verdicts (typically
``identical`` for deterministic kernels, ``within-tolerance`` or ``diverged`` for the
default ones, whose atomic adds in embedding backward, ``index_add_`` and ``scatter_add_``
sum in arbitrary order), where the default runs first differ and by how much, and the
training wall time of both modes (the cost of deterministic mode).

Needs torch with CUDA, numpy and mltrail's dependencies; mltrail itself is taken from this
working tree when it is not installed (``src/`` is put on the path). The runs go to a
throwaway store in a temporary folder (``--store`` to keep them).

    python bench/gpu_repro_check.py [--steps 300] [--device cuda]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "repro_torch.py"

try:
    import mltrail  # noqa: F401
except ImportError:  # a working tree, not installed
    sys.path.insert(0, str(ROOT / "src"))


def _run_example(store: Path, args: argparse.Namespace, deterministic: bool) -> dict[str, Any]:
    cmd = [sys.executable, str(EXAMPLE), "--seed", str(args.seed), "--device", args.device]
    cmd += ["--steps", str(args.steps), "--batch", str(args.batch), "--dim", str(args.dim)]
    cmd += ["--vocab", str(args.vocab), "--length", str(args.length), "--project", "gpu-check"]
    if deterministic:
        cmd.append("--deterministic")
    env = {
        **os.environ,
        "MLTRAIL_STORE": str(store),
        "MLTRAIL_SYSTEM_METRICS_S": "0",
        "MLTRAIL_ALLOW_DIRTY": "1",
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH", "")) if p
        ),
    }
    env.pop("CUBLAS_WORKSPACE_CONFIG", None)  # seed_everything(deterministic=True) sets it
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    wall = time.perf_counter() - started
    match = re.search(r"logged run (\w+)", done.stdout)
    if done.returncode != 0 or match is None:
        raise SystemExit(
            f"{' '.join(cmd)} failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}"
        )
    return {"run_id": match.group(1), "process_s": round(wall, 3)}


def _pair(api: Any, runs: list[dict[str, Any]], rtol: float, atol: float) -> dict[str, Any]:
    from mltrail.repro.compare import compare_runs

    outcome = compare_runs(api, runs[0]["run_id"], runs[1]["run_id"], rtol, atol)
    train_s = [float(api.run(r["run_id"]).tags["train_seconds"]) for r in runs]
    key = next((k for k in outcome.keys if k.key == "train/loss"), None)
    return {
        "verdict": outcome.verdict,
        "summary": outcome.summary(),
        "first_difference": outcome.first_difference and outcome.first_difference.to_dict(),
        "first_divergence": outcome.first_divergence and outcome.first_divergence.to_dict(),
        "max_loss_gap": None if key is None else key.max_gap,
        "runs": [r["run_id"] for r in runs],
        "train_seconds": train_s,
        "process_seconds": [r["process_s"] for r in runs],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--vocab", type=int, default=50_000)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rtol", type=float, default=1e-5)
    parser.add_argument("--atol", type=float, default=1e-8)
    parser.add_argument("--store", type=Path, default=None, help="keep the runs here")
    args = parser.parse_args()

    import torch

    from mltrail.api import Api

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: this check needs a GPU")
    with tempfile.TemporaryDirectory(prefix="mltrail-gpu-check-") as tmp:
        store = args.store.resolve() if args.store else Path(tmp) / "store"
        modes: dict[str, dict[str, Any]] = {}
        for name, deterministic in (("deterministic", True), ("default", False)):
            runs = [_run_example(store, args, deterministic) for _ in range(2)]
            modes[name] = _pair(Api(store), runs, args.rtol, args.atol)
        hardware = Api(store).state(modes["default"]["runs"][0]).get("hardware") or {}
    det = statistics.mean(modes["deterministic"]["train_seconds"])
    default = statistics.mean(modes["default"]["train_seconds"])
    gpus = [g.get("name") for g in hardware.get("gpus") or []]
    result = {
        "device": args.device,
        "gpu": gpus[0] if gpus else None,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "steps": args.steps,
        "model": {k: getattr(args, k) for k in ("batch", "dim", "vocab", "length")},
        "rtol": args.rtol,
        "atol": args.atol,
        "deterministic": modes["deterministic"],
        "default": modes["default"],
        "told_apart": modes["deterministic"]["verdict"] == "identical"
        and modes["default"]["verdict"] != "identical",
        "train_seconds_mean": {"deterministic": round(det, 4), "default": round(default, 4)},
        "deterministic_cost": round(det / default - 1.0, 4) if default > 0 else None,
    }
    from mltrail.entities import json_safe

    print(json.dumps(json_safe(result), indent=2, allow_nan=False, default=str))


if __name__ == "__main__":
    main()
