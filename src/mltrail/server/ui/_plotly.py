"""plotly.js as the installed ``plotly`` package ships it, made to work under a strict CSP.

plotly.js injects CSS with ``<style>`` elements, which ``style-src 'self'`` blocks:

- its global rules go through ``addStyleRule``, which does nothing when the page already has
  an element ``#plotly.js-style-global.no-inline-styles``: the pages link our stylesheet
  under that id;
- bundled libraries (maplibre) add a ``<style id="<sha256>">`` once, unless an element with
  that id exists: the pages carry an empty ``<meta>`` with each such id.

:func:`stylesheet` collects both kinds of CSS from the script itself (so it follows the
installed version); the result is served from our origin as ``/ui/plotly-<version>.css``.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

__all__ = ["script_path", "style_guard_ids", "stylesheet", "version"]

_JS_STRING = r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\''
_RULES_START = re.compile(r'\{"X,X div":')
_RULE = re.compile(rf"({_JS_STRING})\s*:\s*({_JS_STRING})\s*([,}}])")
_GUARDED = re.compile(
    r'getElementById\("([0-9a-f]{64})"\)\)\{var (\w+)=document\.createElement\("style"\);'
    r"\2\.id=\"\1\",\2\.textContent=(" + _JS_STRING + r")"
)


@cache
def script_path() -> Path:
    """Where the installed ``plotly`` package keeps ``plotly.min.js``."""
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


@cache
def version() -> str:
    """The plotly.js version (from the script's banner; ``0`` if it has none)."""
    with script_path().open("rb") as f:
        head = f.read(200).decode("ascii", "replace")
    m = re.search(r"plotly\.js v([0-9][0-9A-Za-z.+-]*)", head)
    return m.group(1) if m else "0"


def _unquote(literal: str) -> str:
    return re.sub(r"\\(.)", lambda m: m.group(1), literal[1:-1])


def _global_rules(script: str) -> list[str]:
    start = _RULES_START.search(script)
    if start is None:
        return []
    rules: list[str] = []
    pos = start.start() + 1
    while (m := _RULE.match(script, pos)) is not None:
        # the same rewriting plotly.js applies before addStyleRule
        selector = re.sub(r"^,", " ,", _unquote(m.group(1)))
        selector = selector.replace("X", ".js-plotly-plot .plotly").replace("Y", ".plotly-notifier")
        rules.append(f"{selector}{{{_unquote(m.group(2))}}}")
        if m.group(3) == "}":
            break
        pos = m.end()
    return rules


def stylesheet(script: str) -> str:
    """All the CSS ``script`` (plotly.min.js) would inject inline, as one stylesheet."""
    parts = _global_rules(script)
    parts += [_unquote(m.group(3)) for m in _GUARDED.finditer(script)]
    return "\n".join(parts) + "\n"


@cache
def style_guard_ids() -> tuple[str, ...]:
    """Ids of the ``<style>`` elements bundled libraries add unless the id exists."""
    text = script_path().read_text("utf-8")
    return tuple(m.group(1) for m in _GUARDED.finditer(text))
