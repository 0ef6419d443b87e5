"""Reads of the SQL model registry: a model, its versions (with aliases and current card).

Shared by :mod:`mltrail.store.sql.registry`'s reads and the records its writes return.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from mltrail.errors import AmbiguousIdError, NotFoundError
from mltrail.registry.records import ModelVersion, RegisteredModel
from mltrail.store.sql.schema import (
    artifact_versions,
    artifacts,
    model_aliases,
    model_cards,
    model_versions,
    projects,
    registered_models,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["alias_version", "load_model", "find_model", "one_version", "versions"]

mc, mv, ma, mk = registered_models.c, model_versions.c, model_aliases.c, model_cards.c
pc, ac, avc = projects.c, artifacts.c, artifact_versions.c


def loads(text: str | None, default: Any) -> Any:
    """A stored JSON document, or ``default`` when absent or unreadable."""
    if text is None:
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default


def find_model(conn: sa.Connection, project: str | None, name: str) -> str:
    stmt = (
        sa.select(mc.model_id, pc.name)
        .join(projects, pc.project_id == mc.project_id)
        .where(mc.name == name)
    )
    if project is not None:
        stmt = stmt.where(pc.name == project)
    rows = conn.execute(stmt.limit(20)).all()
    if not rows:
        where = f" in project {project!r}" if project is not None else ""
        raise NotFoundError(f"no model named {name!r}{where}")
    if len(rows) > 1:
        listed = ", ".join(sorted(f"{r[1]}/{name}" for r in rows))
        raise AmbiguousIdError(f"model {name!r} exists in several projects ({listed})")
    return str(rows[0][0])


def alias_version(conn: sa.Connection, model_id: str, alias: str) -> int | None:
    got = conn.execute(
        sa.select(ma.version).where(ma.model_id == model_id, ma.alias == alias)
    ).scalar()
    return None if got is None else int(got)


def load_model(conn: sa.Connection, model_id: str) -> RegisteredModel:
    r = conn.execute(
        sa.select(registered_models, pc.name.label("project"))
        .join(projects, pc.project_id == mc.project_id)
        .where(mc.model_id == model_id)
    ).one()
    top, count = conn.execute(
        sa.select(sa.func.max(mv.version), sa.func.count()).where(mv.model_id == model_id)
    ).one()
    aliases = conn.execute(
        sa.select(ma.alias, ma.version).where(ma.model_id == model_id).order_by(ma.alias)
    ).all()
    return RegisteredModel(
        project=r.project,
        name=r.name,
        description=r.description,
        owner=r.owner,
        tags=loads(r.tags, {}),
        archived=bool(r.archived),
        created_ms=int(r.created_ms),
        updated_ms=int(r.updated_ms),
        latest_version=int(top or 0),
        version_count=int(count),
        aliases={str(a): int(v) for a, v in aliases},
    )


def one_version(conn: sa.Connection, model_id: str, name: str, version: int) -> ModelVersion:
    found = versions(conn, model_id, [version])
    if not found:
        raise NotFoundError(f"model {name!r} has no version {version}")
    return found[0]


def versions(
    conn: sa.Connection, model_id: str, versions: Sequence[int] | None
) -> list[ModelVersion]:
    stmt = (
        sa.select(
            model_versions,
            mc.name.label("model_name"),
            pc.name.label("project"),
            ac.name.label("artifact_name"),
            avc.kind,
            avc.size,
            avc.file_count,
        )
        .join(registered_models, mc.model_id == mv.model_id)
        .join(projects, pc.project_id == mc.project_id)
        .join(artifacts, ac.artifact_id == mv.artifact_id)
        .join(
            artifact_versions,
            sa.and_(avc.artifact_id == mv.artifact_id, avc.version == mv.artifact_version),
        )
        .where(mv.model_id == model_id)
        .order_by(mv.version)
    )
    if versions is not None:
        stmt = stmt.where(mv.version.in_(list(versions)))
    rows = conn.execute(stmt).all()
    if not rows:
        return []
    top = max(
        int(x) for x in conn.execute(sa.select(mv.version).where(mv.model_id == model_id)).scalars()
    )
    aliases: dict[int, list[str]] = defaultdict(list)
    aliases[top].append("latest")
    for a, v in conn.execute(sa.select(ma.alias, ma.version).where(ma.model_id == model_id)):
        aliases[int(v)].append(str(a))
    latest_card = (
        sa.select(mk.version, sa.func.max(mk.revision).label("rev"))
        .where(mk.model_id == model_id)
        .group_by(mk.version)
        .subquery()
    )
    cards = {
        int(r.version): (int(r.revision), loads(r.data, {}))
        for r in conn.execute(
            sa.select(mk.version, mk.revision, mk.data)
            .join(
                latest_card,
                sa.and_(latest_card.c.version == mk.version, latest_card.c.rev == mk.revision),
            )
            .where(mk.model_id == model_id)
        )
    }
    out = []
    for r in rows:
        rev, card = cards.get(int(r.version), (0, {}))
        out.append(
            ModelVersion(
                project=r.project,
                name=r.model_name,
                version=int(r.version),
                artifact=f"{r.artifact_name}:v{int(r.artifact_version)}",
                digest=r.digest,
                kind=r.kind,
                size=int(r.size),
                file_count=int(r.file_count),
                run_id=r.run_id,
                signature=loads(r.signature, {}),
                metadata=loads(r.meta, {}),
                description=r.description,
                archived=bool(r.archived),
                created_ms=int(r.created_ms),
                created_by=r.created_by,
                card=card,
                card_revision=rev,
                aliases=tuple(sorted(aliases.get(int(r.version), []))),
            )
        )
    return out
