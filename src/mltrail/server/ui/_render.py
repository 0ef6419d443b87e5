"""The UI's Jinja environment and the filters its templates use.

Autoescaping is on for every template, so user text (names, params, tags, console lines) is
always escaped. :func:`visible` goes further for text a user could use to mislead: bidi
overrides (U+202E), zero-width characters and other invisible controls are shown as a
marked ``U+XXXX`` badge instead of silently reordering or hiding what is displayed.
"""

from __future__ import annotations

import json
import unicodedata
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from markupsafe import Markup, escape

from mltrail.formatting import fmt_bytes, fmt_duration, fmt_float, fmt_time
from mltrail.server.ui import _plotly

if TYPE_CHECKING:
    import jinja2

__all__ = [
    "TEMPLATE_DIR",
    "environment",
    "fmt_value",
    "order_ident",
    "path_segment",
    "visible",
]

TEMPLATE_DIR = Path(__file__).parent / "templates"

#: Invisible characters that can change how text reads: bidi controls and zero-width marks.
_MARKED = frozenset(
    [0x061C, 0x200B, 0x200C, 0x200D, 0x200E, 0x200F, 0x2060, 0xFEFF]
    + list(range(0x202A, 0x202F))
    + list(range(0x2066, 0x206A))
)


def _needs_mark(text: str, i: int) -> bool:
    """Whether ``text[i]`` is invisible or direction-changing (a ZWJ inside emoji is not)."""
    ch = text[i]
    if ch in "\t\n":
        return False
    if (
        ord(ch) == 0x200D
        and 0 < i < len(text) - 1
        and unicodedata.category(text[i - 1]) == unicodedata.category(text[i + 1]) == "So"
    ):
        return False  # an emoji sequence (family, flags): shown as the glyph it forms
    return ord(ch) in _MARKED or unicodedata.category(ch) in ("Cc", "Cf", "Cs")


def visible(value: Any) -> Markup:
    """``value`` as escaped HTML with invisible and direction-changing characters marked.

    Each such character becomes ``<span class="cc" title="NAME">U+XXXX</span>`` so a name
    holding ``U+202E`` cannot display reversed, and a zero-width joiner cannot hide.
    """
    text = "" if value is None else str(value)
    marks = {i for i in range(len(text)) if _needs_mark(text, i)}
    if not marks:
        return escape(text)
    out: list[str] = []
    for i, ch in enumerate(text):
        if i in marks:
            name = unicodedata.name(ch, "control character")
            out.append(f'<span class="cc" title="{escape(name)}">U+{ord(ch):04X}</span>')
        else:
            out.append(str(escape(ch)))
    return Markup("".join(out))


def fmt_value(value: Any) -> str:
    """A param, config or metric value for a cell: floats with 6 significant digits."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return fmt_float(value)
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def fmt_iso(ms: int | None) -> str:
    """Epoch milliseconds as an ISO 8601 UTC timestamp (for ``title`` and ``datetime``)."""
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


def order_ident(column: str) -> str:
    """A column id (``params.lr``, ``metrics.a b``, ``created``) as an order-by identifier.

    Keys the filter language cannot read bare are quoted with backticks (doubled inside).
    """
    kind, _, key = column.partition(".")
    if not key:
        return column
    from mltrail.store.search.parser import _BARE_KEY

    if _BARE_KEY.fullmatch(key):
        return column
    return f"{kind}.`{key.replace('`', '``')}`"


def path_segment(value: Any) -> str:
    """``value`` percent-encoded for one URL path segment (``/`` included)."""
    return quote(str(value), safe="")


def to_json(value: Any) -> str:
    """Compact JSON for a ``data-*`` attribute (escaped by autoescape when rendered)."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False, default=str)


def _diff_value(value: Any) -> str:
    from mltrail.server.ui._run_view import diff_value

    return diff_value(value)


@cache
def environment() -> jinja2.Environment:
    """The shared Jinja environment (autoescape on, undefined names fail loudly)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        visible=visible,
        value=fmt_value,
        time=fmt_time,
        iso=fmt_iso,
        duration=fmt_duration,
        num=fmt_float,
        bytes=fmt_bytes,
        tojson_attr=to_json,
        order_ident=order_ident,
        seg=path_segment,
        diffvalue=_diff_value,
    )
    env.globals["plotly_version"] = _plotly.version()
    env.globals["plotly_guards"] = _plotly.style_guard_ids()
    return env
