"""The audit entries of changes outside batches: registry events, artifact versions and
aliases, lineage edges (run inputs), tokens, run files, object references, project and tag
edits. Each is called inside the change's write transaction, after the change, and records
the rows it touched as they now are (``None`` for a row it deleted)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from mltrail.store.sql.audit import record
from mltrail.store.sql.audit_rows import deleted_rows, snapshot, table_rows
from mltrail.store.sql.schema import artifacts, projects, registered_models

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = [
    "artifact_change",
    "model_event",
    "rows_change",
]

#: registry actions that move an alias: a checkpoint is signed after each
_ALIAS_ACTIONS = frozenset({"alias_set", "alias_moved", "alias_removed"})


def rows_change(
    conn: sa.Connection,
    action: str,
    subject: str,
    tables: Mapping[str, Mapping[str, Any]],
    *,
    deleted: Mapping[str, Iterable[Mapping[str, Any]]] | None = None,
    actor: str = "",
    checkpoint_reason: str | None = None,
) -> int:
    """Record the rows of each ``table`` matching its ``where`` (and the rows ``deleted``
    names by primary key, as gone when absent)."""
    rows: dict[str, dict[str, Any]] = {}
    for table, where in tables.items():
        rows[table] = snapshot(conn, table, where, (deleted or {}).get(table, ()))
    for table, keys in (deleted or {}).items():
        if table not in tables:
            rows[table] = deleted_rows(table, keys)
    return record(
        conn,
        action,
        subject,
        {"rows": rows},
        actor=actor,
        checkpoint_reason=checkpoint_reason,
    )


def model_event(
    conn: sa.Connection,
    model_id: str,
    seq: int,
    action: str,
    actor: str,
    version: int | None,
    alias: str | None,
) -> int:
    """The entry of one registry history event (alias moves also sign a checkpoint)."""
    mc, pc = registered_models.c, projects.c
    row = conn.execute(
        sa.select(mc.project_id, mc.name, pc.name.label("project"))
        .join(projects, pc.project_id == mc.project_id)
        .where(mc.model_id == model_id)
    ).one()
    tables: dict[str, dict[str, Any]] = {
        "projects": {"project_id": row.project_id},
        "registered_models": {"model_id": model_id},
        "model_history": {"model_id": model_id, "seq": seq},
    }
    deleted: dict[str, list[dict[str, Any]]] = {}
    if version is not None:
        tables["model_versions"] = {"model_id": model_id, "version": version}
        if action == "card_updated":
            tables["model_cards"] = {"model_id": model_id, "version": version}
    if alias is not None:
        tables["model_aliases"] = {"model_id": model_id, "alias": alias}
        deleted["model_aliases"] = [{"model_id": model_id, "alias": alias}]
    return rows_change(
        conn,
        f"model.{action}",
        f"model:{row.project}/{row.name}",
        tables,
        deleted=deleted,
        actor=actor,
        checkpoint_reason="alias" if action in _ALIAS_ACTIONS else None,
    )


def artifact_change(
    conn: sa.Connection,
    action: str,
    artifact_id: str,
    *,
    version: int | None = None,
    removed_alias: str | None = None,
) -> int:
    """The entry of an artifact version logged or an artifact alias set or removed."""
    ac, pc = artifacts.c, projects.c
    row = conn.execute(
        sa.select(ac.project_id, ac.name, pc.name.label("project"))
        .join(projects, pc.project_id == ac.project_id)
        .where(ac.artifact_id == artifact_id)
    ).one()
    tables: dict[str, dict[str, Any]] = {
        "projects": {"project_id": row.project_id},
        "artifacts": {"artifact_id": artifact_id},
        "artifact_aliases": {"artifact_id": artifact_id},
    }
    if version is not None:
        tables["artifact_versions"] = {"artifact_id": artifact_id, "version": version}
    deleted = {}
    if removed_alias is not None:
        deleted["artifact_aliases"] = [{"artifact_id": artifact_id, "alias": removed_alias}]
    return rows_change(
        conn, f"artifact.{action}", f"artifact:{row.project}/{row.name}", tables, deleted=deleted
    )


def inserted_rows(conn: sa.Connection, action: str, subject: str, table: str, rows: Any) -> int:
    """Record rows written from known values (``object_refs``: no read back)."""
    return record(conn, action, subject, {"rows": {table: table_rows(table, rows)}})
