"""MLflow's search syntax, translated to our filter language (and to experiment filters).

MLflow's run filter is ``clause AND clause ...`` where a clause is ``IDENT OP VALUE``,
``IDENT [NOT] IN (...)`` or ``IDENT IS [NOT] NULL``; an identifier is ``metrics.KEY``,
``params.KEY``, ``tags.KEY``, ``attributes.NAME`` (``attribute``, ``attr``, ``run`` or no
prefix), a key quoted with backticks or double quotes. Each clause becomes one clause of
ours (``mltrail.store.search``): attributes are renamed (``start_time`` -> ``created``,
``end_time`` -> ``ended``, ``user_id`` -> ``user``), statuses mapped (``FAILED`` matches our
``failed`` and ``crashed``), ``run_name`` reads the tag ``mlflow.runName`` (the run's name
when the tag is absent), and ``lifecycle_stage`` the tag ``mltrail.deleted``. Whatever MLflow
accepts and we cannot answer (``datasets.*``, ``artifact_uri``) is an
``INVALID_PARAMETER_VALUE`` naming it, never a silent mismatch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from mltrail.errors import FilterSyntaxError
from mltrail.server.compat.mlflow.convert import DELETED_TAG, RUN_NAME_TAG

__all__ = ["Clause", "parse_clauses", "translate_filter", "translate_order_by"]

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<ident>[A-Za-z_]+\.(?:`(?:[^`]|``)*`|"(?:[^"]|"")*"|[\w.\-/:]+))
  | (?P<string>'(?:[^']|'')*'|"(?:[^"]|"")*")
  | (?P<number>[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<op>!=|<>|>=|<=|==|=|>|<)
  | (?P<word>[A-Za-z_]\w*)
  | (?P<punct>[(),])
    """,
    re.VERBOSE,
)
_PREFIXES = {
    "metric": "metric",
    "metrics": "metric",
    "param": "param",
    "params": "param",
    "parameter": "param",
    "parameters": "param",
    "tag": "tag",
    "tags": "tag",
    "attribute": "attr",
    "attributes": "attr",
    "attr": "attr",
    "run": "attr",
    "dataset": "dataset",
    "datasets": "dataset",
}
#: MLflow's run attributes and ours
_ATTRS = {
    "run_id": "run_id",
    "run_name": "name",
    "status": "status",
    "start_time": "created",
    "end_time": "ended",
    "user_id": "user",
    "lifecycle_stage": "lifecycle_stage",
    "created": "created",
}
_STATUS = {
    "RUNNING": ("running",),
    "SCHEDULED": (),
    "FINISHED": ("finished",),
    "FAILED": ("failed", "crashed"),
    "KILLED": ("killed", "pruned"),
}
_WORD_OPS = ("LIKE", "ILIKE")


@dataclass(frozen=True, slots=True)
class Clause:
    """One MLflow clause: ``kind`` (metric, param, tag, attr), the key, the operator and the
    value (a tuple for IN, None for IS NULL)."""

    kind: str
    key: str
    op: str
    value: Any
    pos: int


def _unquote(text: str) -> str:
    q = text[0]
    return text[1:-1].replace(q * 2, q)


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out: list[tuple[str, str, int]] = []
    i = 0
    while i < len(text):
        m = _TOKEN.match(text, i)
        if m is None:
            raise FilterSyntaxError(f"invalid filter near {text[i : i + 20]!r}", i)
        kind = m.lastgroup or ""
        if kind != "ws":
            out.append((kind, m.group(), i))
        i = m.end()
    out.append(("eof", "", len(text)))
    return out


def _ident(tok: tuple[str, str, int], *, experiments: bool = False) -> tuple[str, str]:
    kind, raw, pos = tok
    if kind == "word":
        return "attr", raw.lower() if not experiments else raw
    if kind != "ident":
        raise FilterSyntaxError(f"expected an identifier, found {raw or 'the end'!r}", pos)
    prefix, _, key = raw.partition(".")
    entity = _PREFIXES.get(prefix.lower())
    if entity is None:
        raise FilterSyntaxError(
            f"invalid entity type {prefix!r}: expected metrics, params, tags or attributes", pos
        )
    if key[0] in '`"':
        key = _unquote(key)
    return entity, key


