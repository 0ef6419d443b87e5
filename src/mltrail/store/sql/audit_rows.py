"""Rows as the audit trail records them: canonical, rebuildable from the live database.

A change's entry carries, per table it wrote, ``{primary key: row}`` (``null``: the row was
deleted), each value normalised by its column's type (:func:`normalizer`): integers, floats,
booleans, text; bytes and text over :data:`LONG_TEXT` characters as their SHA-256 (the entry
stays small; the row is still pinned). ``audit verify`` normalises the live rows the same way
and compares. Derived tables (metric summaries, sketches, ingest cursors) and operational
columns (``runs.heartbeat_ms``) are left out; metric points are pinned by the digest of each
batch's columns instead (:mod:`mltrail.store.sql.audit`).
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from mltrail.store.sql import schema as s

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

__all__ = [
    "AUDITED",
    "LONG_TEXT",
    "canonical_rows",
    "live_rows",
    "normalizer",
    "pk_key",
    "row_value",
    "snapshot",
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
    return None if v is None else float(v)


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


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def pk_key(table: str, values: Mapping[str, Any]) -> str:
    """The canonical primary key of a row of ``table`` (a JSON list)."""
    pk, cols = _columns(table)
    norm = dict(cols)
    return _dumps([norm[c](values[c]) for c in pk])


def row_value(table: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """The recorded form of a row of ``table`` (audited columns, normalised)."""
    _, cols = _columns(table)
    return {name: fn(values.get(name)) for name, fn in cols}


def canonical_rows(table: str, rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """``{pk: row}`` of rows of ``table`` as written (every audited column present)."""
    return {pk_key(table, r): row_value(table, r) for r in rows}


def snapshot(
    conn: sa.Connection,
    table: str,
    where: Mapping[str, Any],
    keys: Iterable[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The rows of ``table`` matching ``where`` as they are now, ``{pk: row}``; each primary
    key in ``keys`` that matches no row is given as ``None`` (deleted)."""
    t = AUDITED[table]
    stmt = sa.select(t).where(*(t.c[k] == v for k, v in where.items()))
    out: dict[str, Any] = {}
    for key in keys:
        out[pk_key(table, key)] = None
    r: Any
    for r in conn.execute(stmt).mappings():
        out[pk_key(table, r)] = row_value(table, r)
    return out


def live_rows(conn: sa.Connection, table: str) -> Iterable[tuple[str, str]]:
    """Every row of ``table`` as ``(canonical pk, canonical row)``, streamed."""
    t = AUDITED[table]
    pk, cols = _columns(table)
    names = [name for name, _ in cols]
    fns = [fn for _, fn in cols]
    pk_idx = [names.index(c) for c in pk]
    result = conn.execute(
        sa.select(*(t.c[n] for n in names)), execution_options={"yield_per": 10_000}
    )
    for raw in result:
        vals = [fn(v) for fn, v in zip(fns, raw, strict=True)]
        yield _dumps([vals[i] for i in pk_idx]), _dumps(dict(zip(names, vals, strict=True)))
