"""Module-level functions over the calling thread's active run (``mltrail.log`` ...).

Each is the :class:`~mltrail.sdk.run.Run` method of the same name on
:func:`~mltrail.sdk.active.active_run`; without an active run they raise
:class:`~mltrail.errors.MltrailError` (``finish`` is a no-op).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mltrail.entities import RunStatus
from mltrail.sdk.active import active_run, require

if TYPE_CHECKING:
    import os
    from collections.abc import Mapping, Sequence
    from pathlib import Path

    from mltrail.artifacts.records import ArtifactVersion

__all__ = [
    "active_run",
    "finish",
    "log",
    "log_artifact",
    "log_params",
    "log_reference",
    "seed_everything",
    "set_tags",
    "use_artifact",
]


def log(data: Mapping[str, Any], step: int | None = None) -> None:
    """Log metrics to the active run (see :meth:`Run.log`)."""
    run = active_run() or require()
    run.log(data, step)


def log_params(params: Mapping[str, Any]) -> None:
    """Log params to the active run (see :meth:`Run.log_params`)."""
    require().log_params(params)


def set_tags(tags: Mapping[str, Any]) -> None:
    """Set tags on the active run (see :meth:`Run.set_tags`)."""
    require().set_tags(tags)


def log_artifact(
    path: str | os.PathLike[str],
    name: str | None = None,
    type: str = "dataset",
    aliases: Sequence[str] | str | None = None,
    metadata: Mapping[str, Any] | None = None,
    *,
    reference: bool = False,
) -> ArtifactVersion:
    """Log a file or directory as an artifact of the active run (see :meth:`Run.log_artifact`)."""
    return require().log_artifact(path, name, type, aliases, metadata, reference=reference)


def log_reference(
    target: str | os.PathLike[str],
    name: str | None = None,
    type: str = "dataset",
    aliases: Sequence[str] | str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> ArtifactVersion:
    """Record data by digest without copying it (see :meth:`Run.log_reference`)."""
    return require().log_reference(target, name, type, aliases, metadata)


def use_artifact(ref: str, root: str | os.PathLike[str] | None = None) -> Path:
    """Fetch an artifact and record it as an input of the active run (see
    :meth:`Run.use_artifact`)."""
    return require().use_artifact(ref, root)


def seed_everything(seed: int | None = None, deterministic: bool = False) -> dict[str, Any]:
    """Seed ``random``, NumPy, torch (+CUDA), TensorFlow and JAX, and record what was set.

    Args:
        seed: the seed; default ``MLTRAIL_SEED`` (``mltrail verify-determinism --seed``),
            else a fresh random seed, which is recorded.
        deterministic: also switch on deterministic kernels (torch deterministic
            algorithms, cuDNN flags, ``CUBLAS_WORKSPACE_CONFIG``, ``TF_DETERMINISTIC_OPS``).

    Returns:
        Exactly what was set: ``{"seed", "seeded", "deterministic", "switches"}``.
    """
    from mltrail.capture import seeds

    result = seeds.seed_everything(seed, deterministic)
    run = active_run()
    if run is not None:
        got = seeds.capture_seeds()
        run.recorder.state(got.kind, got.data, got.blobs)
    return result


def finish(status: RunStatus | str = RunStatus.FINISHED) -> None:
    """Finish the active run (see :meth:`Run.finish`); no-op without one."""
    run = active_run()
    if run is not None:
        run.finish(status)
