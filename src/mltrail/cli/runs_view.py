"""What ``mltrail runs list`` and ``mltrail runs show`` do and print, without Typer.

The Typer commands in :mod:`mltrail.cli.runs` and the console script's fast path
(:mod:`mltrail.cli._fast`) both call :func:`list_runs` and :func:`show_run`, so their output
is the same. Rich is imported only to draw tables (never for ``--json``).

A run can have tens of thousands of metric keys (one per layer, per GPU, ...): ``runs show``
prints at most ``max_keys`` of them (by name, a page at a time) with a line that counts the
keys and points and says how to see the rest; ``--keys PATTERN`` selects keys by glob.
"""

from __future__ import annotations

import fnmatch
import json
import math
import unicodedata
from collections import Counter
from typing import TYPE_CHECKING, Any

from mltrail.cli._light import (
    CommandError,
    lite_run,
    lite_runs,
    open_api,
    print_json,
    status_text,
    stdout_console,
)
from mltrail.formatting import fmt_bytes, fmt_duration, fmt_float, fmt_time

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from mltrail.api import Api
    from mltrail.artifacts.records import ArtifactVersion
    from mltrail.entities import RunRecord
    from mltrail.repro.checklist import Checklist

__all__ = [
    "DEFAULT_MAX_KEYS",
    "MAX_METRIC_COLUMNS",
    "KeyView",
    "list_runs",
    "metric_columns",
    "parse_columns",
    "print_run_artifacts",
    "run_artifacts",
    "select_keys",
    "show_run",
]

MAX_METRIC_COLUMNS = 4
DEFAULT_MAX_KEYS = 50  # metric rows `runs show` prints before summarising
_TRACEBACK_LINES = 12  # the end of a failed run's traceback, printed by `runs show`


# -- runs list -----------------------------------------------------------------------------


def metric_columns(records: list[RunRecord], limit: int = MAX_METRIC_COLUMNS) -> list[str]:
    """The metric keys to show as columns: those present in the most runs, then by name.

    Args:
        records: the runs being listed.
        limit: at most this many keys.

    Returns:
        Up to ``limit`` metric keys.
    """
    counts = Counter(key for r in records for key in r.metrics)
    # the user's metrics before the sampler's (system/*), then the most common first
    ranked = sorted(counts, key=lambda k: (k.startswith("system/"), -counts[k], k))
    return ranked[:limit]


def parse_columns(text: str) -> list[tuple[str, str]]:
    """``--columns``: comma-separated ``metrics.KEY`` (or a bare metric key), ``params.KEY``
    and ``tags.KEY``, as ``(kind, key)`` pairs in the order given.

    Raises:
        CommandError: an empty column or key.
    """
    out: list[tuple[str, str]] = []
    for raw in text.split(","):
        item = raw.strip()
        kind, dot, key = item.partition(".")
        if dot and kind in ("metrics", "params", "tags"):
            pass
        else:
            kind, key = "metrics", item
        if not key:
            raise CommandError(
                f"--columns: empty column in {text!r}; use e.g. 'loss,params.lr,tags.team'"
            )
        out.append((kind, key))
    return out


def _cell(record: RunRecord, kind: str, key: str) -> str:
    if kind == "metrics":
        return fmt_float(record.metrics[key].last) if key in record.metrics else ""
    if kind == "params":
        if key not in record.params:
            return ""
        value = record.params[key]
        return fmt_float(value) if isinstance(value, float) else str(value)
    return record.tags.get(key, "")


def list_runs(
    project: str | None,
    filter: str | None,
    order_by: str | None,
    limit: int,
    as_json: bool,
    store: str | None,
    columns: str | None = None,
) -> None:
    """Print the runs as a table (or JSON); the caller turns errors into ``error: ...``.

    ``columns`` (``--columns``) names the table's value columns instead of the most common
    metrics: see :func:`parse_columns`.
    """
    chosen = parse_columns(columns) if columns is not None else None
    records = None
    if filter is None and order_by is None:
        records = lite_runs(store, project, limit + 1)  # the common listing, read light
    if records is None:
        api = open_api(store)
        records = api.runs(project=project, filter=filter, order_by=order_by, limit=limit + 1)
    more = len(records) > limit
    records = records[:limit]
    if as_json:
        print_json([r.to_dict() for r in records])
        return
    console = stdout_console()
    if not records:
        console.print("no runs")
        return
    console.print(_runs_table(records, chosen))
    if more:
        console.print(
            f"[dim]showing the first {limit} runs; use --limit to see more[/dim]",
        )


