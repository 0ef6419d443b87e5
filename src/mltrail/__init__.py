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

if TYPE_CHECKING:  # the same names as _PUBLIC (a test checks), for type checkers
    from mltrail.api import Api as Api
    from mltrail.entities import MetricSummary as MetricSummary
    from mltrail.entities import Project as Project
    from mltrail.entities import RunRecord as RunRecord
    from mltrail.entities import RunStatus as RunStatus
    from mltrail.errors import DirtyWorkingTreeError as DirtyWorkingTreeError
    from mltrail.errors import FilterSyntaxError as FilterSyntaxError
    from mltrail.errors import InvalidArgumentError as InvalidArgumentError
    from mltrail.errors import MltrailError as MltrailError
    from mltrail.errors import NotFoundError as NotFoundError
    from mltrail.errors import ParamConflictError as ParamConflictError
    from mltrail.errors import PolicyViolationError as PolicyViolationError
    from mltrail.errors import RunFinishedError as RunFinishedError
    from mltrail.errors import StoreError as StoreError
    from mltrail.errors import VersionConflictError as VersionConflictError
    from mltrail.sdk.fluent import active_run as active_run
    from mltrail.sdk.fluent import finish as finish
    from mltrail.sdk.fluent import log as log
    from mltrail.sdk.fluent import log_artifact as log_artifact
    from mltrail.sdk.fluent import log_params as log_params
    from mltrail.sdk.fluent import log_reference as log_reference
    from mltrail.sdk.fluent import seed_everything as seed_everything
    from mltrail.sdk.fluent import set_tags as set_tags
    from mltrail.sdk.fluent import use_artifact as use_artifact
    from mltrail.sdk.init import init as init
    from mltrail.sdk.models import load_model_ref as load_model_ref
    from mltrail.sdk.models import models as models
    from mltrail.sdk.models import register_model as register_model
    from mltrail.sdk.models import set_alias as set_alias
    from mltrail.sdk.run import Run as Run
    from mltrail.sweeps.inprocess import sweep as sweep

__version__ = "0.1.0"

#: The public face, in one place: name -> the module that defines it. ``__all__`` is made from
#: it, and each name loads on first use (PEP 562), so that ``import mltrail`` (and every
#: ``mltrail.sub.module``, e.g. the CLI's fast paths) costs almost nothing until the SDK is used.
_PUBLIC: dict[str, str] = {
    "Api": "mltrail.api",
    "Run": "mltrail.sdk.run",
    "init": "mltrail.sdk.init",
    "sweep": "mltrail.sweeps.inprocess",
    **dict.fromkeys(
        (
            "active_run",
            "finish",
            "log",
            "log_artifact",
            "log_params",
            "log_reference",
            "seed_everything",
            "set_tags",
            "use_artifact",
        ),
        "mltrail.sdk.fluent",
    ),
    **dict.fromkeys(
        ("load_model_ref", "models", "register_model", "set_alias"), "mltrail.sdk.models"
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
            "PolicyViolationError",
            "RunFinishedError",
            "StoreError",
            "VersionConflictError",
        ),
        "mltrail.errors",
    ),
}

__all__ = sorted([*_PUBLIC, "__version__"])


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'mltrail' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups are plain module attributes
    return value


def __dir__() -> list[str]:
    return list(__all__)
