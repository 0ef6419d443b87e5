"""The sweep spec (``sweep.yaml``), validated at the edge.

A spec is plain data (YAML or a dict): what to run, how to search, what to optimise::

    program: train.py            # or command: [python, train.py, --epochs, "20", ${args}]
    method: tpe                  # grid | random | tpe | cmaes | gp | nsga2
    metric: {name: val/acc, goal: maximize}     # or a list of them (multi-objective)
    parameters:
      lr: {distribution: log_uniform, min: 1e-5, max: 1e-1}
      depth: {values: [2, 4, 8]}
    early_terminate: {type: hyperband, min_iter: 3, eta: 3}   # or asha / median
    run_cap: 50
    seed: 0

Every error is an :class:`~mltrail.errors.InvalidArgumentError` whose message names the
field (``parameters.lr.min``) and the rule it broke. Nothing here imports Optuna.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mltrail.errors import InvalidArgumentError

__all__ = [
    "DISTRIBUTIONS",
    "METHODS",
    "PRUNERS",
    "EarlyTerminate",
    "Metric",
    "Parameter",
    "SweepSpec",
    "load_spec",
    "parse_spec",
]

METHODS = ("grid", "random", "tpe", "cmaes", "gp", "nsga2")
PRUNERS = ("hyperband", "asha", "median")
DISTRIBUTIONS = (
    "constant",
    "categorical",
    "uniform",
    "log_uniform",
    "q_uniform",
    "int_uniform",
    "log_int_uniform",
)
GOALS = ("minimize", "maximize")
MAX_PARAMETERS = 256
MAX_VALUES = 10_000
MAX_RUN_CAP = 1_000_000
MAX_RETRY = 100
_KEYS = {
    "name",
    "program",
    "command",
    "method",
    "metric",
    "parameters",
    "early_terminate",
    "run_cap",
    "seed",
    "project",
    "max_retry",
    "heartbeat_s",
    "grace_s",
}
_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-/]{0,127}$")
_SCALAR = (str, int, float, bool, type(None))


@dataclass(frozen=True, slots=True)
class Metric:
    """What a trial is judged by: a key the program logs, and which way is better."""

    name: str
    goal: str = "minimize"


@dataclass(frozen=True, slots=True)
class Parameter:
    """One hyperparameter: a distribution with bounds, a list of values, or a constant."""

    name: str
    distribution: str
    min: float | None = None
    max: float | None = None
    q: float | None = None
    values: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class EarlyTerminate:
    """The pruner: ``hyperband``, ``asha`` or ``median``, with its resource bounds (steps)."""

    type: str
    min_iter: int = 1
    max_iter: int | None = None
    eta: int = 3
    startup_trials: int = 5


@dataclass(frozen=True, slots=True)
class SweepSpec:
    """A validated sweep spec. :meth:`to_dict` gives back the canonical form stored with the
    sweep (every default filled in)."""

    method: str
    metrics: tuple[Metric, ...]
    parameters: tuple[Parameter, ...]
    program: str | None = None
    command: tuple[str, ...] = ()
    early_terminate: EarlyTerminate | None = None
    run_cap: int | None = None
    seed: int | None = None
    project: str = "default"
    name: str = ""
    max_retry: int = 2
    heartbeat_s: int = 10
    grace_s: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def multi_objective(self) -> bool:
        """True when the sweep optimises more than one metric (Pareto front)."""
        return len(self.metrics) > 1

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain data (YAML/JSON), parseable again by :func:`parse_spec`."""
        d: dict[str, Any] = {"method": self.method}
        if self.name:
            d["name"] = self.name
        if self.program is not None:
            d["program"] = self.program
        if self.command:
            d["command"] = list(self.command)
        metrics = [asdict(m) for m in self.metrics]
        d["metric"] = metrics[0] if len(metrics) == 1 else metrics
        d["parameters"] = {p.name: _param_dict(p) for p in self.parameters}
        if self.early_terminate is not None:
            d["early_terminate"] = asdict(self.early_terminate)
        for key in ("run_cap", "seed", "grace_s"):
            if getattr(self, key) is not None:
                d[key] = getattr(self, key)
        d.update(project=self.project, max_retry=self.max_retry, heartbeat_s=self.heartbeat_s)
        return d


