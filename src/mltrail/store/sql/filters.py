"""The filter AST compiled to SQLAlchemy Core expressions over the runs tables.

Every literal reaches the database as a bound parameter. Params, tags and metric summaries
are tested with correlated ``EXISTS`` subqueries keyed by ``(run_id, key)``, so ``OR`` and
``NOT`` compose in two-valued logic: a run lacking a key never matches a comparison on it,
and ``NOT`` of such a comparison matches it. ``status`` is the effective status (a running
run with a stale heartbeat reads as crashed).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, case, false, func, not_, or_, select, true

from mltrail.store.search import (
    And,
    Compare,
    In,
    IsNull,
    Node,
    Not,
    Or,
)
from mltrail.store.sql.schema import metric_summaries, params, projects, runs, tags

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from sqlalchemy import ColumnElement, Select, Table

__all__ = ["CMP", "KEY_TABLES", "FilterCompiler", "compile_filter", "exists", "keyed", "scalar"]

CMP: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
KEY_TABLES: dict[str, Table] = {"param": params, "metric": metric_summaries, "tag": tags}
_CHUNK_DEPTH = 4


def _crashed(now_ms: int) -> ColumnElement[bool]:
    return and_(
        runs.c.status == "running",
        runs.c.heartbeat_ms < now_ms - 3000 * runs.c.heartbeat_s,
    )


def keyed(kind: str, key: str, *conds: ColumnElement[bool]) -> Select[Any]:
    table = KEY_TABLES[kind]
    return select(table.c.run_id).where(table.c.key == key, *conds)


def exists(kind: str, key: str, *conds: ColumnElement[bool]) -> ColumnElement[bool]:
    sub = keyed(kind, key, KEY_TABLES[kind].c.run_id == runs.c.run_id, *conds)
    return sub.correlate(runs).exists()


def scalar(kind: str, column: str, key: str) -> ColumnElement[Any]:
    table = KEY_TABLES[kind]
    sub = select(table.c[column]).where(table.c.run_id == runs.c.run_id, table.c.key == key)
    return sub.correlate(runs).scalar_subquery()


def _glob(pattern: str) -> str:
    """A LIKE pattern rewritten for SQLite's case-sensitive GLOB."""
    special = {"%": "*", "_": "?", "*": "[*]", "?": "[?]", "[": "[[]"}
    return "".join(special.get(ch, ch) for ch in pattern)


