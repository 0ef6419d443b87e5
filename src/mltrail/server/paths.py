"""Client-supplied paths are logical names: checked, normalised, never trusted on a disk.

The server stores file bytes by content digest (:mod:`mltrail.server.filestore`); the path a
client gives is only a name in the ``run_files`` table. Still, a name that looks like an
escape (``..``, absolute, a drive, a UNC share, a backslash, a NUL, a leftover %-encoding) is
refused with :class:`~mltrail.errors.UnsafePathError` (400), the same on every OS, so no
reader of the name can be tricked later (a UI download, an export to a folder).
:func:`resolve_under` is the one way to turn a name into a path under a root, and it checks
the result even after resolving symlinks.
"""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path

from mltrail.errors import UnsafePathError

__all__ = ["MAX_PATH_BYTES", "MAX_SEGMENT_BYTES", "logical_path", "resolve_under"]

MAX_PATH_BYTES = 1000
MAX_SEGMENT_BYTES = 255
_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")
_DRIVE = re.compile(r"^[A-Za-z]:")


def _reject(raw: str, why: str) -> UnsafePathError:
    shown = raw if len(raw) <= 80 else raw[:77] + "..."
    return UnsafePathError(f"path {shown!r} {why}")


def logical_path(raw: object) -> str:
    """Check and NFC-normalise a client path such as ``logs/console.txt``.

    Accepted: ``/``-separated segments, none empty, ``.`` or ``..``; relative; no control
    characters, backslashes, drive letters, %-encodings or U+FFFD; at most 1,000 bytes in all
    and 255 per segment.

    Raises:
        UnsafePathError: the name is refused; the message says why.
    """
    if not isinstance(raw, str):
        raise UnsafePathError(f"path must be a string, got {type(raw).__name__}")
    if not raw:
        raise UnsafePathError("path must not be empty")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in raw):
        raise _reject(raw, "contains a control character (NUL, newline, ...)")
    try:
        size = len(raw.encode("utf-8"))
    except UnicodeEncodeError:
        raise _reject(raw, "contains a lone surrogate and is not valid Unicode") from None
    if size > MAX_PATH_BYTES:
        raise _reject(raw, f"is {size} bytes; the limit is {MAX_PATH_BYTES}")
    name = unicodedata.normalize("NFC", raw)
    if "\\" in name:
        raise _reject(raw, "contains a backslash; use / between folders")
    if name.startswith("/"):
        raise _reject(raw, "is absolute; give a path relative to the run")
    if _DRIVE.match(name):
        raise _reject(raw, "starts with a drive letter")
    if _PERCENT.search(name):
        raise _reject(raw, "contains a %-encoding; send the name decoded, encoded once")
    if "\ufffd" in name:
        raise _reject(raw, "contains U+FFFD (bytes that were not valid UTF-8)")
    for segment in name.split("/"):
        if segment in ("", ".", ".."):
            raise _reject(raw, "has an empty, '.' or '..' segment")
        if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
            raise _reject(raw, f"has a segment over {MAX_SEGMENT_BYTES} bytes")
    return name


def resolve_under(root: Path, raw: object) -> Path:
    """``root / logical_path(raw)``, proven to stay under ``root`` after resolving symlinks.

    Raises:
        UnsafePathError: the name is refused, or it resolves outside ``root``.
    """
    name = logical_path(raw)
    base = os.path.realpath(root)
    target = os.path.realpath(os.path.join(base, *name.split("/")))
    if os.path.commonpath([base, target]) != base or target == base:
        raise _reject(name, "resolves outside its root")
    return Path(target)