def _value(tok: tuple[str, str, int]) -> str | float | int:
    kind, raw, pos = tok
    if kind == "string":
        return _unquote(raw)
    if kind == "number":
        return float(raw) if any(c in raw for c in ".eE") else int(raw)
    raise FilterSyntaxError(f"expected a value, found {raw or 'the end'!r}", pos)


def parse_clauses(text: str | None, *, experiments: bool = False) -> list[Clause]:
    """The clauses of an MLflow filter (AND only, as MLflow's own parser)."""
    if text is None or not text.strip():
        return []
    toks = _tokens(text)
    i = 0
    out: list[Clause] = []
    while True:
        kind, key = _ident(toks[i], experiments=experiments)
        pos = toks[i][2]
        i += 1
        t_kind, t_raw, t_pos = toks[i]
        word = t_raw.upper() if t_kind == "word" else ""
        if t_kind == "op":
            op = {"==": "=", "<>": "!="}.get(t_raw, t_raw)
            out.append(Clause(kind, key, op, _value(toks[i + 1]), pos))
            i += 2
        elif word == "IS":
            negated = toks[i + 1][1].upper() == "NOT"
            j = i + 2 if negated else i + 1
            if toks[j][1].upper() != "NULL":
                raise FilterSyntaxError("expected NULL after IS", toks[j][2])
            out.append(Clause(kind, key, "IS NOT NULL" if negated else "IS NULL", None, pos))
            i = j + 1
        elif word in (*_WORD_OPS, "NOT", "IN"):
            negated = word == "NOT"
            if negated:
                i += 1
                word = toks[i][1].upper()
            if word in _WORD_OPS:
                out.append(
                    Clause(kind, key, ("NOT " if negated else "") + word, _value(toks[i + 1]), pos)
                )
                i += 2
            elif word == "IN":
                i += 1
                if toks[i][0] != "punct" or toks[i][1] != "(":
                    raise FilterSyntaxError("expected '(' after IN", toks[i][2])
                values = []
                while True:
                    values.append(_value(toks[i + 1]))
                    i += 2
                    if toks[i][1] == ")":
                        break
                    if toks[i][1] != ",":
                        raise FilterSyntaxError("expected ',' or ')' in the IN list", toks[i][2])
                i += 1
                out.append(Clause(kind, key, "NOT IN" if negated else "IN", tuple(values), pos))
            else:
                raise FilterSyntaxError("expected LIKE, ILIKE or IN after NOT", toks[i][2])
        else:
            raise FilterSyntaxError(f"expected a comparison after {key!r}", t_pos)
        if toks[i][0] == "eof":
            return out
        if toks[i][1].upper() != "AND":
            raise FilterSyntaxError(
                f"expected AND or the end of the filter, found {toks[i][1]!r} "
                "(MLflow's search joins clauses with AND only)",
                toks[i][2],
            )
        i += 1


def _key(kind: str, key: str) -> str:
    return f"{kind}s.`{key.replace('`', '``')}`"


def _lit(value: Any) -> str:
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value)


def _attr(name: str, pos: int) -> str:
    ours = _ATTRS.get(name)
    if ours is None:
        raise FilterSyntaxError(
            f"invalid attribute key {name!r}: mltrail answers run_id, run_name, status, "
            "start_time, end_time, user_id and lifecycle_stage",
            pos,
        )
    return ours


def _status_clause(c: Clause) -> str:
    values = c.value if isinstance(c.value, tuple) else (c.value,)
    ours: list[str] = []
    for value in values:
        mapped = _STATUS.get(str(value).upper())
        if mapped is None:
            raise FilterSyntaxError(
                f"invalid status {value!r}: expected one of {', '.join(_STATUS)}", c.pos
            )
        ours.extend(mapped)
    if c.op not in ("=", "!=", "IN", "NOT IN"):
        raise FilterSyntaxError(f"status takes =, !=, IN or NOT IN, not {c.op}", c.pos)
    if not ours:  # SCHEDULED: no run of ours is
        return "status = 'scheduled'" if c.op in ("=", "IN") else "status != 'scheduled'"
    listed = ", ".join(_lit(s) for s in ours)
    return f"status {'NOT IN' if c.op in ('!=', 'NOT IN') else 'IN'} ({listed})"