def _runs_table(records: list[RunRecord], chosen: list[tuple[str, str]] | None = None) -> Table:
    from rich.table import Table
    from rich.text import Text

    cols = chosen if chosen is not None else [("metrics", k) for k in metric_columns(records)]
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("id", no_wrap=True, style="cyan")
    table.add_column("project", overflow="fold")
    table.add_column("name", overflow="fold")
    table.add_column("status", no_wrap=True)
    table.add_column("created", no_wrap=True)
    table.add_column("duration", no_wrap=True, justify="right")
    for kind, key in cols:
        title = key if kind == "metrics" and chosen is None else f"{kind}.{key}"
        justify = "left" if kind == "tags" else "right"
        table.add_column(Text(title), justify=justify, overflow="fold")  # type: ignore[arg-type]
    for r in records:
        cells = [Text(_cell(r, kind, key)) for kind, key in cols]
        table.add_row(
            Text(r.run_id),
            Text(r.project),
            Text(r.name),
            status_text(r.status.value),
            fmt_time(r.created_ms),
            fmt_duration(r.duration_ms),
            *cells,
        )
    return table


# -- which metric keys `runs show` prints ------------------------------------------------------


def select_keys(keys: list[str], pattern: str | None) -> list[str]:
    """The keys matching the glob ``pattern`` (all when None), sorted by name.

    A glob over the whole key, case-sensitive: ``*`` any run of characters (``/`` included),
    ``?`` one character, ``[abc]``/``[!abc]`` one of/none of; ``loss`` matches only ``loss``,
    ``*loss*`` every key containing it. The pattern is NFC-normalised, as keys are stored.
    """
    if pattern is None:
        return sorted(keys)
    wanted = unicodedata.normalize("NFC", pattern)
    return sorted(k for k in keys if fnmatch.fnmatchcase(k, wanted))


class KeyView:
    """The page of a run's metric keys that ``runs show`` prints, and what it leaves out."""

    def __init__(self, record: RunRecord, pattern: str | None, max_keys: int, page: int) -> None:
        """Select and page the keys.

        Args:
            record: the run.
            pattern: a glob (see :func:`select_keys`), or None for every key.
            max_keys: rows per page; 0 prints every selected key.
            page: which page (1-based).

        Raises:
            CommandError: ``max_keys`` < 0, ``page`` < 1, or a page past the last.
        """
        if max_keys < 0:
            raise CommandError(f"--max-keys must be >= 0, got {max_keys}")
        if page < 1:
            raise CommandError(f"--page must be >= 1, got {page}")
        self.pattern = pattern
        self.total = len(record.metrics)
        self.points = sum(m.count for m in record.metrics.values())
        self.selected = select_keys(list(record.metrics), pattern)
        size = max_keys or max(1, len(self.selected))
        self.pages = max(1, math.ceil(len(self.selected) / size))
        if page > self.pages:
            raise CommandError(
                f"--page {page} is past the last page: {len(self.selected):,} keys make "
                f"{self.pages} page{'s' if self.pages != 1 else ''} of {size}"
            )
        self.page = page
        self.first = (page - 1) * size
        self.shown = self.selected[self.first : self.first + size]

    @property
    def complete(self) -> bool:
        """Whether every key of the run is printed (no pattern, nothing paged away)."""
        return self.pattern is None and len(self.shown) == self.total

    def summary(self) -> str:
        """One line: which keys are shown, of how many, and how to see the others."""
        where = f"{self.total:,} keys, {self.points:,} points"
        if self.pattern is not None:
            where = f"{len(self.selected):,} of {where} match --keys {self.pattern!r}"
        if not self.shown:
            return f"no keys shown: {where}"
        last = self.first + len(self.shown)
        line = f"keys {self.first + 1:,}-{last:,} shown: {where}"
        hidden = len(self.selected) - len(self.shown)
        if not hidden:
            return line
        hints = ["--keys PATTERN selects (a glob)", "--max-keys 0 shows all"]
        if self.page < self.pages:
            hints.insert(0, f"--page {self.page + 1} shows the next")
        hints.append("--json gives everything")
        return f"{line}; {hidden:,} hidden: " + ", ".join(hints)


