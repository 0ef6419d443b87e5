"""What a trial is made of: its command line, its environment, and how it ended.

Parameters reach the program three ways: as command-line arguments (``--name=value``, or
``name=value`` for Hydra through the ``${args_no_hyphens}`` macro), as
``MLTRAIL_SWEEP_PARAMS`` (JSON) in its environment, and as the run's config (params).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mltrail.errors import InvalidArgumentError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mltrail.sweeps.spec import SweepSpec

__all__ = [
    "TrialResult",
    "build_command",
    "format_value",
    "sweep_params_from_env",
    "trial_env",
]

#: trial numbers and ids the program sees
ENV_SWEEP = "MLTRAIL_SWEEP_ID"
ENV_TRIAL = "MLTRAIL_SWEEP_TRIAL"
ENV_PARAMS = "MLTRAIL_SWEEP_PARAMS"


@dataclass(frozen=True, slots=True)
class TrialResult:
    """One trial as it ended.

    Attributes:
        number: Optuna's trial number.
        run_id: The mltrail run that was the trial (None if it never started).
        state: ``finished``, ``pruned`` or ``failed``.
        values: The metric values told to Optuna (finished trials).
        params: The parameters it ran with.
        steps: The metric steps reported to the pruner.
        reason: Why a failed trial failed.
        duration_s: Wall time of the trial, agent included.
        program_s: Wall time of the program alone (from its start to its exit).
        command: The program's command line.
    """

    number: int
    run_id: str | None
    state: str
    values: list[float] | None
    params: dict[str, Any]
    steps: int = 0
    reason: str = ""
    duration_s: float = 0.0
    command: list[str] = field(default_factory=list)
    program_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        from mltrail.entities import json_safe

        out: dict[str, Any] = json_safe(
            {
                "number": self.number,
                "run_id": self.run_id,
                "state": self.state,
                "values": self.values,
                "params": self.params,
                "steps": self.steps,
                "reason": self.reason,
                "duration_s": round(self.duration_s, 4),
                "program_s": round(self.program_s, 4),
                "command": self.command,
            }
        )
        return out


def format_value(value: Any) -> str:
    """A parameter value as text on a command line (``repr`` for floats: it round-trips)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def build_command(spec: SweepSpec, params: Mapping[str, Any]) -> list[str]:
    """The trial's argv: ``command`` with its macros expanded, else
    ``[python, program, --name=value ...]``.

    Macros (W&B's): ``${interpreter}``/``${env}`` (this Python), ``${program}``,
    ``${args}`` (``--name=value`` each), ``${args_no_hyphens}`` (``name=value``: Hydra
    overrides), ``${args_json}`` (one JSON argument). A command without an ``${args...}``
    macro gets ``--name=value`` arguments appended.
    """
    args = [f"--{k}={format_value(v)}" for k, v in params.items()]
    plain = [f"{k}={format_value(v)}" for k, v in params.items()]
    if not spec.command:
        assert spec.program is not None
        return [sys.executable, spec.program, *args]
    out: list[str] = []
    placed = False
    for part in spec.command:
        if part == "${args}":
            out.extend(args)
            placed = True
        elif part == "${args_no_hyphens}":
            out.extend(plain)
            placed = True
        elif part == "${args_json}":
            out.append(json.dumps(dict(params)))
            placed = True
        else:
            out.append(
                part.replace("${interpreter}", sys.executable)
                .replace("${env}", sys.executable)
                .replace("${program}", spec.program or "")
            )
    if not placed:
        out.extend(args)
    if not out or not out[0]:
        raise InvalidArgumentError("sweep spec: command: the program is empty")
    return out


def trial_env(sweep_id: str, number: int, params: Mapping[str, Any]) -> dict[str, str]:
    """The variables a trial's program gets on top of the agent's environment."""
    return {
        ENV_SWEEP: sweep_id,
        ENV_TRIAL: str(number),
        ENV_PARAMS: json.dumps(dict(params), sort_keys=True),
    }


def sweep_params_from_env(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The parameters of the trial this process runs (``{}`` outside a sweep).

    Example:
        >>> from mltrail.sweeps import sweep_params_from_env
        >>> sweep_params_from_env({"MLTRAIL_SWEEP_PARAMS": '{"lr": 0.1}'})
        {'lr': 0.1}
    """
    raw = (os.environ if env is None else env).get(ENV_PARAMS, "")
    if not raw:
        return {}
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise InvalidArgumentError(f"{ENV_PARAMS}: expected a JSON object")
    return value
