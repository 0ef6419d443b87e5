"""The audit log's writes: append entries in the caller's transaction, sign checkpoints.

:func:`append` runs inside the transaction of the change it records, so the entry and the
change commit or vanish together. It reads the last entry (its sequence number and hash) and
inserts the next ones; SQLite's ``BEGIN IMMEDIATE`` already serialises writers, PostgreSQL
takes a transaction-scoped advisory lock first, so sequence numbers stay gapless under
concurrent writers. When the entries cross a multiple of ``MLTRAIL_AUDIT_CHECKPOINT_EVERY``
(or the change asks for one: a registry alias move), a checkpoint is signed once the
transaction has committed (:func:`checkpoint`; skipped when no key exists).
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from mltrail.audit.actor import current_actor
from mltrail.audit.entries import GENESIS, compact, digest, entry_hash
from mltrail.errors import StoreError
from mltrail.store.sql.driver import dialect_insert
from mltrail.store.sql.engine import after_commit, write_connection
from mltrail.store.sql.schema import audit_checkpoints, audit_log

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mltrail.audit.checkpoints import Checkpoint

__all__ = ["LOCK_KEY", "Change", "append", "checkpoint", "checkpoint_every", "record"]

#: the PostgreSQL advisory lock that serialises appends (an arbitrary constant)
LOCK_KEY = 74210115
_al = audit_log.c
_ac = audit_checkpoints.c
_LAST = sa.select(_al.seq, _al.hash).order_by(_al.seq.desc()).limit(1)
_LAST_SQL = "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1"
_COLUMNS = (
    "seq",
    "ts_ms",
    "actor",
    "action",
    "subject",
    "payload",
    "payload_digest",
    "blobs",
    "prev_hash",
    "hash",
)
_INSERT_SQL = f"INSERT INTO audit_log ({', '.join(_COLUMNS)}) VALUES ({{}})"


@dataclass(frozen=True, slots=True)
class Change:
    """One entry to append: what changed (``payload``, see audit_rows) and who did it."""

    action: str
    subject: str
    payload: dict[str, Any]
    blobs: tuple[str, ...] = ()
    actor: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def checkpoint_every() -> int:
    """``MLTRAIL_AUDIT_CHECKPOINT_EVERY`` (read now)."""
    from mltrail.settings import settings

    try:
        return settings().audit_checkpoint_every
    except ValueError:  # a bad setting is reported by `mltrail audit`; the trail goes on
        return 1000


def append(
    conn: sa.Connection,
    changes: Sequence[Change],
    *,
    every: int | None = None,
    checkpoint_reason: str | None = None,
) -> int:
    """Append ``changes`` to the log in ``conn``'s (write) transaction; the last sequence
    number. ``every``: the checkpoint interval (default: the setting, read now);
    ``checkpoint_reason``: sign a checkpoint after the commit whatever the count."""
    if not changes:
        return 0
    # the driver's own cursor, on the transaction's connection: this runs in every batch's
    # transaction, and SQLAlchemy's statement machinery costs more than the statements
    cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        return _append(conn, cur, changes, every, checkpoint_reason)
    except conn.dialect.loaded_dbapi.Error as exc:
        raise StoreError(f"appending to the audit log failed: {exc}") from exc
    finally:
        cur.close()


def _append(
    conn: sa.Connection,
    cur: Any,
    changes: Sequence[Change],
    every: int | None,
    checkpoint_reason: str | None,
) -> int:
    if conn.dialect.name == "postgresql":
        cur.execute(f"SELECT pg_advisory_xact_lock({LOCK_KEY})")
    cur.execute(_LAST_SQL)
    last = cur.fetchone()
    seq, prev = (int(last[0]), str(last[1])) if last is not None else (0, GENESIS)
    first = seq + 1
    now = time.time_ns() // 1_000_000
    rows = []
    for c in changes:
        seq += 1
        payload = compact(c.payload)
        pdig = digest(payload)
        actor = c.actor or current_actor()
        h = entry_hash(seq, now, actor, c.action, c.subject, pdig, c.blobs, prev)
        blobs = json.dumps(list(c.blobs)) if c.blobs else "[]"
        rows.append((seq, now, actor, c.action, c.subject, payload, pdig, blobs, prev, h))
        prev = h
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    insert = _INSERT_SQL.format(", ".join([mark] * len(_COLUMNS)))
    if len(rows) == 1:
        cur.execute(insert, rows[0])
    else:
        cur.executemany(insert, rows)
    n = every if every is not None else checkpoint_every()
    reason = checkpoint_reason
    if reason is None and seq // n > (first - 1) // n:
        reason = "every"
    if reason is not None:
        engine = conn.engine
        after_commit(conn, lambda: _checkpoint_quietly(engine, reason))
    return seq


def record(
    conn: sa.Connection,
    action: str,
    subject: str,
    payload: dict[str, Any],
    *,
    actor: str = "",
    blobs: tuple[str, ...] = (),
    checkpoint_reason: str | None = None,
) -> int:
    """Append one entry (see :func:`append`)."""
    return append(
        conn,
        [Change(action, subject, payload, blobs, actor)],
        checkpoint_reason=checkpoint_reason,
    )


def _checkpoint_quietly(engine: sa.Engine, reason: str) -> None:
    try:
        checkpoint(engine, reason)
    except Exception as exc:  # the change is committed; a missed checkpoint is retried later
        warnings.warn(f"audit checkpoint not written: {exc}", RuntimeWarning, stacklevel=2)


def checkpoint(
    engine: sa.Engine, reason: str = "manual", *, key_path: Any = None, offbox: str | None = None
) -> Checkpoint | None:
    """Sign a checkpoint of the whole log now, keep it in the store and write it off-box
    (``offbox``, default ``MLTRAIL_AUDIT_CHECKPOINTS``); None when there is no key (or the
    log is empty). The latest checkpoint is returned again when no entry came since."""
    from pathlib import Path

    from mltrail.audit.checkpoints import Checkpoint, sign_checkpoint, write_offbox
    from mltrail.audit.keys import default_key_path, load_private_key
    from mltrail.audit.merkle import Frontier, leaf_hash
    from mltrail.settings import settings

    path = Path(key_path) if key_path is not None else default_key_path()
    if not path.exists():
        return None
    priv = load_private_key(path)
    with engine.connect() as conn:
        latest = conn.execute(
            sa.select(audit_checkpoints).order_by(_ac.tree_size.desc()).limit(1)
        ).first()
        last = conn.execute(_LAST).first()
        if last is None:
            return None
        size, head = int(last[0]), str(last[1])
        if latest is not None and int(latest.tree_size) == size:
            return Checkpoint(
                int(latest.tree_size),
                latest.root,
                int(latest.timestamp_ms),
                latest.key_id,
                latest.signature,
                latest.head_hash,
                latest.reason,
            )
        frontier, start = Frontier(), 1
        if latest is not None and int(latest.tree_size) < size:
            try:
                nodes = [bytes.fromhex(h) for h in json.loads(latest.frontier)]
                frontier = Frontier(int(latest.tree_size), nodes)
                start = int(latest.tree_size) + 1
            except (ValueError, TypeError):
                frontier, start = Frontier(), 1
        hashes = conn.execute(
            sa.select(_al.hash).where(_al.seq >= start, _al.seq <= size).order_by(_al.seq),
            execution_options={"yield_per": 50_000},
        )
        for (h,) in hashes:
            frontier.push(leaf_hash(bytes.fromhex(h)))
    if frontier.size != size:
        raise RuntimeError(f"the audit log has a gap before entry {size}")
    now = time.time_ns() // 1_000_000
    cp = sign_checkpoint(priv, size, frontier.root().hex(), now, head, reason)
    with write_connection(engine) as conn:
        ins = dialect_insert(conn)(audit_checkpoints).on_conflict_do_nothing(
            index_elements=["tree_size"]
        )
        conn.execute(
            ins.values(**cp.to_dict(), frontier=json.dumps([n.hex() for n in frontier.nodes]))
        )
    target = offbox if offbox is not None else settings().audit_checkpoints
    if target:
        write_offbox(cp, target)
    return cp
