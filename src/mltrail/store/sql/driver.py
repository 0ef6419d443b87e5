"""What every SQL module shares: driver errors wrapped at the edge, the dialect's insert.

No SQLAlchemy exception leaves ``store/sql/``: each operation runs inside
:func:`driver_errors`, which turns it into :class:`~mltrail.errors.StoreError` naming the
operation, with the driver's exception chained.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from sqlalchemy import exc as sa_exc

from mltrail.errors import MltrailError, StoreError

if TYPE_CHECKING:
    from collections.abc import Iterator

    import sqlalchemy as sa

__all__ = ["dialect_insert", "driver_errors"]


@contextlib.contextmanager
def driver_errors(action: str) -> Iterator[None]:
    """Wrap driver exceptions in StoreError, chaining the original."""
    try:
        yield
    except MltrailError:
        raise
    except sa_exc.SQLAlchemyError as exc:
        detail = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise StoreError(f"{action} failed: {detail}") from exc


def dialect_insert(conn: sa.Connection) -> Any:
    """The dialect's ``insert`` (with ``on_conflict_do_*``)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert
