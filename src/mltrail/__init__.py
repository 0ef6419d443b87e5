"""mltrail: track every training run, with everything it depended on, crash-safe.

Example:
    >>> import mltrail
    >>> with mltrail.init(project="mnist", config={"lr": 0.01}) as run:  # doctest: +SKIP
    ...     for step in range(100):
    ...         mltrail.log({"loss": 1.0 / (step + 1)})

Importing ``mltrail`` is light: the store's SQL driver, NumPy and everything heavy load on
the writer thread or inside the functions that need them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mltrail._fluent import (
    active_run,
    finish,
    init,
    log,
    log_artifact,
    log_params,
    log_reference,
    seed_everything,
    set_tags,
    use_artifact,
)
from mltrail.entities import MetricSummary, Project, RunRecord, RunStatus
from mltrail.errors import (
    DirtyWorkingTreeError,
    FilterSyntaxError,
    InvalidArgumentError,
    MltrailError,
    NotFoundError,
    ParamConflictError,
    RunFinishedError,
    StoreError,
)
from mltrail.run import Run

if TYPE_CHECKING:
    from mltrail.api import Api

__version__ = "0.1.0"

__all__ = [
    "Api",
    "DirtyWorkingTreeError",
    "FilterSyntaxError",
    "InvalidArgumentError",
    "MetricSummary",
    "MltrailError",
    "NotFoundError",
    "ParamConflictError",
    "Project",
    "Run",
    "RunFinishedError",
    "RunRecord",
    "RunStatus",
    "StoreError",
    "__version__",
    "active_run",
    "finish",
    "init",
    "log",
    "log_artifact",
    "log_params",
    "log_reference",
    "seed_everything",
    "set_tags",
    "use_artifact",
]


def __getattr__(name: str) -> Any:
    if name == "Api":
        from mltrail.api import Api

        return Api
    raise AttributeError(f"module 'mltrail' has no attribute {name!r}")
