"""Frozen records returned by stores and the read API.

Records are immutable snapshots (``Run`` is the live handle; ``RunRecord`` is what a store
returns). Each has ``to_dict`` / ``from_dict`` for JSON output.
"""

from __future__ import annotations

import enum
import math
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "MetricSummary",
    "ParamValue",
    "Project",
    "RunRecord",
    "RunStatus",
    "json_safe",
]

ParamValue = str | int | float | bool | None


class RunStatus(enum.StrEnum):
    """Lifecycle state of a run."""

    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    KILLED = "killed"
    CRASHED = "crashed"
    PRUNED = "pruned"  # a sweep's pruner stopped the trial (early termination)

    def is_finished(self) -> bool:
        """True for every state a run cannot leave by itself."""
        return self is not RunStatus.RUNNING

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Project:
    """A named group of runs."""

    project_id: str
    name: str
    created_ms: int
    run_count: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Project:
        return cls(**d)


def _json_float(x: float | None) -> float | str | None:
    if x is None or math.isfinite(x):
        return x
    return "NaN" if math.isnan(x) else ("Infinity" if x > 0 else "-Infinity")


def json_safe(x: Any) -> Any:
    """``x`` with every non-finite float spelled as a string, so strict JSON can carry it."""
    if isinstance(x, float):
        return _json_float(x)
    if isinstance(x, dict):
        return {k: json_safe(y) for k, y in x.items()}
    if isinstance(x, list | tuple):
        return [json_safe(y) for y in x]
    return x


def _from_json_float(x: float | str | None) -> float | None:
    return float(x) if isinstance(x, str) else x


@dataclass(frozen=True, slots=True)
class MetricSummary:
    """Per-key summary of a metric series: the point at the highest step, min, max, count.

    ``last`` is the value at the highest step (ties: the latest logged). ``min``/``max``
    ignore NaN and are NaN when every value is NaN.
    """

    key: str
    last: float
    last_step: int
    last_timestamp_ms: int
    min: float
    max: float
    count: int

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("last", "min", "max"):
            d[k] = _json_float(d[k])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MetricSummary:
        d = dict(d)
        for k in ("last", "min", "max"):
            d[k] = _from_json_float(d[k])
        return cls(**d)


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A snapshot of one run as stored.

    ``status`` is the effective status: a run still marked running whose heartbeat is older
    than three heartbeat intervals is reported ``crashed``, with ``end_ms`` = last heartbeat.
    """

    run_id: str
    project: str
    name: str
    status: RunStatus
    created_ms: int
    end_ms: int | None
    heartbeat_ms: int | None
    user: str
    host: str
    command: str
    params: dict[str, ParamValue] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, MetricSummary] = field(default_factory=dict)

    @property
    def duration_ms(self) -> int | None:
        """Wall time from creation to end (or last heartbeat), if known."""
        end = self.end_ms if self.end_ms is not None else self.heartbeat_ms
        return None if end is None else end - self.created_ms

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; non-finite floats become ``"NaN"``/``"Infinity"`` strings."""
        return {
            "run_id": self.run_id,
            "project": self.project,
            "name": self.name,
            "status": self.status.value,
            "created_ms": self.created_ms,
            "end_ms": self.end_ms,
            "heartbeat_ms": self.heartbeat_ms,
            "user": self.user,
            "host": self.host,
            "command": self.command,
            "params": json_safe(dict(self.params)),
            "tags": dict(self.tags),
            "config": json_safe(self.config),
            "metrics": {k: m.to_dict() for k, m in self.metrics.items()},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunRecord:
        """Inverse of :meth:`to_dict`; keys it does not know (newer output) are ignored."""
        d = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        d["status"] = RunStatus(d["status"])
        d["metrics"] = {k: MetricSummary.from_dict(m) for k, m in d.get("metrics", {}).items()}
        return cls(**d)
