"""How param values are stored: text, a type code, and a number for numeric compares."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mltrail.entities import ParamValue

__all__ = ["decode_param", "encode_param"]


def encode_param(value: ParamValue) -> tuple[str, str, float | None]:
    """``(text, vtype, number)`` columns for a param value.

    vtype: ``s`` str, ``i`` int, ``f`` float, ``b`` bool, ``n`` null. ``number`` is set for ints
    and finite-or-infinite floats (NaN has none) so that numeric filters use an index.
    """
    if value is None:
        return "null", "n", None
    if isinstance(value, bool):
        return ("true" if value else "false"), "b", None
    if isinstance(value, int):
        return str(value), "i", float(value) if abs(value) < 2**1023 else None
    if isinstance(value, float):
        return json.dumps(value), "f", (None if value != value else value)
    return str(value), "s", None


def decode_param(text: str, vtype: str) -> ParamValue:
    """Inverse of :func:`encode_param`."""
    if vtype == "s":
        return text
    if vtype == "i":
        return int(text)
    if vtype == "f":
        return float(text)  # float() reads NaN / Infinity / -Infinity too
    if vtype == "b":
        return text == "true"
    return None
