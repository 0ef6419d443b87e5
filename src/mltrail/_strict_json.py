"""Strict JSON for what comes from the network (REST bodies, the batch wire header).

Python's :func:`json.loads` accepts three things that then mislead silently:

- a number outside float64 (``1e309``) becomes ``inf``;
- bare ``NaN``, ``Infinity`` and ``-Infinity`` (not JSON at all) become floats;
- an object that repeats a key keeps the last value.

:func:`loads` refuses each with :class:`JsonValueError` naming the place
(``body.metrics.0.value``). It parses once, at about the speed of :func:`json.loads` (a Python
call per object and per float literal; a 500 KB ``/log`` body takes ~20 ms either way), and
looks for the place only when something was refused. Numbers too small for float64 round to
0.0 or a subnormal, as IEEE 754 rounding does; they are accepted.
"""

from __future__ import annotations

import json
import math
from typing import Any

from mltrail.errors import JsonValueError

__all__ = ["JsonValueError", "loads"]


class _Refused:
    """Stands in for a value that was refused, until its place is known."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


class _RepeatedKey(dict[str, Any]):
    """An object that repeated ``key`` (kept as a dict so parsing can go on)."""

    __slots__ = ("key",)
    key: str


def loads(data: bytes | str, where: str = "body", *, nonfinite: bool = False) -> Any:
    """Parse JSON, refusing numbers outside float64, bare NaN/Infinity and repeated keys.

    Args:
        data: the JSON text (UTF-8 bytes or str).
        where: the name of the whole document in messages (``body``, ``header``).
        nonfinite: read bare ``NaN``/``Infinity``/``-Infinity`` as floats (the batch wire
            header: Python's encoder writes them) instead of refusing them.

    Returns:
        The parsed value, as :func:`json.loads` gives it.

    Raises:
        JsonValueError: a refused value or repeated key; ``field`` names its place.
        json.JSONDecodeError, UnicodeDecodeError, RecursionError: not JSON at all (as
            :func:`json.loads` raises them).
    """
    refused = False

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal refused
        obj = dict(items)
        if len(obj) == len(items):
            return obj
        refused = True
        seen: set[str] = set()
        out = _RepeatedKey(obj)
        for key, _ in items:
            if key in seen:
                out.key = key
                break
            seen.add(key)
        return out

    def number(text: str) -> Any:
        nonlocal refused
        value = float(text)
        if math.isinf(value):
            refused = True
            return _Refused(
                f"number {text[:40]} is outside the float64 range (the largest is "
                "1.7976931348623157e308)"
            )
        return value

    def constant(name: str) -> Any:
        nonlocal refused
        refused = True
        return _Refused(
            f'bare {name} is not JSON; where a non-finite value is allowed, send "{name}"'
        )

    value = json.loads(
        data,
        object_pairs_hook=pairs,
        parse_float=number,
        parse_constant=float if nonfinite else constant,
    )
    if refused:
        _raise_first(value, where)
    return value


def _raise_first(value: Any, where: str) -> None:
    """Raise for the first refused value (in document order); iterative: no depth limit."""
    stack: list[tuple[Any, tuple[Any, ...]]] = [(value, ())]
    while stack:
        node, path = stack.pop()
        field = ".".join([where, *map(str, path)])
        if isinstance(node, _Refused):
            raise JsonValueError(field, node.reason)
        if isinstance(node, _RepeatedKey):
            raise JsonValueError(
                field, f"duplicate key {node.key!r} (a JSON object must not repeat a key)"
            )
        if isinstance(node, dict):
            stack.extend((x, (*path, k)) for k, x in reversed(node.items()))
        elif isinstance(node, list):
            stack.extend((node[i], (*path, i)) for i in range(len(node) - 1, -1, -1))
