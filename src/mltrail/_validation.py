"""Validation at the edges: names, metric values, steps, params and tags.

Every rule names the field and the limit in its message. Names are normalised to NFC so that
``é`` typed either way maps to one key, on writes and on every read that takes a key
(:func:`normalize_key`); case is kept (``lr`` and ``LR`` are distinct keys). Two spellings of
one key in one mapping, and nested keys that flatten onto a dotted one
(``{"a.b": 1, "a": {"b": 2}}``), are errors naming both, never a silent last-wins.
"""

from __future__ import annotations

import json
import numbers
import unicodedata
from collections.abc import Mapping
from typing import Any

from mltrail.errors import InvalidArgumentError

__all__ = [
    "MAX_CONFIG_DEPTH",
    "MAX_KEY_BYTES",
    "MAX_STEP",
    "MAX_VALUE_BYTES",
    "check_key",
    "check_metric_value",
    "check_param_value",
    "check_params",
    "check_step",
    "check_tag_value",
    "check_tags",
    "flatten",
    "flatten_params",
    "normalize_key",
    "show_path",
]

MAX_KEY_BYTES = 250
MAX_VALUE_BYTES = 64 * 1024
MAX_STEP = 2**63 - 1
#: How deeply a config may nest (SDK and REST alike); deeper is refused, never a RecursionError.
MAX_CONFIG_DEPTH = 32


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


def normalize_key(key: str) -> str:
    """The stored form of a metric/param/tag name typed by a reader: its NFC normal form.

    Every read that takes a key (``Api.history``, ``mltrail metrics``, the filter language,
    REST) goes through this, so a key typed in NFD finds what was logged in NFC.
    """
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

    numpy-style numbers become Python ``int``/``float`` (and ``str`` subclasses ``str``).
    Anything else is refused naming the key: a value with no stable JSON form would be stored
    as its ``repr`` (an address that differs every run). The SDK converts configs and params
    to plain data first (:func:`mltrail.capture.config.config_to_dict`).

    Raises:
        InvalidArgumentError: another type, a str over 64 KB, NUL, a lone surrogate.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _check_text(str(value), f"param {key!r} value", MAX_VALUE_BYTES)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    raise InvalidArgumentError(
        f"param {key!r}: value must be a str, number, bool or None, got {type(value).__name__}"
    )


def check_tag_value(key: str, value: object) -> str:
    """Validate a tag value: stored as a str of at most 64 KB."""
    if value is None:
        raise InvalidArgumentError(f"tag {key!r}: value must not be None")
    text = value if isinstance(value, str) else str(value)
    return _check_text(text, f"tag {key!r} value", MAX_VALUE_BYTES)


def show_path(path: tuple[Any, ...]) -> str:
    """A key path as ``['a']['b'][0]``: unambiguous where a dotted name is not."""
    return "".join(f"[{k!r}]" for k in path) or "(the top level)"


def _unique(names: dict[str, str], name: str, raw: str, what: str) -> None:
    """Refuse a second spelling of one key (NFC) within one mapping."""
    first = names.setdefault(name, raw)
    if first != raw:
        raise InvalidArgumentError(
            f"{what} names {first!r} and {raw!r} are the same name after NFC normalisation "
            f"({name!r}); give it once"
        )


def check_params(values: Mapping[Any, Any], what: str = "param") -> dict[str, Any]:
    """Validate a flat mapping of params: names (NFC, no two spellings of one), scalar values.

    Raises:
        InvalidArgumentError: a bad name or value, or one name given twice (names both).
    """
    out: dict[str, Any] = {}
    names: dict[str, str] = {}
    for key, value in values.items():
        name = check_key(key, what)
        _unique(names, name, key, what)
        out[name] = check_param_value(name, value)
    return out


def check_tags(values: Mapping[Any, Any]) -> dict[str, str]:
    """Validate tags: names as :func:`check_params` checks them, values as str of at most 64 KB.

    Raises:
        InvalidArgumentError: a bad name or value, or one name given twice (names both).
    """
    out: dict[str, str] = {}
    names: dict[str, str] = {}
    for key, value in values.items():
        name = check_key(key, "tag")
        _unique(names, name, key, "tag")
        out[name] = check_tag_value(name, value)
    return out


def flatten(nested: Mapping[Any, Any], prefix: str = "", *, what: str = "param") -> dict[str, Any]:
    """Flatten nested mappings into ``.``-joined keys (``{"a": {"b": 1}}`` → ``{"a.b": 1}``).

    An empty mapping stays a leaf value.

    Raises:
        InvalidArgumentError: two paths flatten to one key (``{"a.b": 1, "a": {"b": 2}}``;
            the message names both), a mapping contains itself, or nesting is deeper than
            ``MAX_CONFIG_DEPTH``.
    """
    out: dict[str, Any] = {}
    _flatten_into(out, {}, nested, (), prefix, frozenset({id(nested)}), what)
    return out


def _flatten_into(
    out: dict[str, Any],
    origin: dict[str, tuple[Any, ...]],
    node: Mapping[Any, Any],
    path: tuple[Any, ...],
    prefix: str,
    active: frozenset[int],
    what: str,
) -> None:
    if len(path) >= MAX_CONFIG_DEPTH:
        raise InvalidArgumentError(
            f"{what}s are nested deeper than {MAX_CONFIG_DEPTH} levels at {show_path(path)}"
        )
    for key, value in node.items():
        here = (*path, key)
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            if id(value) in active:
                raise InvalidArgumentError(
                    f"{what}s contain themselves: {show_path(here)} is an enclosing mapping "
                    "(a cycle cannot be stored)"
                )
            _flatten_into(out, origin, value, here, name + ".", active | {id(value)}, what)
        elif name in origin:
            raise InvalidArgumentError(
                f"{what} {name!r} is given twice: as {show_path(origin[name])} and as "
                f"{show_path(here)} (nested keys are joined with '.'); rename one"
            )
        else:
            out[name] = value
            origin[name] = here


def flatten_params(nested: Mapping[Any, Any], what: str = "param") -> dict[str, Any]:
    """Plain (JSON) config or params → flat params: the one rule for the SDK and REST.

    Nested mappings are flattened with ``.`` (:func:`flatten`), lists and empty mappings become
    their JSON text (``[1, 2]``, ``["a", "b"]``), names are checked and NFC-normalised.

    Raises:
        InvalidArgumentError: a collision, cycle or bad name/value; the message names the key.
    """
    flat = flatten(nested, what=what)
    for name, value in flat.items():
        if isinstance(value, list | tuple | Mapping):
            flat[name] = _json_text(name, value, what)
    return check_params(flat, what)


def _json_text(name: str, value: object, what: str) -> str:
    def refuse(item: object) -> None:
        raise InvalidArgumentError(
            f"{what} {name!r}: {type(item).__name__} has no stable JSON form"
        )

    try:
        return json.dumps(value, default=refuse)
    except ValueError as exc:  # json's "Circular reference detected"
        if isinstance(exc, InvalidArgumentError):
            raise
        raise InvalidArgumentError(f"{what} {name!r} contains itself (a cycle)") from None
