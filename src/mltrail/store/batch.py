"""The store's input contract: a batch, the unit a store applies atomically and idempotently.

A batch is what the writer cut from a spool between two byte offsets, decoded into columns.
``(source, start, end)`` identify it: a store remembers, per source, the offset it has
applied up to, so applying the same batch twice has no effect.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from mltrail.entities import ParamValue, RunStatus

__all__ = ["Batch", "BatchResult", "MetricSeries", "RunCreate", "StatusChange"]


@dataclass(frozen=True, slots=True)
class MetricSeries:
    """Points of one metric key as NumPy columns.

    In a :class:`Batch` they are in logging order (steps may repeat or go back); read back
    from a store (``metric_history``) they are ordered by ``(step, timestamp)``, ties in
    logging order, and ``key`` names the metric.
    """

    steps: npt.NDArray[np.int64]
    timestamps: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]
    key: str = ""

    def __len__(self) -> int:
        return len(self.steps)


@dataclass(frozen=True, slots=True)
class RunCreate:
    """Everything known when a run is created."""

    project: str
    name: str
    created_ms: int
    heartbeat_s: float
    user: str = ""
    host: str = ""
    command: str = ""
    config: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunCreate:
        keys = cls.__dataclass_fields__
        return cls(**{k: v for k, v in d.items() if k in keys})


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A status transition. ``end_ms=None`` with CRASHED means "at the last heartbeat".

    ``only_if_running`` makes the change conditional (crash recovery must never overwrite a
    status the run reached by itself).
    """

    status: RunStatus
    end_ms: int | None
    only_if_running: bool = False


@dataclass(slots=True)
class Batch:
    """Events of one run, decoded and grouped; applied by a store in one transaction."""

    run_id: str
    source: str | None = None
    start: int = 0
    end: int = 0
    create: RunCreate | None = None
    resume_ms: int | None = None
    params: dict[str, ParamValue] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, MetricSeries] = field(default_factory=dict)
    heartbeat_ms: int | None = None
    status: StatusChange | None = None
    state: dict[str, dict[str, Any]] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)
    console: list[tuple[int, str, str]] = field(default_factory=list)
    #: move the run to this project (created when missing): a process attached to a
    #: ``mltrail run`` wrapper that names its own project with ``init(project=...)``
    project: str | None = None

    @property
    def batch_id(self) -> str:
        """A stable id: the source and the byte range it covers."""
        return f"{self.source}@{self.start}-{self.end}"

    @property
    def point_count(self) -> int:
        """Number of metric points in the batch."""
        return sum(len(c) for c in self.metrics.values())

    def is_empty(self) -> bool:
        """True when applying the batch would change nothing but the ingest position."""
        return not (
            self.create
            or self.resume_ms
            or self.params
            or self.tags
            or self.metrics
            or self.heartbeat_ms is not None
            or self.status
            or self.state
            or self.blobs
            or self.console
            or self.project is not None
        )


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What a store did with a batch.

    Attributes:
        applied: False when the batch had already been applied (a no-op retry).
        param_conflicts: params not applied because the run already had a different value,
            as ``key -> (stored, offered)``.
    """

    applied: bool
    param_conflicts: dict[str, tuple[ParamValue, ParamValue]] = field(default_factory=dict)