def _param_dict(p: Parameter) -> dict[str, Any]:
    d: dict[str, Any] = {"distribution": p.distribution}
    if p.values:
        d["values"] = list(p.values)
    for key in ("min", "max", "q"):
        if getattr(p, key) is not None:
            d[key] = getattr(p, key)
    return d


def load_spec(path: str | Path) -> SweepSpec:
    """Read and validate a YAML (or JSON) spec file.

    Raises:
        InvalidArgumentError: the file cannot be read or parsed, or the spec is invalid.
    """
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidArgumentError(f"sweep spec {path}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidArgumentError(f"sweep spec {path}: not valid YAML: {exc}") from None
    return parse_spec(data)


def parse_spec(data: Any) -> SweepSpec:
    """Validate plain data as a sweep spec.

    Args:
        data: A mapping as read from ``sweep.yaml`` (or a :class:`SweepSpec`, returned as is).

    Returns:
        The :class:`SweepSpec`.

    Raises:
        InvalidArgumentError: naming the first field that breaks a rule, and the rule.

    Example:
        >>> spec = parse_spec({"program": "train.py", "method": "random",
        ...     "metric": {"name": "loss"}, "parameters": {"lr": {"min": 0.0, "max": 1.0}}})
        >>> spec.parameters[0].distribution
        'uniform'
    """
    if isinstance(data, SweepSpec):
        return data
    if not isinstance(data, dict):
        raise InvalidArgumentError("sweep spec: the top level must be a mapping")
    unknown = sorted(set(map(str, data)) - _KEYS)
    if unknown:
        raise InvalidArgumentError(
            f"sweep spec: unknown field {unknown[0]!r}; the fields are {', '.join(sorted(_KEYS))}"
        )
    program, command = _program(data)
    method = _choice(data.get("method"), "method", METHODS, required=True)
    metrics = _metrics(data.get("metric"))
    params = _parameters(data.get("parameters"))
    early = _early_terminate(data.get("early_terminate"))
    if early is not None and len(metrics) > 1:
        raise InvalidArgumentError(
            "sweep spec: early_terminate: pruning needs a single metric, not a list"
        )
    if method == "cmaes" and len(metrics) > 1:
        raise InvalidArgumentError("sweep spec: method cmaes takes a single metric, not a list")
    if method == "grid":
        bad = [p.name for p in params if p.distribution not in ("categorical", "constant")]
        if bad:
            raise InvalidArgumentError(
                f"sweep spec: parameters.{bad[0]}: method grid needs `values` (or `value`) "
                f"for every parameter, not a {_distribution_of(params, bad[0])} distribution"
            )
    return SweepSpec(
        method=method,
        metrics=metrics,
        parameters=params,
        program=program,
        command=command,
        early_terminate=early,
        run_cap=_int(data.get("run_cap"), "run_cap", 1, MAX_RUN_CAP),
        seed=_int(data.get("seed"), "seed", 0, 2**32 - 1),
        project=_text(data.get("project", "default"), "project"),
        name=_text(data.get("name", ""), "name", empty=True),
        max_retry=_int(data.get("max_retry", 2), "max_retry", 0, MAX_RETRY) or 0,
        heartbeat_s=_int(data.get("heartbeat_s", 10), "heartbeat_s", 1, 3600) or 10,
        grace_s=_int(data.get("grace_s"), "grace_s", 1, 86_400),
    )


def _distribution_of(params: tuple[Parameter, ...], name: str) -> str:
    return next(p.distribution for p in params if p.name == name)


# -- fields -----------------------------------------------------------------------------------


def _program(data: dict[str, Any]) -> tuple[str | None, tuple[str, ...]]:
    program = data.get("program")
    command = data.get("command")
    if program is None and command is None:
        raise InvalidArgumentError("sweep spec: program or command is required")
    if program is not None:
        program = _text(program, "program")
    if command is None:
        return program, ()
    if not isinstance(command, list) or not command:
        raise InvalidArgumentError("sweep spec: command: must be a non-empty list of strings")
    for i, part in enumerate(command):
        if not isinstance(part, str | int | float) or isinstance(part, bool):
            raise InvalidArgumentError(f"sweep spec: command[{i}]: must be a string")
    if program is None and any("${program}" in str(p) for p in command):
        raise InvalidArgumentError("sweep spec: command uses ${program} but program is not set")
    return program, tuple(str(p) for p in command)


def _text(value: Any, where: str, *, empty: bool = False) -> str:
    if not isinstance(value, str) or (not value and not empty) or len(value) > 1000:
        raise InvalidArgumentError(
            f"sweep spec: {where}: must be a {'' if empty else 'non-empty '}string "
            f"of at most 1000 characters"
        )
    return value


def _choice(value: Any, where: str, allowed: tuple[str, ...], *, required: bool = False) -> str:
    if value is None and required:
        raise InvalidArgumentError(f"sweep spec: {where} is required (one of {', '.join(allowed)})")
    if value not in allowed:
        raise InvalidArgumentError(
            f"sweep spec: {where}: {value!r} is not one of {', '.join(allowed)}"
        )
    return str(value)


def _int(value: Any, where: str, lo: int, hi: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentError(f"sweep spec: {where}: must be an integer, not {value!r}")
    if not lo <= value <= hi:
        raise InvalidArgumentError(f"sweep spec: {where}: {value} is outside [{lo}, {hi}]")
    return value


def _number(value: Any, where: str) -> float:
    if isinstance(value, str):  # YAML 1.1 reads 1e-5 (no dot) as text
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgumentError(f"sweep spec: {where}: must be a number, not {value!r}")
    if not math.isfinite(value):
        raise InvalidArgumentError(f"sweep spec: {where}: must be finite, not {value!r}")
    return value


def _metrics(raw: Any) -> tuple[Metric, ...]:
    if raw is None:
        raise InvalidArgumentError("sweep spec: metric is required ({name: KEY, goal: ...})")
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise InvalidArgumentError("sweep spec: metric: the list is empty")
    out = []
    for i, item in enumerate(items):
        where = "metric" if not isinstance(raw, list) else f"metric[{i}]"
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, dict):
            raise InvalidArgumentError(f"sweep spec: {where}: must be a mapping {{name, goal}}")
        extra = sorted(set(item) - {"name", "goal"})
        if extra:
            raise InvalidArgumentError(f"sweep spec: {where}: unknown field {extra[0]!r}")
        name = _text(item.get("name"), f"{where}.name")
        goal = _choice(item.get("goal", "minimize"), f"{where}.goal", GOALS)
        out.append(Metric(name, goal))
    names = [m.name for m in out]
    if len(set(names)) != len(names):
        raise InvalidArgumentError("sweep spec: metric: a metric is named twice")
    return tuple(out)


def _parameters(raw: Any) -> tuple[Parameter, ...]:
    if not isinstance(raw, dict) or not raw:
        raise InvalidArgumentError("sweep spec: parameters: must be a non-empty mapping")
    if len(raw) > MAX_PARAMETERS:
        raise InvalidArgumentError(
            f"sweep spec: parameters: {len(raw)} parameters; the limit is {MAX_PARAMETERS}"
        )
    return tuple(_parameter(str(name), body) for name, body in raw.items())


def _parameter(name: str, body: Any) -> Parameter:
    where = f"parameters.{name}"
    if not _PARAM_NAME.match(name):
        raise InvalidArgumentError(
            f"sweep spec: {where}: a name starts with a letter or _ and holds letters, "
            "digits, _ . - / (at most 128 characters)"
        )
    if not isinstance(body, dict):
        if isinstance(body, _SCALAR):
            return Parameter(name, "constant", values=(body,))
        raise InvalidArgumentError(f"sweep spec: {where}: must be a mapping or a constant")
    allowed = {"distribution", "min", "max", "q", "values", "value"}
    extra = sorted(set(map(str, body)) - allowed)
    if extra:
        raise InvalidArgumentError(
            f"sweep spec: {where}: unknown field {extra[0]!r}; use {', '.join(sorted(allowed))}"
        )
    dist = body.get("distribution")
    if dist is None:
        dist = _infer_distribution(body, where)
    dist = _choice(dist, f"{where}.distribution", DISTRIBUTIONS)
    if dist == "constant":
        if "value" not in body or not isinstance(body["value"], _SCALAR):
            raise InvalidArgumentError(f"sweep spec: {where}.value: a constant needs a scalar")
        return Parameter(name, dist, values=(body["value"],))
    if dist == "categorical":
        return Parameter(name, dist, values=_values(body.get("values"), f"{where}.values"))
    return _ranged(name, dist, body, where)


def _infer_distribution(body: dict[str, Any], where: str) -> str:
    if "value" in body:
        return "constant"
    if "values" in body:
        return "categorical"
    if "min" in body and "max" in body:
        ints = all(
            isinstance(body[k], int) and not isinstance(body[k], bool) for k in ("min", "max")
        )
        return "int_uniform" if ints else "uniform"
    raise InvalidArgumentError(
        f"sweep spec: {where}: give `values`, `value`, or `min` and `max` (with a distribution)"
    )


def _values(raw: Any, where: str) -> tuple[Any, ...]:
    if not isinstance(raw, list) or not raw:
        raise InvalidArgumentError(f"sweep spec: {where}: must be a non-empty list")
    if len(raw) > MAX_VALUES:
        raise InvalidArgumentError(
            f"sweep spec: {where}: {len(raw)} values; the limit is {MAX_VALUES}"
        )
    for i, x in enumerate(raw):
        if not isinstance(x, _SCALAR):
            raise InvalidArgumentError(
                f"sweep spec: {where}[{i}]: must be a string, number, bool or null"
            )
        if isinstance(x, float) and not math.isfinite(x):
            raise InvalidArgumentError(f"sweep spec: {where}[{i}]: must be finite")
    if len({(type(x), x) for x in raw}) != len(raw):
        raise InvalidArgumentError(f"sweep spec: {where}: a value is listed twice")
    return tuple(raw)


def _ranged(name: str, dist: str, body: dict[str, Any], where: str) -> Parameter:
    for key in ("min", "max"):
        if key not in body:
            raise InvalidArgumentError(f"sweep spec: {where}.{key} is required for {dist}")
    lo, hi = _number(body["min"], f"{where}.min"), _number(body["max"], f"{where}.max")
    if lo >= hi:
        raise InvalidArgumentError(f"sweep spec: {where}.min: must be < max ({lo} >= {hi})")
    if dist in ("int_uniform", "log_int_uniform"):
        for key, x in (("min", lo), ("max", hi)):
            if not isinstance(x, int):
                raise InvalidArgumentError(f"sweep spec: {where}.{key}: {dist} needs an integer")
    if dist.startswith("log") and lo <= 0:
        raise InvalidArgumentError(f"sweep spec: {where}.min: {dist} needs min > 0, not {lo}")
    q = None
    if dist == "q_uniform":
        if "q" not in body:
            raise InvalidArgumentError(f"sweep spec: {where}.q is required for q_uniform")
        q = _number(body["q"], f"{where}.q")
        if not 0 < q <= hi - lo:
            raise InvalidArgumentError(f"sweep spec: {where}.q: must be in (0, max - min]")
    elif "q" in body:
        raise InvalidArgumentError(f"sweep spec: {where}.q: only q_uniform takes a step")
    return Parameter(name, dist, min=lo, max=hi, q=q)


def _early_terminate(raw: Any) -> EarlyTerminate | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise InvalidArgumentError("sweep spec: early_terminate: must be a mapping {type: ...}")
    allowed = {"type", "min_iter", "max_iter", "eta", "startup_trials"}
    extra = sorted(set(map(str, raw)) - allowed)
    if extra:
        raise InvalidArgumentError(f"sweep spec: early_terminate: unknown field {extra[0]!r}")
    kind = _choice(raw.get("type"), "early_terminate.type", PRUNERS)
    min_iter = _int(raw.get("min_iter", 1), "early_terminate.min_iter", 1, 10**9) or 1
    max_iter = _int(raw.get("max_iter"), "early_terminate.max_iter", 1, 10**9)
    if max_iter is not None and max_iter <= min_iter:
        raise InvalidArgumentError(
            f"sweep spec: early_terminate.max_iter: must be > min_iter ({max_iter} <= {min_iter})"
        )
    eta = _int(raw.get("eta", 3), "early_terminate.eta", 2, 100) or 3
    startup = _int(raw.get("startup_trials", 5), "early_terminate.startup_trials", 0, 10**6)
    return EarlyTerminate(kind, min_iter, max_iter, eta, startup or 0)