def _clause(c: Clause) -> str:
    if c.kind == "dataset":
        raise FilterSyntaxError("datasets.* filters are not supported by mltrail", c.pos)
    if c.kind == "attr":
        name = _attr(c.key, c.pos)
        if name == "status":
            return _status_clause(c)
        if name == "lifecycle_stage":
            if c.op not in ("=", "!=") or str(c.value).lower() not in ("active", "deleted"):
                raise FilterSyntaxError("lifecycle_stage takes = or != 'active'/'deleted'", c.pos)
            deleted = (str(c.value).lower() == "deleted") == (c.op == "=")
            return f"{_key('tag', DELETED_TAG)} IS {'NOT ' if deleted else ''}NULL"
        if name == "name":
            tag = _key("tag", RUN_NAME_TAG)
            rest = _rest(c)
            return f"({tag} {rest} OR ({tag} IS NULL AND name {rest}))"
        return f"{name} {_rest(c)}"
    if c.kind == "metric" and isinstance(c.value, str):
        raise FilterSyntaxError(f"metrics.{c.key} compares with numbers only", c.pos)
    if c.kind in ("param", "tag") and c.op in ("<", "<=", ">", ">="):
        raise FilterSyntaxError(
            f"{c.kind}s.{c.key} takes =, !=, LIKE, ILIKE or IN (MLflow compares text)", c.pos
        )
    value = c.value
    if c.kind in ("param", "tag") and isinstance(value, int | float):
        value = str(c.value)  # MLflow compares params and tags as text
        return f"{_key(c.kind, c.key)} {c.op} {_lit(value)}"
    return f"{_key(c.kind, c.key)} {_rest(c)}"


def _rest(c: Clause) -> str:
    if c.value is None:
        return c.op
    if isinstance(c.value, tuple):
        return f"{c.op} ({', '.join(_lit(x) for x in c.value)})"
    return f"{c.op} {_lit(c.value)}"


def translate_filter(text: str | None, view: str = "ACTIVE_ONLY") -> str | None:
    """Our filter for an MLflow run filter and view type (``ACTIVE_ONLY``: deleted runs left
    out; ``DELETED_ONLY``; ``ALL``)."""
    parts = [_clause(c) for c in parse_clauses(text)]
    view = (view or "ACTIVE_ONLY").upper()
    if view in ("ACTIVE_ONLY", "1"):
        parts.append(f"{_key('tag', DELETED_TAG)} IS NULL")
    elif view in ("DELETED_ONLY", "2"):
        parts.append(f"{_key('tag', DELETED_TAG)} IS NOT NULL")
    elif view not in ("ALL", "3"):
        raise FilterSyntaxError(f"invalid run_view_type {view!r}")
    return " AND ".join(parts) or None


def translate_order_by(items: list[str]) -> str | None:
    """Our order-by for MLflow's list (``metrics.acc DESC``, ``attributes.start_time``)."""
    out: list[str] = []
    for item in items:
        toks = _tokens(item)
        kind, key = _ident(toks[0])
        pos = toks[0][2]
        direction = ""
        rest = toks[1]
        if rest[0] == "word" and rest[1].upper() in ("ASC", "DESC"):
            direction = " " + rest[1].upper()
            rest = toks[2]
        if rest[0] != "eof":
            raise FilterSyntaxError(f"invalid order_by clause {item!r}", rest[2])
        if kind == "attr":
            name = _attr(key, pos)
            if name == "lifecycle_stage":
                raise FilterSyntaxError("cannot order by lifecycle_stage", pos)
            out.append(f"{name}{direction}")
        elif kind == "dataset":
            raise FilterSyntaxError("datasets.* cannot order runs in mltrail", pos)
        else:
            out.append(f"{_key(kind, key)}{direction}")
    return ", ".join(out) or None