@dataclass(frozen=True, slots=True)
class FilterCompiler:
    """Turns AST nodes into boolean SQL over ``runs`` for one dialect and one instant."""

    now_ms: int
    dialect: str

    def attr(self, name: str) -> ColumnElement[Any]:
        if name == "status":
            return case((_crashed(self.now_ms), "crashed"), else_=runs.c.status)
        if name == "ended":
            return case((_crashed(self.now_ms), runs.c.heartbeat_ms), else_=runs.c.end_ms)
        if name == "project":
            sub = select(projects.c.name).where(projects.c.project_id == runs.c.project_id)
            return sub.correlate(runs).scalar_subquery()
        columns = {"created": "created_ms", "user": "user_name"}
        return runs.c[columns.get(name, name)]

    def node(self, node: Node, depth: int = 0) -> ColumnElement[bool]:
        if isinstance(node, And | Or | Not) and depth >= _CHUNK_DEPTH:
            # SQLite's parser overflows at ~20 nested AND/OR levels: deeper parts become CTEs,
            # which sit side by side in the WITH clause instead of nesting
            chunk = select(runs.c.run_id).where(self.node(node)).cte()
            return runs.c.run_id.in_(select(chunk.c.run_id))
        if isinstance(node, And):
            return and_(*(self.node(item, depth + 1) for item in node.items))
        if isinstance(node, Or):
            return or_(*(self.node(item, depth + 1) for item in node.items))
        if isinstance(node, Not):
            return not_(self.node(node.item, depth + 1))
        if isinstance(node, IsNull):
            return self.is_null(node)
        if node.ident.kind != "attr":
            return exists(node.ident.kind, node.ident.key, self.row_cond(node))
        if isinstance(node, In):
            return self.attr_cond(node.ident.key, lambda c, v: self.member(c, v, node), node.values)
        op = node.op
        return self.attr_cond(node.ident.key, lambda c, v: self.text_cmp(c, op, v), node.value)

    def like(self, col: ColumnElement[Any], op: str, pattern: str) -> ColumnElement[bool]:
        """LIKE is case-sensitive and ILIKE case-insensitive on SQLite and PostgreSQL alike."""
        if self.dialect == "postgresql":  # no escape character, as on SQLite
            pattern = pattern.replace("\\", "\\\\")
        if "ILIKE" in op:
            expr = func.lower(col).like(func.lower(pattern))
        elif self.dialect == "sqlite":  # SQLite's LIKE ignores ASCII case; GLOB does not
            expr = col.op("GLOB", is_comparison=True)(_glob(pattern))
        else:
            expr = col.like(pattern)
        return not_(expr) if op.startswith("NOT") else expr

    def text_cmp(self, col: ColumnElement[Any], op: str, value: Any) -> ColumnElement[bool]:
        return self.like(col, op, value) if "LIKE" in op else CMP[op](col, value)

    @staticmethod
    def member(col: ColumnElement[Any], values: Any, node: In) -> ColumnElement[bool]:
        return col.not_in(values) if node.negated else col.in_(values)

    def attr_cond(
        self, name: str, test: Callable[[ColumnElement[Any], Any], ColumnElement[bool]], value: Any
    ) -> ColumnElement[bool]:
        """``test(column, value)`` on an attribute; a NULL ``ended`` never matches."""
        if name == "project":
            names = select(projects.c.project_id).where(test(projects.c.name, value))
            return runs.c.project_id.in_(names)
        col = self.attr(name)
        if name == "status":  # stored lowercase; users type FINISHED or finished
            lowered = value.lower() if isinstance(value, str) else [v.lower() for v in value]
            return test(func.lower(col), lowered)
        return and_(col.is_not(None), test(col, value)) if name == "ended" else test(col, value)

    def row_cond(self, node: Compare | In) -> ColumnElement[bool]:
        """The condition on one params/tags/metric_summaries row of the node's key."""
        kind = node.ident.kind
        if isinstance(node, In):
            if kind == "param":
                cond = or_(*self.param_in(node.values))
                return not_(cond) if node.negated else cond
            if kind == "tag":
                return self.member(tags.c.value, list(node.values), node)
            nums = [float(v) for v in node.values]
            return self.member(metric_summaries.c.last_value, nums, node)
        if kind == "param":
            return self.param_cond(node.op, node.value)
        if kind == "tag":
            return self.text_cmp(tags.c.value, node.op, node.value)
        test: ColumnElement[bool] = CMP[node.op](metric_summaries.c.last_value, float(node.value))
        return test

    def param_cond(self, op: str, value: object) -> ColumnElement[bool]:
        """``!=`` on a param means "present and not equal" (a text param != 1 matches)."""
        if "LIKE" in op:
            assert isinstance(value, str)
            return self.like(params.c.value, op, value)
        positive = "=" if op == "!=" else op
        if isinstance(value, bool):
            cond = and_(params.c.vtype == "b", params.c.value == ("true" if value else "false"))
        elif isinstance(value, int | float):
            num = params.c.value_num
            cond = and_(num.is_not(None), CMP[positive](num, float(value)))
        else:
            cond = CMP[positive](params.c.value, value)
        return not_(cond) if op == "!=" else cond

    @staticmethod
    def param_in(values: Sequence[object]) -> list[ColumnElement[bool]]:
        bools = [("true" if v else "false") for v in values if isinstance(v, bool)]
        nums = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        strs = [v for v in values if isinstance(v, str)]
        num = params.c.value_num
        conds = [and_(num.is_not(None), num.in_(nums))] if nums else []
        conds += [params.c.value.in_(strs)] if strs else []
        conds += [and_(params.c.vtype == "b", params.c.value.in_(bools))] if bools else []
        return conds

    def is_null(self, node: IsNull) -> ColumnElement[bool]:
        ident = node.ident
        if ident.kind != "attr":
            present = exists(ident.kind, ident.key)
            return present if node.negated else not_(present)
        if ident.key != "ended":
            return true() if node.negated else false()
        col = self.attr("ended")
        return col.is_not(None) if node.negated else col.is_(None)


def compile_filter(node: Node, *, now_ms: int, dialect: str = "sqlite") -> ColumnElement[bool]:
    """Compile a filter AST to a boolean SQL expression over the ``runs`` table.

    Args:
        node: from :func:`mltrail.store.search.parse_filter`.
        now_ms: the current time, for the effective (crashed) status.
        dialect: ``sqlite`` or ``postgresql``; picks the LIKE spelling.

    Returns:
        An expression for the WHERE clause of a ``SELECT ... FROM runs``; every literal
        value in it is a bound parameter.
    """
    return FilterCompiler(now_ms, dialect).node(node)
