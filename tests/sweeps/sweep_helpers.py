"""Helpers shared by the sweep tests (imported by name: tests/sweeps is on sys.path)."""

from __future__ import annotations


def spec(**changes: object) -> dict[str, object]:
    """A small sweep spec over train_prog.py (x in [-4, 6], depth in {1, 2, 4})."""
    base: dict[str, object] = {
        "program": "train_prog.py",
        "method": "tpe",
        "metric": {"name": "loss", "goal": "minimize"},
        "parameters": {
            "x": {"distribution": "uniform", "min": -4.0, "max": 6.0},
            "depth": {"values": [1, 2, 4]},
        },
        "run_cap": 4,
        "seed": 7,
        "heartbeat_s": 1,
        "grace_s": 3,
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}
