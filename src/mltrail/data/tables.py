"""What changed inside a table: schema, row count and per-column statistics, before and after.

Parquet (``.parquet``, ``.pq``) and CSV/TSV (``.csv``, ``.tsv``, also gzip/bz2-compressed) are
read with pyarrow (the ``tables`` extra). Per column: null count, min, max, mean (numbers and
booleans) and the number of distinct values (exact up to :data:`DISTINCT_EXACT_ROWS` rows,
estimated from a sample above). A Parquet file larger than :data:`FULL_READ_BYTES` is
summarised from its footer statistics (rows, nulls, min/max) without reading the data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mltrail.errors import InvalidArgumentError, MissingExtraError

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "TABLE_SUFFIXES",
    "ColumnStats",
    "TableDiff",
    "TableStats",
    "diff_tables",
    "is_table",
    "require_pyarrow",
    "table_stats",
]

TABLE_SUFFIXES = (".parquet", ".pq", ".csv", ".tsv", ".csv.gz", ".tsv.gz", ".csv.bz2")
FULL_READ_BYTES = 1 << 30
DISTINCT_EXACT_ROWS = 5_000_000
_SAMPLE_ROWS = 1_000_000


def require_pyarrow() -> Any:
    """Import pyarrow, or raise :class:`MissingExtraError` naming the extra."""
    try:
        import pyarrow
    except ImportError:
        raise MissingExtraError(
            "comparing tables needs pyarrow: pip install 'mltrail[tables]'"
        ) from None
    return pyarrow


def is_table(name: str) -> bool:
    """Whether ``name`` looks like a table mltrail can summarise."""
    return name.lower().endswith(TABLE_SUFFIXES)


@dataclass(slots=True)
class ColumnStats:
    """One column's statistics (None where not applicable or not known)."""

    type: str
    nulls: int | None = None
    min: Any = None
    max: Any = None
    mean: float | None = None
    distinct: int | None = None
    distinct_exact: bool = True


@dataclass(slots=True)
class TableStats:
    """A table's row count and columns (in schema order)."""

    rows: int
    columns: dict[str, ColumnStats] = field(default_factory=dict)
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able."""
        return {
            "rows": self.rows,
            "columns": {
                name: {
                    "type": c.type,
                    "nulls": c.nulls,
                    "min": c.min,
                    "max": c.max,
                    "mean": c.mean,
                    "distinct": c.distinct,
                    "distinct_exact": c.distinct_exact,
                }
                for name, c in self.columns.items()
            },
            **({"note": self.note} if self.note else {}),
        }


def _py(value: Any) -> Any:
    """A pyarrow scalar's value as JSON-able Python (dates as ISO text, bytes as text)."""
    v = value.as_py() if hasattr(value, "as_py") else value
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else str(v)
    if isinstance(v, bytes):
        return v[:64].decode("utf-8", "replace")
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return str(v)


def _read(path: Path, name: str) -> Any:
    pa = require_pyarrow()
    lower = name.lower()
    try:
        if lower.endswith((".parquet", ".pq")):
            import pyarrow.parquet as pq

            return pq.read_table(path)
        import pyarrow.csv as pcsv

        delimiter = "\t" if ".tsv" in lower else ","
        stream = path
        if lower.endswith((".gz", ".bz2")):
            codec = "gzip" if lower.endswith(".gz") else "bz2"
            with pa.input_stream(str(path), compression=codec) as fh:
                return pcsv.read_csv(fh, parse_options=pcsv.ParseOptions(delimiter=delimiter))
        return pcsv.read_csv(stream, parse_options=pcsv.ParseOptions(delimiter=delimiter))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
        raise InvalidArgumentError(f"{name}: cannot be read as a table ({exc})") from None