# -- runs show -----------------------------------------------------------------------------


def show_run(
    run: str,
    as_json: bool,
    store: str | None,
    keys: str | None = None,
    max_keys: int = DEFAULT_MAX_KEYS,
    page: int = 1,
) -> None:
    """Print one run (or its JSON, every metric key, or those matching ``keys``)."""
    from mltrail.cli.state_view import CONSOLE_TAIL, console_tail_dicts, print_state
    from mltrail.repro.checklist import checklist_of

    light = lite_run(store, run, CONSOLE_TAIL)  # a run without artifacts, read light
    if light is not None:
        record, state, tail, verdicts = light
        inputs: list[ArtifactVersion] = []
        outputs: list[ArtifactVersion] = []
    else:
        from mltrail.repro.checklist import reproduction_verdicts

        api = open_api(store)
        record = api.run(run)
        state = api.state(record.run_id)
        tail = api.console(record.run_id, tail=CONSOLE_TAIL)
        inputs, outputs = run_artifacts(api, record.run_id)
        verdicts = reproduction_verdicts(api, record.run_id, record.project)
    checks = checklist_of(record.run_id, state, verdicts)
    view = KeyView(record, keys, 0 if as_json else max_keys, 1 if as_json else page)
    if as_json:
        doc = record.to_dict()
        if keys is not None:
            doc["metrics"] = {k: doc["metrics"][k] for k in view.selected}
        print_json(
            {
                **doc,
                "state": state,
                "console_tail": console_tail_dicts(tail),
                "inputs": [v.to_dict() for v in inputs],
                "outputs": [v.to_dict() for v in outputs],
                "checklist": checks.to_dict(),
            }
        )
        return
    console = stdout_console()
    _print_run(console, record, view)
    _print_error(console, state.get("error"))
    _print_checklist(console, checks)
    print_run_artifacts(console, inputs, outputs)
    print_state(console, state, tail)


_MARKS = {"pass": ("✓", "green"), "warn": ("!", "yellow"), "fail": ("✗", "bold red")}


def _print_checklist(console: Console, checks: Checklist) -> None:
    """The reproducibility checklist: a score and one line per item."""
    from rich.text import Text

    console.print()
    console.print(
        Text.assemble(
            ("reproducibility checklist", "bold"),
            f"  score {checks.score:.2f}  ",
            ("(mltrail check RUN applies a policy)", "dim"),
        )
    )
    for c in checks.checks:
        mark, style = _MARKS.get(c.result, ("?", ""))
        console.print(Text.assemble("  ", (mark, style), f" {c.name:<12} ", c.reason))


def _print_error(console: Console, doc: dict[str, Any] | None) -> None:
    """The exception that failed the run (type, message, where, the traceback's end)."""
    if not isinstance(doc, dict):
        return
    from rich.text import Text

    from mltrail.capture.errors import one_line

    _section(console, "error")
    console.print(Text(one_line(doc), style="bold red"))
    lines = str(doc.get("traceback") or "").rstrip().splitlines()
    if lines:
        console.print(Text("\n".join(lines[-_TRACEBACK_LINES:]), style="red"))


def _section(console: Console, title: str) -> None:
    from rich.text import Text

    console.print()
    console.print(Text(title, style="bold magenta"))


