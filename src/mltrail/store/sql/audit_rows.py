"""Rows as the audit trail records them: canonical, rebuildable from the live database.

A change's entry carries, per table it wrote, the rows as they now are and the primary keys
of rows it deleted (:func:`table_rows`), each value normalised by its column's type
(:func:`normalizer`): integers, floats, booleans, text; bytes and text over
:data:`LONG_TEXT` characters as their SHA-256 (the entry stays small; the row is still
pinned). ``audit verify`` normalises the live rows the same way and compares. Derived tables
(metric summaries, sketches, ingest cursors) and operational columns (``runs.heartbeat_ms``)
are left out; metric points are pinned by the digest of each batch's columns instead
(:mod:`mltrail.store.sql.audit_ingest`).
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from mltrail.store.sql import schema as s

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping

__all__ = [
    "AUDITED",
    "LONG_TEXT",
    "columns",
    "deleted_rows",
    "live_rows",
    "live_table",
    "normalizer",
    "snapshot",
    "table_rows",
]

#: text longer than this is recorded as ``sha256:<hex>`` of its UTF-8 bytes
LONG_TEXT = 512

#: The tables the trail covers, by name.
AUDITED: dict[str, sa.Table] = {
    t.name: t
    for t in (
        s.projects,
        s.runs,
        s.params,
        s.tags,
        s.run_state,
        s.blobs,
        s.run_blobs,
        s.api_tokens,
        s.run_files,
        s.artifacts,
        s.artifact_versions,
        s.artifact_aliases,
        s.run_inputs,
        s.object_refs,
        s.registered_models,
        s.model_versions,
        s.model_aliases,
        s.model_cards,
        s.model_history,
    )
}
#: Columns that change without being a change of record (heartbeats).
_EXCLUDED = {"runs": frozenset({"heartbeat_ms"})}
#: Columns recorded by their SHA-256 only (a token's secret hash stays out of the log).
_HASHED = {("api_tokens", "secret_hash")}


def _text(v: Any) -> Any:
    if v is None:
        return None
    text = str(v)
    if len(text) > LONG_TEXT:
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    return text


def _bytes_of_text(v: Any) -> Any:
    return None if v is None else "sha256:" + hashlib.sha256(str(v).encode()).hexdigest()


def _bytes(v: Any) -> Any:
    return None if v is None else "sha256:" + hashlib.sha256(bytes(v)).hexdigest()


def _int(v: Any) -> Any:
    return None if v is None else int(v)


def _float(v: Any) -> Any:
    if v is None:
        return None
    f = float(v)
    return f if f == f else "NaN"  # NaN != NaN: recorded as text so rows compare equal


def _bool(v: Any) -> Any:
    return None if v is None else bool(v)


def normalizer(column: sa.Column[Any]) -> Callable[[Any], Any]:
    """How a value of ``column`` is recorded."""
    t = column.type
    if isinstance(t, sa.Boolean):
        return _bool
    if isinstance(t, sa.Integer):
        return _int
    if isinstance(t, sa.Float):
        return _float
    if isinstance(t, sa.LargeBinary):
        return _bytes
    return _text


@cache
def _columns(table: str) -> tuple[tuple[str, ...], tuple[tuple[str, Callable[[Any], Any]], ...]]:
    t = AUDITED[table]
    excluded = _EXCLUDED.get(table, frozenset())
    pk = tuple(c.name for c in t.primary_key.columns)
    cols = tuple(
        (c.name, _bytes_of_text if (table, c.name) in _HASHED else normalizer(c))
        for c in t.columns
        if c.name not in excluded
    )
    return pk, cols


#: canonical JSON (one encoder: ``json.dumps`` with options builds one per call)
_dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def _spec(table: str) -> dict[str, Any]:
    pk, cols = _columns(table)
    return {"cols": [name for name, _ in cols], "pk": list(pk), "rows": [], "deleted": []}


def table_rows(table: str, rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Rows of ``table`` as written, in the payload's form: ``{"cols": [...], "pk": [...],
    "rows": [[value, ...], ...], "deleted": []}`` (values normalised, in ``cols`` order)."""
    _, cols = _columns(table)
    spec = _spec(table)
    spec["rows"] = [[fn(r.get(name)) for name, fn in cols] for r in rows]
    return spec


def snapshot(
    conn: sa.Connection,
    table: str,
    where: Mapping[str, Any],
    keys: Iterable[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The rows of ``table`` matching ``where`` as they are now (see :func:`table_rows`);
    each primary key in ``keys`` that matches no row is listed in ``deleted``."""
    t = AUDITED[table]
    pk, cols = _columns(table)
    stmt = sa.select(*(t.c[name] for name, _ in cols)).where(
        *(t.c[k] == v for k, v in where.items())
    )
    spec = _spec(table)
    fns = [fn for _, fn in cols]
    spec["rows"] = [[fn(v) for fn, v in zip(fns, r, strict=True)] for r in conn.execute(stmt)]
    names = spec["cols"]
    present = {tuple(row[names.index(c)] for c in pk) for row in spec["rows"]}
    norm = dict(cols)
    for key in keys:
        pk_values = [norm[c](key[c]) for c in pk]
        if tuple(pk_values) not in present:
            spec["deleted"].append(pk_values)
    return spec


def deleted_rows(table: str, keys: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Rows of ``table`` deleted, by primary key, in the payload's form."""
    pk, cols = _columns(table)
    norm = dict(cols)
    spec = _spec(table)
    spec["deleted"] = [[norm[c](k[c]) for c in pk] for k in keys]
    return spec


def live_rows(conn: sa.Connection, table: str) -> Iterator[tuple[tuple[Any, ...], tuple[Any, ...]]]:
    """Every row of ``table`` as ``(primary key values, row values)`` in the order of
    :func:`columns`, normalised, streamed through the driver's cursor (10^6 rows a minute
    would not survive SQLAlchemy's row objects)."""
    pk, cols = _columns(table)
    names = [name for name, _ in cols]
    fns = [fn for _, fn in cols]
    pk_idx = [names.index(c) for c in pk]
    quoted = ", ".join(f'"{n}"' for n in names)
    cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cur.execute(f'SELECT {quoted} FROM "{table}"')
        while True:
            batch = cur.fetchmany(20_000)
            if not batch:
                break
            for raw in batch:
                vals = tuple([fn(v) for fn, v in zip(fns, raw, strict=True)])
                yield tuple([vals[i] for i in pk_idx]), vals
    finally:
        cur.close()


def columns(table: str) -> tuple[str, ...]:
    """The audited columns of ``table``, in the order rows are recorded."""
    return tuple(name for name, _ in _columns(table)[1])


def live_table(conn: sa.Connection, table: str) -> dict[str, Any]:
    """Every row of ``table`` in the payload's form (the baseline entry)."""
    t = AUDITED[table]
    _, cols = _columns(table)
    spec = _spec(table)
    fns = [fn for _, fn in cols]
    result = conn.execute(
        sa.select(*(t.c[name] for name, _ in cols)), execution_options={"yield_per": 10_000}
    )
    spec["rows"] = [[fn(v) for fn, v in zip(fns, r, strict=True)] for r in result]
    return spec
