"""What made a run fail: the exception, as data (state kind ``error``).

Recorded by the SDK when an exception leaves ``with mltrail.init(...)`` or reaches the
interpreter's top level, and by ``mltrail run`` from the traceback a wrapped Python program
printed on stderr. Pure functions: they describe, the caller records.

The document::

    {"type": "ValueError", "message": "bad shape", "where": "train.py:42 in step",
     "traceback": "Traceback (most recent call last): ...", "source": "sdk" | "stderr"}
"""

from __future__ import annotations

import re
import traceback as tb_mod
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import TracebackType

__all__ = ["ERROR_KIND", "ERROR_TAG", "describe_exception", "one_line", "parse_traceback"]

ERROR_KIND = "error"
#: the one-line form of the error, as a tag (runs tables show it on hover)
ERROR_TAG = "mltrail.error"
_MAX_TRACEBACK = 32 * 1024  # bytes of traceback text kept (the end, where the error is)
_MAX_MESSAGE = 4 * 1024
_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+)(?:, in (?P<func>.+))?$')
_LAST = re.compile(
    r"^(?P<type>[A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit|Warning)?)"
    r"(?::\s?(?P<msg>.*))?$"
)


def _clip(text: str, limit: int) -> str:
    """The end of ``text`` (at most ``limit`` chars), storable anywhere: no NUL, no lone
    surrogates (an exception message may hold either)."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
    return text if len(text) <= limit else "..." + text[-(limit - 3) :]


def describe_exception(
    exc: BaseException, tb: TracebackType | None = None, source: str = "sdk"
) -> dict[str, Any]:
    """The ``error`` document of an exception (its type, message, last frame, traceback)."""
    tb = tb if tb is not None else exc.__traceback__
    frames = tb_mod.extract_tb(tb) if tb is not None else []
    where = ""
    if frames:
        last = frames[-1]
        where = f"{last.filename}:{last.lineno} in {last.name}"
    text = "".join(tb_mod.format_exception(type(exc), exc, tb))
    kind = type(exc)
    name = (
        kind.__qualname__
        if kind.__module__ in ("builtins", "__main__")
        else (f"{kind.__module__}.{kind.__qualname__}")
    )
    return {
        "type": _clip(name, 200),
        "message": _clip(str(exc), _MAX_MESSAGE),
        "where": _clip(where, _MAX_MESSAGE),
        "traceback": _clip(text, _MAX_TRACEBACK),
        "source": source,
    }


def parse_traceback(lines: Sequence[str]) -> dict[str, Any] | None:
    """The ``error`` document of the last Python traceback in ``lines`` (stderr), if any.

    Recognises CPython's ``Traceback (most recent call last):`` block followed by frames and
    a final ``Type: message`` line; ``None`` when stderr does not end with one.
    """
    start = None
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].startswith("Traceback (most recent call last):"):
            start = i
            break
    if start is None:
        return None
    block = [ln.rstrip("\n") for ln in lines[start:]]
    where = ""
    last_line = ""
    for ln in block[1:]:
        m = _FRAME.match(ln)
        if m:
            where = f"{m['file']}:{m['line']}" + (f" in {m['func']}" if m["func"] else "")
        elif ln and not ln.startswith((" ", "\t")):
            last_line = ln
    m = _LAST.match(last_line)
    if not m:
        return None
    return {
        "type": m["type"],
        "message": _clip(m["msg"] or "", _MAX_MESSAGE),
        "where": where,
        "traceback": _clip("\n".join(block), _MAX_TRACEBACK),
        "source": "stderr",
    }


def one_line(doc: dict[str, Any]) -> str:
    """``ValueError: bad shape (train.py:42 in step)`` for tables, tooltips and diffs."""
    text = str(doc.get("type") or "error")
    if doc.get("message"):
        text += f": {str(doc['message']).splitlines()[0] if doc['message'] else ''}"
    if doc.get("where"):
        text += f" ({doc['where']})"
    return text