def _pairs(console: Console, title: str, items: dict[str, str]) -> None:
    from rich.table import Table
    from rich.text import Text

    _section(console, title)
    if not items:
        console.print("[dim](none)[/dim]")
        return
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold", overflow="fold")
    table.add_column(overflow="fold")
    for key in sorted(items):
        table.add_row(Text(key), Text(items[key]))
    console.print(table)


def _print_run(console: Console, r: RunRecord, view: KeyView) -> None:
    from rich.table import Table
    from rich.text import Text

    overview = Table.grid(padding=(0, 2))
    overview.add_column(style="bold", no_wrap=True)
    overview.add_column(overflow="fold")
    overview.add_row("id", Text(r.run_id, style="cyan"))
    overview.add_row("project", Text(r.project))
    overview.add_row("name", Text(r.name))
    overview.add_row("status", status_text(r.status.value))
    overview.add_row("created", fmt_time(r.created_ms))
    overview.add_row("ended", fmt_time(r.end_ms) or "-")
    if r.end_ms is None and r.heartbeat_ms is not None:
        overview.add_row("last heartbeat", fmt_time(r.heartbeat_ms))
    overview.add_row("duration", fmt_duration(r.duration_ms) or "-")
    overview.add_row("user", Text(r.user))
    overview.add_row("host", Text(r.host))
    overview.add_row("command", Text(r.command))
    _section(console, "overview")
    console.print(overview)

    _pairs(console, "params", {k: _param_text(v) for k, v in r.params.items()})

    _section(console, "config")
    if r.config:
        text = json.dumps(r.config, indent=2, sort_keys=True, default=str)
        console.print(Text(text))
    else:
        console.print("[dim](none)[/dim]")

    _pairs(console, "tags", r.tags)

    _section(console, "metrics")
    if view.shown:
        console.print(_metrics_table(r, view.shown))
    elif view.complete:
        console.print("[dim](none)[/dim]")
    if not view.complete:
        console.print(Text(view.summary(), style="dim"))


def _param_text(value: object) -> str:
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else fmt_float(value)
    return str(value)


def _metrics_table(r: RunRecord, keys: list[str]) -> Table:
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("key", overflow="fold")
    for name in ("last", "step", "min", "max", "count"):
        table.add_column(name, justify="right", no_wrap=True)
    for key in keys:
        m = r.metrics[key]
        table.add_row(
            Text(key),
            fmt_float(m.last),
            str(m.last_step),
            fmt_float(m.min),
            fmt_float(m.max),
            str(m.count),
        )
    return table


# -- the artifacts a run used and produced -------------------------------------------------


def run_artifacts(api: Api, run_id: str) -> tuple[list[ArtifactVersion], list[ArtifactVersion]]:
    """A run's ``(inputs, outputs)``; empty when the store has no artifact support."""
    from mltrail.errors import ArtifactsUnsupportedError
    from mltrail.store.registry import open_artifact_store

    try:
        arts = open_artifact_store(api.location)
    except ArtifactsUnsupportedError:
        return [], []
    return arts.run_inputs(run_id), arts.run_outputs(run_id)


def aliases_text(aliases: Any) -> str:
    """An artifact version's aliases, comma-separated."""
    return ", ".join(aliases) if aliases else ""


def print_run_artifacts(
    console: Console, inputs: list[ArtifactVersion], outputs: list[ArtifactVersion]
) -> None:
    """The ``inputs`` and ``outputs`` sections of ``mltrail runs show``."""
    from rich.table import Table
    from rich.text import Text

    for title, items in (("inputs (artifacts used)", inputs), ("outputs (artifacts)", outputs)):
        console.print()
        console.print(Text(title, style="bold magenta"))
        if not items:
            console.print("[dim](none)[/dim]")
            continue
        table = Table(box=None, header_style="bold", pad_edge=False)
        for col in ("artifact", "type", "kind", "digest", "size", "aliases"):
            table.add_column(col, overflow="fold")
        for v in items:
            table.add_row(
                Text(v.qualified, style="cyan"),
                Text(v.type),
                Text(v.kind),
                Text(v.digest[:23]),
                fmt_bytes(v.size),
                Text(aliases_text(v.aliases)),
            )
        console.print(table)
