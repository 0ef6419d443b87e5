"""Plan the data: pointer data by digest (from the repository's cache or its data remotes) and
the artifacts the run used (pinned to the versions it got, looked up in the artifact storage).

The lookups themselves are in :mod:`mltrail.repro.data`; this module turns them into plan
lines and exports the artifact pins for the command.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltrail.repro.plan import state_doc

if TYPE_CHECKING:
    from mltrail.api import Api
    from mltrail.repro.data import DataItem
    from mltrail.repro.plan import Plan

__all__ = ["plan_data"]

_STATUS = {"cache": "restore", "remote": "restore", "external": "note"}


def plan_data(plan: Plan, api: Api, state: dict[str, Any]) -> None:
    """Add a line per recorded input to ``plan``, set ``plan.data`` and the artifact pins.

    Args:
        plan: The plan being made (its ``repo_root`` already planned).
        api: Where the run lives (its artifact storage is searched).
        state: The run's captured state (``data`` and ``inputs`` kinds).
    """
    from mltrail.repro.data import PIN_ENV, check_data, check_inputs, input_pins

    root = Path(plan.repo_root) if plan.repo_root and os.path.isdir(plan.repo_root) else None
    plan.data = check_data(state_doc(state, "data"), root)
    plan.data += check_inputs(state_doc(state, "inputs"), api.location)
    pins = input_pins(state_doc(state, "inputs"))
    if pins:
        import json

        plan.env_set[PIN_ENV] = json.dumps(pins, sort_keys=True)
    for item in plan.data:
        status = _STATUS.get(item.status, "missing")
        plan.add("data", item.path, status, _detail(item, status))


def _detail(item: DataItem, status: str) -> str:
    if item.source == "artifact":
        return item.detail if status != "restore" else f"{item.detail} ({item.where})"
    if item.status == "cache":
        return f"check out {item.digest} from the cache {item.where}, verified"
    if item.status == "remote":
        return f"pull {item.digest} from remote {item.where}, verified, then check out"
    return item.detail
