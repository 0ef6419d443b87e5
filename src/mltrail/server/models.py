"""Request and response bodies of the REST API (pydantic; they make the OpenAPI spec).

Requests are strict: unknown fields, wrong JSON types, bools where numbers go are 422 with
the field's location. Names and values go through :mod:`mltrail._validation`, so REST and the
SDK accept and refuse the same things. Responses are documented here and built from the
records' ``to_dict()`` (non-finite floats as ``"NaN"``/``"Infinity"``/``"-Infinity"``).
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

from mltrail import _validation as v

__all__ = [
    "ErrorBody",
    "FileOut",
    "FilesOut",
    "HealthOut",
    "IngestOut",
    "LogBody",
    "LogOut",
    "MetricPointIn",
    "PatchRunBody",
    "PositionOut",
    "ProjectsOut",
    "RunCreateBody",
    "RunIdOut",
    "RunOut",
    "RunsPage",
    "SeriesOut",
]

MAX_INT64 = 2**63 - 1
MAX_CONFIG_DEPTH = v.MAX_CONFIG_DEPTH

#: A float JSON cannot hold travels as one of these strings.
NonFinite = Literal["NaN", "Infinity", "-Infinity"]
ParamIn = StrictStr | StrictBool | StrictInt | StrictFloat | None
Int64 = Annotated[StrictInt, Field(ge=0, le=MAX_INT64)]
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_VALUE_SCHEMA: dict[str, Any] = {
    "anyOf": [{"type": "number"}, {"type": "string", "enum": list(_NON_FINITE)}],
    "description": "a float; NaN and infinities as strings",
}


def _check_depth(value: Any, limit: int = MAX_CONFIG_DEPTH) -> None:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            raise ValueError(f"nested deeper than {limit} levels")
        if isinstance(item, dict):
            stack.extend((x, depth + 1) for x in item.values())
        elif isinstance(item, list):
            stack.extend((x, depth + 1) for x in item)


def _check_params(values: dict[str, Any]) -> dict[str, Any]:
    return v.check_params(values)


def _check_tags(values: dict[str, str]) -> dict[str, str]:
    return v.check_tags(values)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RunCreateBody(_Strict):
    """``POST /api/v1/runs``: a new run (status running)."""

    project: StrictStr
    name: StrictStr | None = None
    params: dict[str, ParamIn] = Field(default_factory=dict)
    tags: dict[str, StrictStr] = Field(default_factory=dict)
    config: dict[str, Any] = Field(
        default_factory=dict, description="nested; flattened into params (a.b)"
    )
    heartbeat_s: float = Field(
        300.0,
        gt=0,
        le=7 * 86400,
        description="the run reads as crashed after 3 intervals without a log call",
    )
    user: StrictStr = ""
    host: StrictStr = ""
    command: StrictStr = ""

    @field_validator("project")
    @classmethod
    def _project(cls, value: str) -> str:
        return v.check_key(value, "project")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return None if value is None else v.check_key(value, "run name")

    @field_validator("params")
    @classmethod
    def _params(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _check_params(value)

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_tags(value)

    @field_validator("config")
    @classmethod
    def _config(cls, value: dict[str, Any]) -> dict[str, Any]:
        _check_depth(value)
        v.flatten_params(value)  # the SDK's rule: collisions, names, values
        return value

    @field_validator("user", "host")
    @classmethod
    def _short(cls, value: str) -> str:
        return v._check_text(value, "user/host", v.MAX_KEY_BYTES)

    @field_validator("command")
    @classmethod
    def _command(cls, value: str) -> str:
        return v._check_text(value, "command", v.MAX_VALUE_BYTES)


class PatchRunBody(_Strict):
    """``PATCH /api/v1/runs/{run_id}``: end a run."""

    status: Literal["finished", "failed", "killed", "pruned"]
    end_ms: Int64 | None = None


class MetricPointIn(_Strict):
    """One metric point of a JSON ``/log`` call."""

    key: StrictStr
    value: Annotated[Any, WithJsonSchema(_VALUE_SCHEMA)]
    step: Int64
    timestamp_ms: Int64 | None = None

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        return v.check_key(value)

    @field_validator("value")
    @classmethod
    def _value(cls, value: Any, info: ValidationInfo) -> float:
        key = info.data.get("key", "?")
        if isinstance(value, str):
            if value in _NON_FINITE:
                return _NON_FINITE[value]
            raise ValueError(
                f"metric {key!r}: value must be a number or one of "
                f"'NaN', 'Infinity', '-Infinity'; got a string"
            )
        if value is None or isinstance(value, dict | list):
            raise ValueError(f"metric {key!r}: value must be a number, got {type(value).__name__}")
        return v.check_metric_value(key, value)


class LogBody(_Strict):
    """``POST /api/v1/runs/{run_id}/log``: simple JSON logging (at most 10,000 points)."""

    metrics: list[MetricPointIn] = Field(default_factory=list)
    params: dict[str, ParamIn] = Field(default_factory=dict)
    tags: dict[str, StrictStr] = Field(default_factory=dict)

    @field_validator("params")
    @classmethod
    def _params(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _check_params(value)

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_tags(value)


# -- responses -------------------------------------------------------------------------------

FloatOut = float | NonFinite
ParamOut = str | bool | int | float | None


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorBody(BaseModel):
    """Every error: ``{"error": {"code", "message", "field"?}}``."""

    error: ErrorDetail


class HealthOut(BaseModel):
    status: Literal["ok"]
    version: str


class ProjectOut(BaseModel):
    project_id: str
    name: str
    created_ms: int
    run_count: int


class ProjectsOut(BaseModel):
    projects: list[ProjectOut]


class MetricSummaryOut(BaseModel):
    key: str
    last: FloatOut
    last_step: int
    last_timestamp_ms: int
    min: FloatOut
    max: FloatOut
    count: int


class RunOut(BaseModel):
    """A run, as ``RunRecord.to_dict()`` makes it."""

    run_id: str
    project: str
    name: str
    status: Literal["running", "finished", "failed", "killed", "crashed", "pruned"]
    created_ms: int
    end_ms: int | None
    heartbeat_ms: int | None
    user: str
    host: str
    command: str
    params: dict[str, ParamOut]
    tags: dict[str, str]
    config: dict[str, Any]
    metrics: dict[str, MetricSummaryOut]


class RunsPage(BaseModel):
    runs: list[RunOut]
    next_page_token: str | None


class RunIdOut(BaseModel):
    run_id: str


class LogOut(BaseModel):
    points: int
    params: int
    tags: int


class IngestOut(BaseModel):
    applied: bool
    position: int
    param_conflicts: dict[str, list[ParamOut]]


class PositionOut(BaseModel):
    position: int


class SeriesOut(BaseModel):
    """A metric series: downsampled buckets (``points=N``) or a raw page (``raw=1``)."""

    key: str
    downsampled: bool
    steps: list[int]
    timestamps: list[int]
    values: list[FloatOut]
    min: list[FloatOut] | None = None
    max: list[FloatOut] | None = None
    next_offset: int | None = None


class ConsoleLineOut(BaseModel):
    timestamp_ms: int
    stream: str
    text: str


class ConsoleOut(BaseModel):
    lines: list[ConsoleLineOut]


class FileOut(BaseModel):
    path: str
    digest: str
    size: int
    created_ms: int | None = None


class FilesOut(BaseModel):
    files: list[FileOut]
