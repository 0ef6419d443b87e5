"""Text output of the ``mltrail data`` verbs, shared by the Typer commands and the fast path.

No Typer and no Rich here: the printers write through any object with Rich's
``print(text, *, style=None, end="\\n", markup=False)`` signature, either a Rich console
(the Typer commands) or :class:`PlainConsole` (the fast path of :mod:`mltrail.cli._entry`,
which must not pay for importing Typer, pydantic and Rich).
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any, Protocol, TextIO

if TYPE_CHECKING:
    from mltrail.data.ops import AddResult, CheckoutResult
    from mltrail.data.remotes import GcResult, TransferResult
    from mltrail.data.status import StatusReport
    from mltrail.data.verify import VerifyResult

__all__ = [
    "Printer",
    "PlainConsole",
    "fmt_size",
    "print_add",
    "print_checkout",
    "print_gc",
    "print_pull",
    "print_push",
    "print_status",
    "print_verify",
]

_STATE_STYLES = {
    "unchanged": "green",
    "modified": "yellow",
    "missing": "red",
    "not_in_cache": "red",
    "error": "red",
}
_ANSI = {"green": "32", "yellow": "33", "red": "31", "dim": "2", "bold": "1", "magenta": "35"}
_MAX_CHANGES = 20


class Printer(Protocol):
    """What the printers need: Rich's ``Console.print`` subset."""

    def print(  # noqa: D102
        self, *objects: Any, style: str | None = ..., end: str = ..., markup: bool | None = ...
    ) -> None: ...


class PlainConsole:
    """Writes text to a stream; ANSI colours only on a terminal (and not with ``NO_COLOR``)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        isatty = getattr(self.stream, "isatty", None)
        self.color = bool(
            isatty is not None
            and isatty()
            and "NO_COLOR" not in os.environ
            and os.environ.get("TERM") != "dumb"
        )

    def print(
        self, *objects: Any, style: str | None = None, end: str = "\n", markup: bool | None = None
    ) -> None:
        """Write ``objects`` (joined by spaces) in ``style``, then ``end``."""
        text = " ".join(str(o) for o in objects)
        if self.color and style:
            codes = ";".join(_ANSI[s] for s in style.split() if s in _ANSI)
            if codes:
                text = f"\x1b[{codes}m{text}\x1b[0m"
        self.stream.write(text + end)


def fmt_size(n: int | None) -> str:
    """Bytes for people: ``12 B``, ``4.0 KiB``, ``1.0 GiB``; ``?`` when unknown."""
    if n is None:
        return "?"
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def print_add(out: Printer, results: list[AddResult]) -> None:
    """One line per added path, then the ``git add`` hint when a pointer changed."""
    for r in results:
        what = f"{r.pointer.files} files, " if r.pointer.kind == "tree" else ""
        verb = "added" if r.changed else "unchanged"
        out.print(
            f"{verb}: {r.data_path} ({what}{fmt_size(r.pointer.size)}) -> {r.pointer_file}",
            markup=False,
        )
    files = sorted({r.pointer_file for r in results} | {g for r in results for g in r.gitignores})
    if any(r.changed for r in results):
        out.print(
            f"To track the changes with git, run:\n\n  git add {' '.join(files)}\n", markup=False
        )


def print_status(out: Printer, report: StatusReport) -> None:
    """Each tracked path's state, the changes inside directories, the unreadable pointers."""
    for e in report.entries:
        source = "" if e.source == "mltrail" else f" [{e.source}]"
        cache = "" if e.in_cache is not False or e.state == "not_in_cache" else " (not in cache)"
        out.print(f"{e.state:<12}", style=_STATE_STYLES.get(e.state), end="", markup=False)
        out.print(f" {e.data_path}{source}{cache}", markup=False)
        changes = e.changes or {}
        for kind, mark in (("added", "+"), ("removed", "-"), ("modified", "M")):
            items = changes.get(kind) or []
            for item in items[:_MAX_CHANGES]:
                out.print(f"    {mark} {item}", markup=False)
            if len(items) > _MAX_CHANGES:
                out.print(f"    ... and {len(items) - _MAX_CHANGES} more {kind}", markup=False)
        if e.detail:
            out.print(f"    {e.detail}", markup=False, style="dim")
    for err in report.errors:
        out.print(f"error: {err}", markup=False, style="red")
    if not report.entries and not report.errors:
        out.print("no data tracked (add some with `mltrail data add PATH`)", markup=False)


def print_checkout(out: Printer, result: CheckoutResult) -> None:
    """The paths written, or that nothing needed to be."""
    for path in result.updated:
        out.print(f"checked out: {path}", markup=False)
    if not result.updated:
        out.print("workspace already matches the pointers", markup=False)


def print_push(out: Printer, result: TransferResult) -> None:
    """What a push moved."""
    out.print(
        f"pushed {result.objects} objects ({fmt_size(result.bytes)}) to {result.remote}; "
        f"{result.skipped} already there",
        markup=False,
    )


def print_pull(out: Printer, result: TransferResult) -> None:
    """What a pull fetched, and the paths it checked out."""
    out.print(
        f"fetched {result.objects} objects ({fmt_size(result.bytes)}) from {result.remote}; "
        f"{result.skipped} already cached",
        markup=False,
    )
    for path in result.updated:
        out.print(f"checked out: {path}", markup=False)


def print_gc(out: Printer, result: GcResult) -> None:
    """What gc removed (each digest in a dry run), what it kept, temp files removed."""
    if result.dry_run:
        for digest in result.removed:
            out.print(digest, markup=False)
    verb = "would remove" if result.dry_run else "removed"
    temps = f"; {result.temps} stale temp files removed" if result.temps else ""
    where = "" if result.where == "cache" else f" from {result.where}"
    out.print(
        f"{verb} {len(result.removed)} objects ({fmt_size(result.bytes)}){where}; "
        f"kept {result.kept}{temps}",
        markup=False,
    )


def print_verify(out: Printer, result: VerifyResult) -> None:
    """One line per corrupt or missing object (digest, path, why), then the totals."""
    for p in result.corrupt:
        out.print(f"corrupt: {p.digest} at {p.path} ({p.detail})", style="red", markup=False)
    for p in result.missing:
        out.print(f"missing: {p.digest} at {p.path} ({p.detail})", style="red", markup=False)
    for err in result.errors:
        out.print(f"error: {err}", style="red", markup=False)
    note = "" if result.listed else " (the store cannot be listed: pointer data only)"
    summary = (
        f"{result.where}: {result.checked} objects verified ({fmt_size(result.bytes)}); "
        f"{len(result.corrupt)} corrupt, {len(result.missing)} missing{note}"
    )
    out.print(summary, style="green" if result.ok else "red", markup=False)
