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

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
    from mltrail.api import Api
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


#: public name -> the module that defines it; loaded on first use (PEP 562), so that
#: ``import mltrail`` (and every ``mltrail.sub.module``, e.g. the CLI's fast paths) costs
#: almost nothing until the SDK is actually used
_LAZY = {
    "Api": "mltrail.api",
    "Run": "mltrail.run",
    **dict.fromkeys(
        (
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
        ),
        "mltrail._fluent",
    ),
    **dict.fromkeys(("MetricSummary", "Project", "RunRecord", "RunStatus"), "mltrail.entities"),
    **dict.fromkeys(
        (
            "DirtyWorkingTreeError",
            "FilterSyntaxError",
            "InvalidArgumentError",
            "MltrailError",
            "NotFoundError",
            "ParamConflictError",
            "RunFinishedError",
            "StoreError",
        ),
        "mltrail.errors",
    ),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mltrail' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups are plain module attributes
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
