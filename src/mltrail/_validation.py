"""Validation at the edges: names, metric values, steps, params and tags.

Every rule names the field and the limit in its message. Names are normalised to NFC so that
``é`` typed either way maps to one key; case is kept (``lr`` and ``LR`` are distinct keys).
"""

from __future__ import annotations

import numbers
import unicodedata
from collections.abc import Mapping
from typing import Any

from mltrail.errors import InvalidArgumentError

__all__ = [
    "MAX_KEY_BYTES",
    "MAX_STEP",
    "MAX_VALUE_BYTES",
    "check_key",
    "check_metric_value",
    "check_param_value",
    "check_step",
    "check_tag_value",
    "flatten",
]

MAX_KEY_BYTES = 250
MAX_VALUE_BYTES = 64 * 1024
MAX_STEP = 2**63 - 1


def _check_text(text: str, what: str, limit: int) -> str:
    if "\x00" in text:
        raise InvalidArgumentError(f"{what} contains a NUL byte, which no store can hold")
    try:
        encoded = text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgumentError(
            f"{what} contains a lone surrogate and is not valid Unicode"
        ) from None
    if len(encoded) > limit:
        raise InvalidArgumentError(f"{what} is {len(encoded)} bytes; the limit is {limit} bytes")
    return text


def check_key(key: object, kind: str = "metric") -> str:
    """Validate and NFC-normalise a metric/param/tag name.

    Raises:
        InvalidArgumentError: not a str, empty, over 250 bytes, NUL, lone surrogate.
    """
    if not isinstance(key, str):
        raise InvalidArgumentError(f"{kind} name must be a str, got {type(key).__name__}")
    if not key:
        raise InvalidArgumentError(f"{kind} name must not be empty")
    _check_text(key, f"{kind} name {key[:40]!r}", MAX_KEY_BYTES)
    return unicodedata.normalize("NFC", key)


def check_metric_value(key: str, value: object) -> float:
    """Coerce a metric value to float64; NaN and ±inf are allowed.

    Accepts int, float and numpy/torch real scalars (anything with ``__float__`` that is a
    zero-dimensional number). Rejects bool, str, None, containers.
    """
    if type(value) is float:
        return value
    if isinstance(value, bool) or type(value).__name__ in ("bool_", "bool"):
        raise InvalidArgumentError(f"metric {key!r}: value must be a number, got a bool")
    if isinstance(value, numbers.Real):
        return float(value)
    if hasattr(value, "item") and hasattr(value, "__float__"):
        # numpy / torch zero-dimensional tensors: only real single-element values.
        try:
            shape = tuple(getattr(value, "shape", ()))
        except TypeError:
            shape = ()
        if shape in ((), (1,)):
            item = value.item()
            if isinstance(item, bool):
                raise InvalidArgumentError(f"metric {key!r}: value must be a number, got a bool")
            if isinstance(item, numbers.Real):
                return float(item)
    raise InvalidArgumentError(
        f"metric {key!r}: value must be a real number (int, float, numpy or torch scalar), "
        f"got {type(value).__name__}"
    )


def check_step(step: object) -> int:
    """Validate a step: an int in ``0 .. 2**63-1`` (not a bool)."""
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise InvalidArgumentError(f"step must be an int, got {type(step).__name__}")
    step = int(step)
    if step < 0 or step > MAX_STEP:
        raise InvalidArgumentError(f"step must be between 0 and 2**63-1, got {step}")
    return step


def check_param_value(key: str, value: object) -> str | int | float | bool | None:
    """Validate a param value: a JSON scalar; str values at most 64 KB.

    Other objects (paths, enums, lists) are stored by their ``str()``; numpy scalars become
    Python numbers.
    """
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    text = value if isinstance(value, str) else str(value)
    return _check_text(text, f"param {key!r} value", MAX_VALUE_BYTES)


def check_tag_value(key: str, value: object) -> str:
    """Validate a tag value: stored as a str of at most 64 KB."""
    if value is None:
        raise InvalidArgumentError(f"tag {key!r}: value must not be None")
    text = value if isinstance(value, str) else str(value)
    return _check_text(text, f"tag {key!r} value", MAX_VALUE_BYTES)


def flatten(nested: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested mappings into ``.``-joined keys (``{"a": {"b": 1}}`` → ``{"a.b": 1}``)."""
    out: dict[str, Any] = {}
    for key, value in nested.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out
