"""The runs table of a project: columns, sorting links, the first page, filter errors.

The first page is rendered on the server (so the table paints without waiting for any
script); later pages are fetched by ``runs.js`` from ``GET /api/v1/runs`` with the
``next_page_token`` this module puts in the page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from mltrail.errors import FilterSyntaxError, InvalidArgumentError
from mltrail.server.ui._render import fmt_value, order_ident

if TYPE_CHECKING:
    from mltrail.entities import RunRecord
    from mltrail.server.ui._queries import ProjectKeys
    from mltrail.store.base import TrackingStore

__all__ = ["PAGE_SIZE", "Column", "TableView", "build_table", "parse_columns"]

PAGE_SIZE = 100
MAX_COLUMNS = 60
_DEFAULT_PER_KIND = 5
_KINDS = ("params", "metrics", "tags")
#: Fixed columns: (id, label, sortable attribute or None, default direction).
_FIXED = (
    ("name", "Name", "name", "asc"),
    ("status", "Status", "status", "asc"),
    ("created", "Created", "created", "desc"),
    ("duration", "Duration", None, "desc"),
    ("user", "User", "user", "asc"),
)


@dataclass(frozen=True, slots=True)
class Column:
    """One column: ``id`` is ``params.KEY``, ``metrics.KEY``, ``tags.KEY`` or an attribute."""

    id: str
    label: str
    kind: str
    sort_key: str | None
    sort_dir: str = "desc"
    href: str = ""
    sorted: str = ""  # "asc" / "desc" when the table is sorted by this column


@dataclass(slots=True)
class TableView:
    """Everything the runs template needs."""

    project: str
    filter: str
    order_by: str
    group: str
    columns: list[Column]
    runs: list[dict[str, Any]]
    next_token: str | None
    keys: ProjectKeys
    chosen: list[str]
    error: str | None = None
    error_field: str | None = None
    error_position: int | None = None
    groupable: list[str] = field(default_factory=list)


def parse_columns(cols: list[str], keys: ProjectKeys) -> list[str]:
    """The chosen column ids, validated; a default choice when none is given.

    Raises:
        InvalidArgumentError: a column that is not ``params.``/``metrics.``/``tags.`` + key,
            or more than :data:`MAX_COLUMNS` of them.
    """
    if not cols:
        user_metrics = [k for k in keys.metrics if not k.startswith("system/")]
        return [f"params.{k}" for k in keys.params[:_DEFAULT_PER_KIND]] + [
            f"metrics.{k}" for k in user_metrics[:_DEFAULT_PER_KIND]
        ]
    if len(cols) > MAX_COLUMNS:
        raise InvalidArgumentError(f"cols: at most {MAX_COLUMNS} columns, got {len(cols)}")
    out: list[str] = []
    for col in cols:
        kind, _, key = col.partition(".")
        if kind not in _KINDS or not key or len(key) > 250:
            raise InvalidArgumentError(
                f"cols: {col[:60]!r} is not params.KEY, metrics.KEY or tags.KEY"
            )
        if col not in out:
            out.append(col)
    return out


def _state(view: TableView, **changes: Any) -> str:
    q: dict[str, Any] = {"filter": view.filter, "order_by": view.order_by, "group": view.group}
    q.update(changes)
    pairs = [(k, v) for k, v in q.items() if v]
    pairs += [("cols", c) for c in view.chosen]
    return "?" + urlencode(pairs)


def _columns(view: TableView) -> list[Column]:
    current = view.order_by.strip()
    cols: list[Column] = []
    specs = [(cid, label, attr, d, "attr") for cid, label, attr, d in _FIXED]
    for cid in view.chosen:
        kind, _, key = cid.partition(".")
        specs.append((cid, key, order_ident(cid), "desc" if kind == "metrics" else "asc", kind))
    for cid, label, sort_key, default_dir, kind in specs:
        if sort_key is None:
            cols.append(Column(cid, label, kind, None))
            continue
        now = ""
        if current in (f"{sort_key} desc", f"{sort_key} DESC"):
            now = "desc"
        elif current in (sort_key, f"{sort_key} asc", f"{sort_key} ASC"):
            now = "asc"
        if not current and cid == "created":
            now = "desc"  # the store's default order
        nxt = {"asc": "desc", "desc": "asc"}.get(now, default_dir)
        href = _state(view, order_by=f"{sort_key} {nxt}")
        cols.append(Column(cid, label, kind, sort_key, default_dir, href, now))
    return cols


def cell(run: RunRecord, column_id: str) -> str:
    """The text of one chosen column for one run (empty when the run lacks the key)."""
    kind, _, key = column_id.partition(".")
    if kind == "params":
        return fmt_value(run.params[key]) if key in run.params else ""
    if kind == "metrics":
        m = run.metrics.get(key)
        return "" if m is None else fmt_value(m.last)
    return run.tags.get(key, "")


def _row(run: RunRecord, chosen: list[str], group: str) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "name": run.name,
        "status": run.status.value,
        "error": run.tags.get("mltrail.error", ""),
        "created_ms": run.created_ms,
        "duration_ms": run.duration_ms,
        "user": run.user,
        "cells": [cell(run, c) for c in chosen],
        "group": cell(run, group) if group else "",
    }


def build_table(
    store: TrackingStore,
    project: str,
    keys: ProjectKeys,
    *,
    filter: str,
    order_by: str,
    cols: list[str],
    group: str,
) -> TableView:
    """Search the first page and lay out the table; a bad filter becomes ``view.error``."""
    chosen = parse_columns(cols, keys)
    if group and (group.partition(".")[0] not in ("params", "tags") or len(group) > 260):
        raise InvalidArgumentError(f"group: {group[:60]!r} is not params.KEY or tags.KEY")
    view = TableView(project, filter, order_by, group, [], [], None, keys, chosen)
    view.groupable = [f"tags.{k}" for k in keys.tags] + [f"params.{k}" for k in keys.params]
    view.columns = _columns(view)
    try:
        page = store.search_runs(project, filter or None, order_by or None, PAGE_SIZE)
    except FilterSyntaxError as exc:
        view.error, view.error_position = exc.message, exc.position
        view.error_field = _which_failed(filter, order_by)
        return view
    view.runs = [_row(r, chosen, group) for r in page.runs]
    view.next_token = page.next_token
    return view


def _which_failed(filter: str, order_by: str) -> str:
    """``filter`` or ``order_by``: which of the two strings the syntax error is in."""
    from mltrail.store.search.parser import parse_order_by

    if order_by:
        try:
            parse_order_by(order_by)
        except FilterSyntaxError:
            return "order_by"
    return "filter"
