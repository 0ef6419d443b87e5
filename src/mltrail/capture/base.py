"""The ``Capturer`` seam: the record a capture returns, and the protocol behind it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = ["Captured", "Capturer", "blob_digest"]


@dataclass(frozen=True, slots=True)
class Captured:
    """One kind of captured state.

    Attributes:
        kind: Which state this is: ``"code"``, ``"environment"``, ``"hardware"``,
            ``"config"`` or ``"seeds"``.
        data: JSON-able description (dicts, lists, str, int, float, bool, None only).
        blobs: Large contents referenced from ``data`` by digest (``digest -> bytes``),
            for example an uncommitted diff or a lock file. The caller decides where to
            store them; every digest here equals :func:`blob_digest` of its content.
    """

    kind: str
    data: dict[str, Any]
    blobs: dict[str, bytes] = field(default_factory=dict)


def blob_digest(content: bytes) -> str:
    """The digest that names a blob.

    Args:
        content: The blob's bytes.

    Returns:
        ``"sha256:"`` followed by the lowercase hex SHA-256 of ``content``.
    """
    return "sha256:" + hashlib.sha256(content).hexdigest()


@runtime_checkable
class Capturer(Protocol):
    """Something that captures one kind of state.

    Contract:
        - ``kind`` names the state, and equals the ``kind`` of every :class:`Captured` it
          returns.
        - ``available()`` is cheap (no subprocess, no heavy import) and never raises; it says
          whether ``capture()`` can record anything useful here.
        - ``capture()`` never raises. A probe that fails is recorded as data (for example
          ``{"available": False, "reason": "..."}``). It never writes anywhere: the caller
          stores ``data`` and ``blobs``.
        - Both methods are safe to call from any thread; a capturer holds no mutable state
          shared between calls.
    """

    kind: str

    def available(self) -> bool:
        """Whether this capturer can record anything here (cheap, never raises)."""
        ...

    def capture(self) -> Captured:
        """Capture the state now (never raises).

        Returns:
            The captured state, its ``kind`` equal to ``self.kind``.
        """
        ...


def imported(name: str) -> Any:
    """The module ``name`` if the program has imported it, else None; never imports it.

    A module another thread is still importing is waited for (Python's per-module import
    lock), so a capture never reads a half-initialised torch.
    """
    import importlib
    import sys

    module = sys.modules.get(name)
    if module is None:
        return None
    if getattr(getattr(module, "__spec__", None), "_initializing", False):
        try:
            module = importlib.import_module(name)
        except Exception:  # the importing thread will see the error itself
            return None
    return module