def _column_stats(column: Any) -> ColumnStats:
    import pyarrow as pa
    import pyarrow.compute as pc

    stats = ColumnStats(type=str(column.type), nulls=column.null_count)
    t = column.type
    orderable = (
        pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_decimal(t)
        or pa.types.is_temporal(t)
        or pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_boolean(t)
    )
    if orderable and len(column) > column.null_count:
        mm = pc.min_max(column)
        stats.min, stats.max = _py(mm["min"]), _py(mm["max"])
        if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t):
            mean = pc.mean(column).as_py()
            stats.mean = float(mean) if mean is not None and math.isfinite(mean) else None
    hashable = not (pa.types.is_nested(t) or pa.types.is_dictionary(t))
    if hashable:
        if len(column) <= DISTINCT_EXACT_ROWS:
            stats.distinct = int(pc.count_distinct(column, mode="all").as_py())
        else:
            sample = column.slice(0, _SAMPLE_ROWS)
            seen = int(pc.count_distinct(sample, mode="all").as_py())
            # a sample that is mostly distinct scales up; a low-cardinality one does not
            scale = len(column) / len(sample) if seen > 0.5 * len(sample) else 1.0
            stats.distinct = round(seen * scale)
            stats.distinct_exact = False
    return stats


def _parquet_footer_stats(path: Path) -> TableStats:
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    schema = meta.schema.to_arrow_schema()
    out = TableStats(rows=meta.num_rows, note="large file: statistics from the Parquet footer")
    for i, fld in enumerate(schema):
        col = ColumnStats(type=str(fld.type), distinct=None)
        nulls: int | None = 0
        lo = hi = None
        for rg in range(meta.num_row_groups):
            st = meta.row_group(rg).column(i).statistics if i < meta.num_columns else None
            if st is None or not st.has_min_max:
                nulls = None if st is None else nulls
                continue
            if nulls is not None and st.has_null_count:
                nulls += st.null_count
            lo = st.min if lo is None else min(lo, st.min)
            hi = st.max if hi is None else max(hi, st.max)
        col.nulls, col.min, col.max = nulls, _py(lo), _py(hi)
        out.columns[fld.name] = col
    return out


def table_stats(path: Path, name: str | None = None) -> TableStats:
    """Summarise the table at ``path`` (``name`` says its format when ``path`` has no suffix).

    Raises:
        MissingExtraError: pyarrow is not installed.
        InvalidArgumentError: the file does not parse as a table of its format.
    """
    name = name or path.name
    require_pyarrow()
    lower = name.lower()
    if lower.endswith((".parquet", ".pq")) and path.stat().st_size > FULL_READ_BYTES:
        return _parquet_footer_stats(path)
    table = _read(path, name)
    out = TableStats(rows=table.num_rows)
    for fld, column in zip(table.schema, table.columns, strict=True):
        out.columns[fld.name] = _column_stats(column)
    return out


@dataclass(slots=True)
class TableDiff:
    """A table before (``a``) and after (``b``); either is None when the file is absent."""

    path: str
    a: TableStats | None
    b: TableStats | None
    schema_changes: list[dict[str, Any]] = field(default_factory=list)
    column_changes: list[str] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able."""
        rows_a = self.a.rows if self.a else None
        rows_b = self.b.rows if self.b else None
        delta = rows_b - rows_a if rows_a is not None and rows_b is not None else None
        return {
            "path": self.path,
            "rows": {"a": rows_a, "b": rows_b, "delta": delta},
            "schema_changes": self.schema_changes,
            "columns_changed": self.column_changes,
            "a": self.a.to_dict() if self.a else None,
            "b": self.b.to_dict() if self.b else None,
            **({"error": self.error} if self.error else {}),
        }


def diff_tables(path: str, a: TableStats | None, b: TableStats | None) -> TableDiff:
    """Compare two summaries of the table at ``path``: schema changes, changed columns."""
    out = TableDiff(path, a, b)
    cols_a = a.columns if a else {}
    cols_b = b.columns if b else {}
    if a is not None and b is not None:
        for name in cols_a.keys() - cols_b.keys():
            out.schema_changes.append({"column": name, "change": "removed", "a": cols_a[name].type})
        for name in cols_b.keys() - cols_a.keys():
            out.schema_changes.append({"column": name, "change": "added", "b": cols_b[name].type})
        for name in cols_a.keys() & cols_b.keys():
            ca, cb = cols_a[name], cols_b[name]
            if ca.type != cb.type:
                out.schema_changes.append(
                    {"column": name, "change": "type", "a": ca.type, "b": cb.type}
                )
            fields = ("nulls", "min", "max", "mean", "distinct")
            if any(getattr(ca, f) != getattr(cb, f) for f in fields):
                out.column_changes.append(name)
        out.schema_changes.sort(key=lambda c: str(c["column"]))
        out.column_changes.sort()
    return out
