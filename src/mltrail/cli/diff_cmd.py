"""``mltrail diff RUN_A RUN_B``: what changed between two runs, grouped by kind."""

from __future__ import annotations

import json
import math
import re
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mltrail.cli._common import (
    JsonOption,
    StoreOption,
    cli_errors,
    fmt_float,
    open_api,
    print_json,
    stdout_console,
)

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from mltrail.diff import Change, KindDiff, RepoDiff, RunDiff

__all__ = ["diff", "print_diff"]

_SHA = re.compile(r"^[0-9a-f]{40}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_FILES_SHOWN = 50


def diff(
    run_a: Annotated[
        str, typer.Argument(metavar="RUN_A", help="The first run (id or unambiguous prefix).")
    ],
    run_b: Annotated[
        str, typer.Argument(metavar="RUN_B", help="The second run: values read A → B.")
    ],
    show_all: Annotated[
        bool, typer.Option("--all", help="Also compare the system/... metrics.")
    ] = False,
    as_json: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """Show what changed between two runs, kind by kind.

    Code, config, data, environment, hardware, seeds and outcome (metric summaries side by
    side); a kind with no difference collapses into one line.
    """
    from mltrail.diff import diff_runs

    with cli_errors():
        result = diff_runs(open_api(store), run_a, run_b, include_system=show_all)
    if as_json:
        print_json(result.to_dict())
        return
    print_diff(stdout_console(), result)


def print_diff(console: Console, result: RunDiff) -> None:
    """Print a :class:`~mltrail.diff.RunDiff` for people: a heading and changes per kind.

    Args:
        console: Where to print.
        result: The comparison.
    """
    from rich.text import Text

    for side, r in (("A", result.run_a), ("B", result.run_b)):
        line = Text(f"{side}  ", style="bold")
        line.append(r.run_id, style="cyan").append(f"  {r.name}  ").append(r.project, "dim")
        console.print(line)
    if result.identical:
        console.print(Text("no differences in any recorded kind", style="green"))
    for kind in result.kinds.values():
        _print_kind(console, kind)


def _print_kind(console: Console, kind: KindDiff) -> None:
    from rich.text import Text

    if kind.identical:
        n = len(kind.metrics)
        parts = [f"{n} metric{'s' if n != 1 else ''}"] if n else []
        parts += kind.notes
        line = Text(kind.kind, style="bold").append(": ").append("identical", style="green")
        console.print(line.append(f" ({'; '.join(parts)})" if parts else "", style="dim"))
        return
    console.print()
    console.print(Text(kind.kind, style="bold magenta"))
    for note in kind.notes:
        console.print(Text(f"  {note}", style="yellow"))
    if kind.changes:
        console.print(_changes_table(kind.changes))
    for repo in kind.repos:
        _print_repo(console, repo)
    if kind.metrics:
        console.print(_metrics_table(kind))


def _changes_table(changes: list[Change]) -> Table:
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, show_header=False, pad_edge=False, padding=(0, 1))
    table.add_column(style="bold", overflow="fold")
    table.add_column(overflow="fold")
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")
    table.add_column(style="dim", no_wrap=True)
    for c in changes:
        a = Text("(absent)", style="dim") if c.change == "added" else _value(c.a, "red")
        b = Text("(absent)", style="dim") if c.change == "removed" else _value(c.b, "green")
        label = "" if c.change == "changed" else c.change
        table.add_row(Text(f"  {c.key}"), a, Text("→", style="dim"), b, label)
    return table


def _value(value: Any, style: str) -> Text:
    """A value for one cell: commits and digests shortened, containers as compact JSON."""
    from rich.text import Text

    if value is None:
        return Text("none", style="dim")
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float):
        text = repr(value) if math.isfinite(value) else fmt_float(value)
    elif isinstance(value, str):
        text = _short(value)
    elif isinstance(value, (list, dict)):
        text = json.dumps(value, separators=(", ", ": "), default=str)
    else:
        text = str(value)
    return Text(text, style=style)


def _short(text: str) -> str:
    if _SHA.match(text):
        return text[:12]
    if _DIGEST.match(text):
        return text[:19]
    return text


def _print_repo(console: Console, repo: RepoDiff) -> None:
    from rich.text import Text

    if repo.note:
        console.print(Text(f"  {repo.root}: {repo.note}", style="yellow"))
    if repo.files:
        added = sum(f.added or 0 for f in repo.files)
        deleted = sum(f.deleted or 0 for f in repo.files)
        span = f"{_short(repo.sha_a or '')}..{_short(repo.sha_b or '')}"
        head = Text(f"  {repo.root}: {len(repo.files)} files changed {span} ")
        console.print(head.append(f"+{added}", "green").append(" ").append(f"-{deleted}", "red"))
        for f in repo.files[:_FILES_SHOWN]:
            row = Text(f"    {f.path}  ")
            if f.added is None or f.deleted is None:
                console.print(row.append("binary", style="dim"))
            else:
                console.print(row.append(f"+{f.added}", "green").append(f" -{f.deleted}", "red"))
        if len(repo.files) > _FILES_SHOWN:
            console.print(Text(f"    ... and {len(repo.files) - _FILES_SHOWN} more", "dim"))
    if repo.uncommitted_files:
        listed = ", ".join(repo.uncommitted_files)
        console.print(Text(f"  {repo.root}: uncommitted changes differ in {listed}"))


def _metrics_table(kind: KindDiff) -> Table:
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("  key", overflow="fold")
    for name in ("A last", "B last", "Δ last", "A min", "B min", "A max", "B max"):
        table.add_column(name, justify="right", no_wrap=True)
    for m in kind.metrics:
        a, b, delta = m.a, m.b, m.delta_last
        cells = [
            fmt_float(a.last) if a else "-",
            fmt_float(b.last) if b else "-",
            _delta(delta),
            fmt_float(a.min) if a else "-",
            fmt_float(b.min) if b else "-",
            fmt_float(a.max) if a else "-",
            fmt_float(b.max) if b else "-",
        ]
        style = "" if m.changed else "dim"
        table.add_row(Text(f"  {m.key}", style=style), *(Text(c, style=style) for c in cells))
    return table


def _delta(delta: float | None) -> str:
    if delta is None:
        return "-"
    if delta == 0:
        return "0"
    return ("+" if delta > 0 else "") + fmt_float(delta)
