"""Plan the environment and the machine: the recorded packages (this interpreter's differences,
or a virtual environment rebuilt from the frozen requirements), the Python version, a
container or Nix shell, and this machine's GPUs and CPU against the recorded ones."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from mltrail.errors import MltrailError
from mltrail.repro.plan import capture_error, listed

if TYPE_CHECKING:
    from mltrail.api import Api
    from mltrail.repro.plan import Plan

__all__ = ["current_hardware", "plan_environment", "plan_hardware"]


def plan_environment(plan: Plan, api: Api, doc: dict[str, Any] | None) -> None:
    """The package, Python and container lines; sets the plan's packages and requirements.

    Args:
        plan: The plan being made (its ``env_mode`` decides current or rebuild).
        api: Where the run lives (the requirements blob is read from it).
        doc: The run's ``environment`` state.
    """
    if doc is None or capture_error(doc) is not None:
        why = "not recorded" if doc is None else f"capture failed: {capture_error(doc)}"
        plan.add("environment", "packages", "missing", f"the environment was {why}")
        return
    plan.packages = {str(k): str(v) for k, v in (doc.get("packages") or {}).items()}
    py = doc.get("python") or {}
    plan.python_version = py.get("version")
    plan.requirements_digest = doc.get("requirements")
    if plan.env_mode == "current":
        _plan_current(plan)
    else:
        _plan_rebuild(plan, api)
    here = _python_here()
    if plan.python_version and plan.python_version != here:
        plan.add(
            "environment",
            "python",
            "differs",
            f"the run used Python {plan.python_version}; this machine runs {here}",
        )
    _note_isolation(plan, doc)


def _python_here() -> str:
    return ".".join(map(str, sys.version_info[:3]))


def _plan_current(plan: Plan) -> None:
    """This interpreter: every package whose version differs from the record."""
    from mltrail.capture.environment import installed_packages
    from mltrail.repro.environment import package_changes

    plan.package_changes = package_changes(plan.packages, installed_packages())
    changes = [c.describe() for c in plan.package_changes]
    detail = f"this interpreter ({sys.executable}, Python {_python_here()})"
    if changes:
        plan.add(
            "environment",
            "packages",
            "differs",
            f"{detail}: {len(changes)} package(s) differ from the record: {listed(changes)}",
        )
    else:
        plan.add(
            "environment",
            "packages",
            "restore",
            f"{detail}: all {len(plan.packages)} recorded packages at their versions",
        )


def _plan_rebuild(plan: Plan, api: Api) -> None:
    """A fresh virtual environment, when the frozen requirements are readable."""
    from mltrail.repro.environment import find_uv

    readable = False
    if plan.requirements_digest:
        try:
            api.blob(str(plan.requirements_digest))
            readable = True
        except MltrailError:
            readable = False
    if not readable:
        plan.add(
            "environment",
            "packages",
            "missing",
            "the frozen requirements were not recorded or are not readable: cannot rebuild",
        )
        return
    tool = "uv" if find_uv() else "python -m venv + pip"
    plan.add(
        "environment",
        "packages",
        "restore",
        f"a fresh virtual environment with {len(plan.packages)} packages at their "
        f"recorded versions ({tool}); packages no index provides are reported",
    )


def _note_isolation(plan: Plan, doc: dict[str, Any]) -> None:
    """A note when the run was in a container or a Nix shell this process is not in."""
    from mltrail.capture.environment import _container, _nix

    here_env = {"container": _container(), "nix": _nix()}
    for part in ("container", "nix"):
        if doc.get(part) and doc.get(part) != here_env[part]:
            info = ", ".join(f"{k}={v}" for k, v in doc[part].items())
            plan.add(
                "environment",
                part,
                "note",
                f"the run was in a {part} ({info}): not re-created, run this inside it",
            )


# -- hardware -------------------------------------------------------------------------------


def current_hardware() -> tuple[list[dict[str, Any]], dict[str, Any], str | None]:
    """This machine's GPUs (NVML), NVML's status, and the CPU model."""
    from mltrail.capture.hardware import _cpu, gpus

    found, nvml = gpus()
    return found, nvml, _cpu().get("model")


def _gpu_text(g: dict[str, Any]) -> str:
    return (
        f"{g.get('name')} (driver {g.get('driver_version')}, CUDA {g.get('cuda_driver_version')})"
    )


def plan_hardware(plan: Plan, doc: dict[str, Any] | None) -> None:
    """Lines for a GPU model, count, driver or CPU model that differs from the record.

    Args:
        plan: The plan being made.
        doc: The run's ``hardware`` state.
    """
    if doc is None or capture_error(doc) is not None:
        plan.add("hardware", "machine", "note", "the original machine was not recorded")
        return
    gpus_here, nvml, cpu_here = current_hardware()
    recorded = [g for g in doc.get("gpus") or [] if isinstance(g, dict)]
    _plan_gpus(plan, recorded, gpus_here, nvml)
    cpu = (doc.get("cpu") or {}).get("model")
    if cpu and cpu_here and cpu != cpu_here:
        plan.add(
            "hardware",
            "cpu",
            "differs",
            f"{cpu} there, {cpu_here} here (vectorised math may round differently)",
        )


def _plan_gpus(
    plan: Plan,
    recorded: list[dict[str, Any]],
    here: list[dict[str, Any]],
    nvml: dict[str, Any],
) -> None:
    if recorded and not here:
        plan.add(
            "hardware",
            "gpu",
            "differs",
            f"the original ran with {len(recorded)} GPU(s): {_gpu_text(recorded[0])}; this "
            f"machine has none ({nvml.get('reason') or 'no GPU'}): GPU code falls back or fails",
        )
    elif recorded and here:
        a = [(g.get("name"), g.get("driver_version")) for g in recorded]
        b = [(g.get("name"), g.get("driver_version")) for g in here]
        if [n for n, _ in a] != [n for n, _ in b]:
            plan.add(
                "hardware",
                "gpu",
                "differs",
                f"the original GPU model differs: {_gpu_text(recorded[0])} × {len(recorded)} "
                f"there, {_gpu_text(here[0])} × {len(here)} here: kernels and "
                "rounding may differ",
            )
        elif a != b:
            plan.add(
                "hardware",
                "gpu driver",
                "differs",
                f"same GPU model, driver {recorded[0].get('driver_version')} there, "
                f"{here[0].get('driver_version')} here",
            )
    elif here and not recorded:
        plan.add(
            "hardware",
            "gpu",
            "differs",
            f"the original ran without a GPU; this machine has {_gpu_text(here[0])}",
        )
