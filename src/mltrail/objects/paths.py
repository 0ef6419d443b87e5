"""Safe relative paths: the only way a manifest's path becomes a filesystem path.

Manifests (trees) may come from outside (a remote, a pull request), so every path in one is
untrusted: :func:`validate_relpath` refuses absolute paths, ``..`` and ``.`` components,
empty components, backslashes, NUL, and names too long for a filesystem;
:func:`safe_join` only ever returns a path lexically under its root; :func:`resolve_link`
resolves a symlink entry's target inside the tree's own namespace (through the tree's other
links) and refuses one that leaves the root.
"""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import TYPE_CHECKING

from mltrail.errors import UnsafePathError

if TYPE_CHECKING:
    import os
    from collections.abc import Mapping

__all__ = ["MAX_COMPONENT", "MAX_PATH", "resolve_link", "safe_join", "validate_relpath"]

MAX_COMPONENT = 255  # bytes, as ext4/xfs/apfs allow
MAX_PATH = 4096
_MAX_LINK_HOPS = 40  # as Linux's MAXSYMLINKS


def _show(path: object) -> str:
    text = repr(path)
    return text if len(text) <= 200 else text[:200] + "...'"


def validate_relpath(path: str, *, what: str = "path") -> str:
    """Return ``path`` if it is a safe, normalised, relative posix path; else raise.

    Raises:
        UnsafePathError: naming the path and what is wrong with it.
    """
    if not isinstance(path, str):
        raise UnsafePathError(f"{what}: expected a string, got {type(path).__name__}")
    if not path:
        raise UnsafePathError(f"{what}: empty path")
    if "\x00" in path:
        raise UnsafePathError(f"{what}: {_show(path)} contains a NUL byte")
    if "\\" in path:
        raise UnsafePathError(f"{what}: {_show(path)} contains a backslash")
    if path.startswith("/"):
        raise UnsafePathError(f"{what}: {_show(path)} is absolute")
    try:
        encoded = path.encode("utf-8")
    except UnicodeEncodeError:
        raise UnsafePathError(f"{what}: {_show(path)} is not valid UTF-8") from None
    if len(encoded) > MAX_PATH:
        raise UnsafePathError(f"{what}: {_show(path)} is longer than {MAX_PATH} bytes")
    for part in path.split("/"):
        if part in ("", ".", ".."):
            kind = "an empty" if not part else f"a {part!r}"
            raise UnsafePathError(f"{what}: {_show(path)} has {kind} component")
        if len(part.encode("utf-8")) > MAX_COMPONENT:
            raise UnsafePathError(
                f"{what}: {_show(path)} has a component longer than {MAX_COMPONENT} bytes"
            )
    return path


def safe_join(root: str | os.PathLike[str], relpath: str) -> Path:
    """``root / relpath`` after :func:`validate_relpath`: always lexically under ``root``."""
    return Path(root, validate_relpath(relpath))


def resolve_link(link_path: str, target: str, links: Mapping[str, str]) -> list[str]:
    """Resolve the symlink entry ``link_path -> target`` inside the tree; return its components.

    ``links`` maps the tree's other symlink entries (path -> target), through which the
    resolution goes as the kernel would. The result is the target's path relative to the
    root, as components (empty for the root itself).

    Raises:
        UnsafePathError: the target is absolute, contains NUL, loops, or leaves the root.
    """
    if not isinstance(target, str) or not target:
        raise UnsafePathError(f"symlink {_show(link_path)}: empty target")
    if "\x00" in target or "\\" in target:
        raise UnsafePathError(f"symlink {_show(link_path)}: target {_show(target)} is malformed")
    hops = 0

    def walk(base: list[str], text: str) -> list[str]:
        nonlocal hops
        if text.startswith("/"):
            raise UnsafePathError(f"symlink {_show(link_path)}: target {_show(target)} is absolute")
        out = list(base)
        for part in text.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if not out:
                    raise UnsafePathError(
                        f"symlink {_show(link_path)} -> {_show(target)} points outside the root"
                    )
                out.pop()
                continue
            out.append(part)
            here = "/".join(out)
            if here in links:
                hops += 1
                if hops > _MAX_LINK_HOPS:
                    raise UnsafePathError(f"symlink {_show(link_path)}: too many levels of links")
                out = walk(out[:-1], links[here])
        return out

    parent = posixpath.dirname(link_path)
    return walk(parent.split("/") if parent else [], target)
