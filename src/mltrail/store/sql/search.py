"""Run search: the filter AST compiled to SQLAlchemy Core, with keyset pagination.

Every literal from a filter or a page token reaches the database as a bound parameter.
Params, tags and metric summaries are tested with correlated ``EXISTS`` subqueries keyed by
``(run_id, key)``, so ``OR`` and ``NOT`` compose in two-valued logic: a run lacking a key
never matches a comparison on it, and ``NOT`` of such a comparison matches it.

Query shapes, chosen so SQLite reads about one page of index entries:

- *Phased* (the usual case). Ordering by a metric, param or tag first reads the runs having
  the key straight from ``metric_summaries`` (``ix_summaries_key_last_run``), ``params``
  (``ix_params_key_num_run``) or ``tags``, in index order (the run id, the last tie-breaker,
  is the indexes' last column, so nothing is sorted), joined to ``runs``; only if the page is
  not full does a second query read the runs lacking it. Attribute orders walk ``runs``.
- *Candidates*. When a top-level AND term on a key table (``tags.git = 'abc'``,
  ``metrics.acc > 0.999``) matches at most ``CANDIDATE_CAP`` rows, found with a bounded count,
  the runs are restricted to those rows and sorted whole.

Both shapes give the same order; the page token records which one made it, with the last
row's sort values and run id (no OFFSET scans), plus a fingerprint of the search.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, case, func, not_, or_, select

from mltrail.errors import FilterSyntaxError, InvalidArgumentError
from mltrail.store.search import (
    And,
    Compare,
    Ident,
    In,
    Node,
    OrderKey,
    decode_page_token,
    encode_page_token,
    page_fingerprint,
    page_token_error,
    parse_filter,
    parse_order_by,
)
from mltrail.store.sql.schema import metric_summaries, runs

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy import ColumnElement, Connection, FromClause, Select
from mltrail.store.sql.filters import (
    CMP,
    KEY_TABLES,
    FilterCompiler,
    compile_filter,
    exists,
    keyed,
    scalar,
)

__all__ = ["CANDIDATE_CAP", "MAX_LIMIT", "compile_filter", "search_run_ids"]

MAX_LIMIT = 10_000
#: A key-table term matching at most this many rows drives the search (see module doc).
CANDIDATE_CAP = 1000
_DEFAULT_ORDER = (OrderKey(Ident("attr", "created"), descending=True),)
_DRIVE = {kind: table.alias("drive") for kind, table in KEY_TABLES.items()}
_SEEKABLE = frozenset({"=", "<", "<=", ">", ">="})


@dataclass(frozen=True, slots=True)
class _Col:
    """One sort column; ``kind`` (n=number, s=text, i=rank) validates page-token values."""

    expr: ColumnElement[Any]
    desc: bool
    kind: str


@dataclass(frozen=True, slots=True)
class _Phase:
    """One slice of the ordering: where its rows come from and how they sort."""

    source: FromClause
    where: tuple[ColumnElement[bool], ...]
    cols: tuple[_Col, ...]
    #: the key table's run id, sorted on in place of ``runs.run_id`` (equal by the join) so
    #: the order is its index's order
    run_id: ColumnElement[Any] | None = None


def _sort_cols(key: OrderKey, comp: FilterCompiler) -> tuple[_Col, ...]:
    """Columns sorting ``key`` in one query; runs lacking the key come last either way."""
    ident, desc = key.ident, key.descending
    if ident.kind == "attr":
        expr = comp.attr(ident.key)
        if ident.key == "ended":
            rank = _Col(case((expr.is_(None), 1), else_=0), False, "i")
            return rank, _Col(func.coalesce(expr, 0), desc, "n")
        return (_Col(expr, desc, "n" if ident.key == "created" else "s"),)
    if ident.kind == "param":
        num = scalar("param", "value_num", ident.key)
        text = scalar("param", "value", ident.key)
        rank = _Col(case((text.is_(None), 2), (num.is_(None), 1), else_=0), False, "i")
        num_col = _Col(func.coalesce(num, 0.0), desc, "n")
        return rank, num_col, _Col(func.coalesce(text, ""), desc, "s")
    column, zero, kind = ("last_value", 0.0, "n") if ident.kind == "metric" else ("value", "", "s")
    value = scalar(ident.kind, column, ident.key)
    rank = _Col(case((value.is_(None), 1), else_=0), False, "i")
    return rank, _Col(func.coalesce(value, zero), desc, kind)


def _conjuncts(node: Node | None) -> tuple[Node, ...]:
    if node is None:
        return ()
    return node.items if isinstance(node, And) else (node,)


def _pushdown(node: Node | None, ident: Ident) -> tuple[list[Compare], Node | None]:
    """Top-level AND terms comparing ``ident`` to a number, and the filter without them."""
    items = _conjuncts(node)
    pushed = [
        item
        for item in items
        if isinstance(item, Compare)
        and item.ident == ident
        and item.op in _SEEKABLE
        and isinstance(item.value, int | float)
        and not isinstance(item.value, bool)
    ]
    rest = [item for item in items if not any(item is done for done in pushed)]  # 1 == True
    if len(rest) > 1:
        return pushed, And(tuple(rest))
    return pushed, rest[0] if rest else None


def _phased(
    key: OrderKey, comp: FilterCompiler, node: Node | None
) -> tuple[list[_Phase], Node | None]:
    """The phases for the primary sort key, and the filter left for their WHERE clause."""
    ident, desc = key.ident, key.descending
    if ident.kind == "attr":
        expr = comp.attr(ident.key)
        if ident.key != "ended":
            return [_Phase(runs, (), _sort_cols(key, comp))], node
        has = _Phase(runs, (expr.is_not(None),), (_Col(expr, desc, "n"),))
        return [has, _Phase(runs, (expr.is_(None),), ())], node
    drive = _DRIVE[ident.kind]
    # `|| ''` stops SQLite (given ANALYZE stats) from scanning runs and probing drive by
    # primary key, which sorts every run; drive must be the outer loop, read in index order
    drive_id = drive.c.run_id + "" if comp.dialect == "sqlite" else drive.c.run_id
    source = drive.join(runs, drive_id == runs.c.run_id)
    on_key = drive.c.key == ident.key
    lacking = _Phase(runs, (not_(exists(ident.kind, ident.key)),), ())
    if ident.kind == "tag":
        by_value = (_Col(drive.c.value, desc, "s"),)
        return [_Phase(source, (on_key,), by_value, drive.c.run_id), lacking], node
    column = drive.c.last_value if ident.kind == "metric" else drive.c.value_num
    pushed, rest = _pushdown(node, ident)
    ranges = [CMP[item.op](column, float(item.value)) for item in pushed]
    cols: tuple[_Col, ...] = (_Col(column, desc, "n"),)
    if ident.kind == "param":
        cols += (_Col(drive.c.value, desc, "s"),)
    first = _Phase(source, (on_key, column.is_not(None), *ranges), cols, drive.c.run_id)
    if pushed:  # every match has a number for the key: later phases would be empty
        return [first], rest
    if ident.kind == "metric":  # NaN (NULL last_value) sorts with the missing
        no_value = not_(exists("metric", ident.key, metric_summaries.c.last_value.is_not(None)))
        return [first, _Phase(runs, (no_value,), ())], node
    by_text = (_Col(drive.c.value, desc, "s"),)
    text_only = _Phase(source, (on_key, column.is_(None)), by_text, drive.c.run_id)
    return [first, text_only, lacking], node


def _candidates(conn: Connection, comp: FilterCompiler, node: Node | None) -> Select[Any] | None:
    """The run ids of the most selective top-level key-table term, if at most the cap."""
    items = _conjuncts(node)
    best, bound = None, CANDIDATE_CAP + 1
    for item in items[:8]:
        if not isinstance(item, Compare | In) or item.ident.kind == "attr":
            continue
        if item.negated if isinstance(item, In) else item.op not in _SEEKABLE:
            continue
        sub = keyed(item.ident.kind, item.ident.key, comp.row_cond(item))
        count = select(func.count()).select_from(sub.limit(bound).subquery())
        found = conn.execute(count).scalar_one()
        if found < bound:
            best, bound = sub, found
    return best


def _after(cols: Sequence[_Col], values: Sequence[Any]) -> ColumnElement[bool]:
    """Rows strictly after ``values`` in the order of ``cols`` (keyset pagination)."""
    terms = []
    for i, col in enumerate(cols):
        equal = [cols[j].expr == values[j] for j in range(i)]
        step = operator.lt if col.desc else operator.gt
        terms.append(and_(*equal, step(col.expr, values[i])))
    first = cols[0]  # a plain bound on the leading column, so the index range starts there
    bound = (operator.le if first.desc else operator.ge)(first.expr, values[0])
    return and_(bound, or_(*terms))


def _statement(
    phase: _Phase, cols: Sequence[_Col], where: list[Any], after: Any, limit: int
) -> Select[Any]:
    labels = [col.expr.label(f"k{i}") for i, col in enumerate(cols)]
    stmt = select(runs.c.run_id, *labels).select_from(phase.source).where(*where, *phase.where)
    if after is not None:
        stmt = stmt.where(_after(cols, after))
    order = [
        label.desc() if col.desc else label.asc() for label, col in zip(labels, cols, strict=True)
    ]
    return stmt.order_by(*order).limit(limit)


@dataclass(frozen=True, slots=True)
class _Plan:
    """How one search runs: its shape, phases, shared WHERE terms and trailing sort columns."""

    mode: str  # "p": phased; "c": candidates
    phases: list[_Phase]
    where: list[ColumnElement[bool]]
    more: list[_Col]  # the other order_by keys, then the run id


def _plan(
    conn: Connection,
    comp: FilterCompiler,
    node: Node | None,
    keys: Sequence[OrderKey],
    project_id: str | None,
    mode: str,
) -> _Plan:
    """Choose the query shape (the page token's, if any) and build its parts."""
    where: list[ColumnElement[bool]] = []
    cand = _candidates(conn, comp, node) if mode != "p" else None
    if cand is not None or mode == "c":
        mode, rest = "c", node
        phases = [_Phase(runs, (), _sort_cols(keys[0], comp))]
        where += [runs.c.run_id.in_(cand)] if cand is not None else []
    else:
        mode = "p"
        phases, rest = _phased(keys[0], comp, node)
    if project_id is not None:  # on SQLite, `|| ''` keeps ix_runs_project_created from
        column = runs.c.project_id  # outbidding the candidate list as the driving index
        sqlite_cand = cand is not None and comp.dialect == "sqlite"
        where.append((column + "" if sqlite_cand else column) == project_id)
    if rest is not None:
        where.append(comp.node(rest))
    more = [col for key in keys[1:] for col in _sort_cols(key, comp)]
    more.append(_Col(runs.c.run_id, keys[-1].descending, "s"))
    return _Plan(mode, phases, where, more)


def _check_position(plan: _Plan, phase: int, values: list[Any]) -> None:
    if not 0 <= phase < len(plan.phases):
        raise page_token_error()
    kinds = [col.kind for col in (*plan.phases[phase].cols, *plan.more)]
    if len(kinds) != len(values) or not all(map(_valid, kinds, values)):
        raise page_token_error()


def _fetch(
    conn: Connection, plan: _Plan, start: int, after: list[Any] | None, limit: int
) -> list[tuple[int, Sequence[Any]]]:
    """Up to ``limit + 1`` rows (phase, row), reading later phases only while short."""
    rows: list[tuple[int, Sequence[Any]]] = []
    for i in range(start, len(plan.phases)):
        cols = [*plan.phases[i].cols, *plan.more]
        run_id = plan.phases[i].run_id
        if run_id is not None and len(plan.more) == 1:  # the run id is the only tie-breaker
            cols[-1] = _Col(run_id, cols[-1].desc, "s")
        position = after if i == start else None
        stmt = _statement(plan.phases[i], cols, plan.where, position, limit + 1 - len(rows))
        try:
            rows.extend((i, tuple(row)) for row in conn.execute(stmt))
        except RecursionError:  # a deep filter on an already deep call stack
            raise FilterSyntaxError("filter is nested too deeply to compile") from None
        if len(rows) > limit:
            break
    return rows


def _position(data: dict[str, Any]) -> tuple[str, int, list[Any]]:
    """The query shape, phase and sort values (run id last) stored in a page token."""
    mode, phase, values = data.get("m"), data.get("ph"), data.get("k")
    if mode not in ("p", "c") or type(phase) is not int or not isinstance(values, list):
        raise page_token_error()
    return mode, phase, values


def _valid(kind: str, value: object) -> bool:
    if kind == "s":
        return isinstance(value, str)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if isinstance(value, int):
        return -(2**63) <= value < 2**63
    return kind == "n"


def search_run_ids(
    conn: Connection,
    *,
    project_id: str | None,
    filter: str | None,
    order_by: str | None,
    limit: int,
    page_token: str | None,
    now_ms: int,
) -> tuple[list[str], str | None]:
    """Run ids matching ``filter``, in ``order_by`` order, one page at a time.

    Args:
        conn: a connection to a database with the mltrail schema.
        project_id: restrict to this project (its id), or None for all projects.
        filter: the filter language (see :mod:`mltrail.store.search`); None for all runs.
        order_by: ``KEY [ASC|DESC], ...``; None for newest first (``created desc``). Ties
            are broken by run id; runs lacking a metric, param or tag key sort last.
        limit: page size, 1 to 10,000.
        page_token: the token returned with the previous page, or None for the first page.
        now_ms: the current time in epoch ms, for the effective (crashed) status.

    Returns:
        Up to ``limit`` run ids and the token of the next page (None on the last page).

    Raises:
        FilterSyntaxError: the filter or order_by does not parse.
        InvalidArgumentError: ``limit`` is out of range, or ``page_token`` is malformed,
            forged or from a different search.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidArgumentError(f"limit must be between 1 and {MAX_LIMIT}, got {limit!r}")
    node = parse_filter(filter)
    keys = parse_order_by(order_by) or _DEFAULT_ORDER
    fp = page_fingerprint(filter, order_by, project_id)
    mode, start, after = "", 0, None
    if page_token:
        mode, start, after = _position(decode_page_token(page_token, fp))
    comp = FilterCompiler(now_ms, conn.dialect.name)
    plan = _plan(conn, comp, node, keys, project_id, mode)
    if after is not None:
        _check_position(plan, start, after)
    rows = _fetch(conn, plan, start, after, limit)
    ids = [str(row[0]) for _, row in rows[:limit]]
    if len(rows) <= limit:
        return ids, None
    phase, last = rows[limit - 1]
    return ids, encode_page_token(fp, {"m": plan.mode, "ph": phase, "k": list(last[1:])})
