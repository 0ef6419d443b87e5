"""``SqlModelRegistry``: the :class:`~mltrail.registry.base.ModelRegistry` on SQLAlchemy Core.

Every mutation runs in one write transaction that first locks the model's row (``SELECT ...
FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` already serialises writers), then
reads what it is about to change, changes it and appends the history event (``seq`` =
``max + 1`` under the same lock). So version numbers have no gaps, an alias move with an
expected version is a compare-and-set, and no change is ever committed without its event.
A model row is created with ``INSERT ... ON CONFLICT DO NOTHING`` and read back, so
concurrent first registrations agree on it.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import sqlalchemy as sa

from mltrail._validation import check_key
from mltrail.artifacts.records import check_metadata
from mltrail.errors import (
    AlreadyExistsError,
    InvalidArgumentError,
    NotFoundError,
    VersionConflictError,
)
from mltrail.registry.records import (
    MAX_DESCRIPTION_CHARS,
    HistoryEvent,
    ModelRef,
    ModelVersion,
    NewModelVersion,
    RegisteredModel,
    check_card,
    check_model_alias,
    check_model_name,
    check_reason,
    check_tags,
    check_text,
    check_version_number,
    dumps,
    parse_model_ref,
)
from mltrail.store.sql.driver import dialect_insert, driver_errors
from mltrail.store.sql.engine import write_connection
from mltrail.store.sql.registry_reads import (
    alias_version,
    find_model,
    load_model,
    loads,
    one_version,
    versions,
)
from mltrail.store.sql.schema import (
    artifact_versions,
    artifacts,
    model_aliases,
    model_cards,
    model_history,
    model_versions,
    projects,
    registered_models,
    runs,
)

__all__ = ["SqlModelRegistry"]

_MAX_HISTORY = 100_000
mc, mv, ma, mk, mh = (
    registered_models.c,
    model_versions.c,
    model_aliases.c,
    model_cards.c,
    model_history.c,
)
pc, ac, avc, rc = projects.c, artifacts.c, artifact_versions.c, runs.c


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class SqlModelRegistry:
    """The model registry of an SQL tracking store (shares its engine)."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    # -- models ---------------------------------------------------------------------------

    def create_model(
        self,
        project: str,
        name: str,
        *,
        description: str = "",
        owner: str = "",
        tags: dict[str, str] | None = None,
        actor: str = "",
        reason: str = "",
    ) -> RegisteredModel:
        project, name = check_key(project, "project"), check_model_name(name)
        fields = {
            "description": check_text(description, "description", MAX_DESCRIPTION_CHARS),
            "owner": check_text(owner, "owner", 250),
            "tags": check_tags(tags),
        }
        actor, reason = check_text(actor, "actor", 250), check_reason(reason)
        with driver_errors(f"creating model {name!r}"), write_connection(self._engine) as conn:
            model_id, created = _ensure_model(conn, project, name, _now_ms(), fields)
            if not created:
                raise AlreadyExistsError(f"model {name!r} already exists in project {project!r}")
            _event(conn, model_id, actor, "model_created", reason, None, fields)
            return load_model(conn, model_id)

    def update_model(
        self,
        project: str,
        name: str,
        *,
        description: str | None = None,
        owner: str | None = None,
        tags: dict[str, str] | None = None,
        actor: str = "",
        reason: str = "",
    ) -> RegisteredModel:
        wanted: dict[str, Any] = {}
        if description is not None:
            wanted["description"] = check_text(description, "description", MAX_DESCRIPTION_CHARS)
        if owner is not None:
            wanted["owner"] = check_text(owner, "owner", 250)
        if tags is not None:
            wanted["tags"] = check_tags(tags)
        actor, reason = check_text(actor, "actor", 250), check_reason(reason)
        with driver_errors(f"updating model {name!r}"), write_connection(self._engine) as conn:
            row = _lock(conn, project, name)
            current = {
                "description": row.description,
                "owner": row.owner,
                "tags": loads(row.tags, {}),
            }
            before = {k: current[k] for k in wanted if current[k] != wanted[k]}
            after = {k: wanted[k] for k in before}
            if after:
                values = {k: dumps(v) if k == "tags" else v for k, v in after.items()}
                conn.execute(
                    registered_models.update()
                    .where(mc.model_id == row.model_id)
                    .values(updated_ms=_now_ms(), **values)
                )
                _event(conn, row.model_id, actor, "model_updated", reason, before, after)
            return load_model(conn, row.model_id)

    def set_model_archived(
        self, project: str, name: str, archived: bool, *, actor: str = "", reason: str = ""
    ) -> RegisteredModel:
        actor, reason = check_text(actor, "actor", 250), check_reason(reason)
        with driver_errors(f"archiving model {name!r}"), write_connection(self._engine) as conn:
            row = _lock(conn, project, name)
            if bool(row.archived) != bool(archived):
                conn.execute(
                    registered_models.update()
                    .where(mc.model_id == row.model_id)
                    .values(archived=bool(archived), updated_ms=_now_ms())
                )
                action = "model_archived" if archived else "model_restored"
                _event(
                    conn,
                    row.model_id,
                    actor,
                    action,
                    reason,
                    {"archived": bool(row.archived)},
                    {"archived": bool(archived)},
                )
            return load_model(conn, row.model_id)

    def get_model(self, project: str, name: str) -> RegisteredModel:
        with driver_errors(f"reading model {name!r}"), self._engine.connect() as conn:
            return load_model(conn, find_model(conn, project, name))

    def list_models(
        self, project: str | None = None, *, include_archived: bool = False
    ) -> list[RegisteredModel]:
        stmt = sa.select(mc.model_id).join(projects, pc.project_id == mc.project_id)
        if project is not None:
            stmt = stmt.where(pc.name == project)
        if not include_archived:
            stmt = stmt.where(mc.archived == sa.false())
        with driver_errors("listing models"), self._engine.connect() as conn:
            ids = [str(x) for x in conn.execute(stmt.order_by(pc.name, mc.name)).scalars()]
            return [load_model(conn, i) for i in ids]

    # -- versions -------------------------------------------------------------------------

    def register_version(self, new: NewModelVersion) -> ModelVersion:
        new = new.checked()
        now = _now_ms()
        with (
            driver_errors(f"registering a version of {new.name!r}"),
            write_connection(self._engine) as conn,
        ):
            art = conn.execute(
                sa.select(avc.artifact_id, avc.digest, avc.run_id)
                .join(artifacts, ac.artifact_id == avc.artifact_id)
                .join(projects, pc.project_id == ac.project_id)
                .where(
                    pc.name == new.project,
                    ac.name == new.artifact_name,
                    avc.version == new.artifact_version,
                )
            ).first()
            if art is None:
                raise NotFoundError(
                    f"artifact {new.artifact_name}:v{new.artifact_version} does not exist in "
                    f"project {new.project!r}"
                )
            run_id = new.run_id if new.run_id is not None else art.run_id
            if new.run_id is not None:
                _check_run(conn, new.run_id, new.project)
            model_id, created = _ensure_model(conn, new.project, new.name, now, {})
            top = conn.execute(
                sa.select(sa.func.max(mv.version)).where(mv.model_id == model_id)
            ).scalar()
            version = int(top or 0) + 1
            conn.execute(
                model_versions.insert().values(
                    model_id=model_id,
                    version=version,
                    artifact_id=art.artifact_id,
                    artifact_version=new.artifact_version,
                    digest=art.digest,
                    run_id=run_id,
                    signature=dumps(new.signature),
                    meta=dumps(new.metadata),
                    description=new.description,
                    archived=False,
                    created_ms=now,
                    created_by=new.actor,
                )
            )
            after = {
                "artifact": f"{new.artifact_name}:v{new.artifact_version}",
                "digest": art.digest,
                "run_id": run_id,
            }
            if created:
                after["model_created"] = True
            _event(conn, model_id, new.actor, "version_created", new.reason, None, after, version)
            return versions(conn, model_id, [version])[0]

    def get_version(self, project: str, name: str, version: int) -> ModelVersion:
        version = check_version_number(version)
        with driver_errors(f"reading {name} v{version}"), self._engine.connect() as conn:
            return one_version(conn, find_model(conn, project, name), name, version)

    def list_versions(self, project: str, name: str) -> list[ModelVersion]:
        with driver_errors(f"listing versions of {name!r}"), self._engine.connect() as conn:
            return versions(conn, find_model(conn, project, name), None)

    def set_version_archived(
        self,
        project: str,
        name: str,
        version: int,
        archived: bool,
        *,
        actor: str = "",
        reason: str = "",
    ) -> ModelVersion:
        version = check_version_number(version)
        actor, reason = check_text(actor, "actor", 250), check_reason(reason)
        with driver_errors(f"archiving {name} v{version}"), write_connection(self._engine) as conn:
            row = _lock(conn, project, name)
            current = one_version(conn, row.model_id, name, version)
            if current.archived == bool(archived):
                return current
            held = [a for a in current.aliases if a != "latest"]
            if archived and held:
                raise InvalidArgumentError(
                    f"model {name!r} v{version} holds the aliases {', '.join(held)}; "
                    "move or remove them before archiving it"
                )
            conn.execute(
                model_versions.update()
                .where(mv.model_id == row.model_id, mv.version == version)
                .values(archived=bool(archived))
            )
            action = "version_archived" if archived else "version_restored"
            _event(
                conn,
                row.model_id,
                actor,
                action,
                reason,
                {"archived": current.archived},
                {"archived": bool(archived)},
                version,
            )
            return one_version(conn, row.model_id, name, version)

    # -- aliases --------------------------------------------------------------------------

    def set_alias(
        self,
        project: str,
        name: str,
        alias: str,
        version: int,
        *,
        expected_version: int | None = None,
        actor: str = "",
        reason: str = "",
        override: dict[str, Any] | None = None,
    ) -> ModelVersion:
        alias, version = check_model_alias(alias), check_version_number(version)
        actor, reason = check_text(actor, "actor", 250), check_reason(reason)
        extra = {} if override is None else {"override": check_metadata(override)}
        with driver_errors(f"setting alias {alias!r}"), write_connection(self._engine) as conn:
            row = _lock(conn, project, name)
            target = one_version(conn, row.model_id, name, version)
            if target.archived:
                raise InvalidArgumentError(
                    f"model {name!r} v{version} is archived; restore it before aliasing it"
                )
            current = alias_version(conn, row.model_id, alias)
            _expect(name, alias, current, expected_version)
            if current == version and not extra:
                return target
            values = {"model_id": row.model_id, "alias": alias, "version": version}
            ins = dialect_insert(conn)(model_aliases).values(updated_ms=_now_ms(), **values)
            conn.execute(
                ins.on_conflict_do_update(
                    index_elements=["model_id", "alias"],
                    set_={"version": ins.excluded.version, "updated_ms": ins.excluded.updated_ms},
                )
            )
            action = "alias_set" if current is None else "alias_moved"
            before = None if current is None else {"version": current}
            after = {"version": version, **extra}
            _event(conn, row.model_id, actor, action, reason, before, after, version, alias)
            return one_version(conn, row.model_id, name, version)

    def remove_alias(
        self,
        project: str,
        name: str,
        alias: str,
        *,
        expected_version: int | None = None,
        actor: str = "",
        reason: str = "",
    ) -> bool:
        alias = check_model_alias(alias)
        actor, reason = check_text(actor, "actor", 250), check_reason(reason)
        with driver_errors(f"removing alias {alias!r}"), write_connection(self._engine) as conn:
            row = _lock(conn, project, name)
            current = alias_version(conn, row.model_id, alias)
            _expect(name, alias, current, expected_version)
            if current is None:
                return False
            conn.execute(
                model_aliases.delete().where(ma.model_id == row.model_id, ma.alias == alias)
            )
            before = {"version": current}
            _event(conn, row.model_id, actor, "alias_removed", reason, before, None, current, alias)
            return True

    def resolve(self, ref: ModelRef | str, project: str | None = None) -> ModelVersion:
        parsed = ref if isinstance(ref, ModelRef) else parse_model_ref(ref)
        scope = parsed.project or project
        with driver_errors(f"resolving {parsed}"), self._engine.connect() as conn:
            model_id = find_model(conn, scope, parsed.name)
            if parsed.version is not None:
                return one_version(conn, model_id, parsed.name, parsed.version)
            if parsed.alias is not None:
                got = alias_version(conn, model_id, parsed.alias)
                if got is None:
                    known = conn.execute(
                        sa.select(ma.alias).where(ma.model_id == model_id).order_by(ma.alias)
                    ).scalars()
                    names = ", ".join(["latest", *known])
                    raise NotFoundError(
                        f"model {parsed.name!r} has no alias {parsed.alias!r} (its aliases: "
                        f"{names})"
                    )
                return one_version(conn, model_id, parsed.name, got)
            top = conn.execute(
                sa.select(sa.func.max(mv.version)).where(mv.model_id == model_id)
            ).scalar()
            if top is None:
                raise NotFoundError(f"model {parsed.name!r} has no versions")
            return one_version(conn, model_id, parsed.name, int(top))

    # -- cards and history ----------------------------------------------------------------

    def update_card(
        self,
        project: str,
        name: str,
        version: int,
        card: dict[str, Any],
        *,
        actor: str = "",
        reason: str = "",
    ) -> ModelVersion:
        version, card = check_version_number(version), check_card(card)
        actor, reason = check_text(actor, "actor", 250), check_reason(reason)
        with (
            driver_errors(f"updating the card of {name} v{version}"),
            write_connection(self._engine) as conn,
        ):
            row = _lock(conn, project, name)
            current = one_version(conn, row.model_id, name, version)
            if current.card == card and current.card_revision > 0:
                return current
            revision = current.card_revision + 1
            conn.execute(
                model_cards.insert().values(
                    model_id=row.model_id,
                    version=version,
                    revision=revision,
                    data=dumps(card),
                    created_ms=_now_ms(),
                    actor=actor,
                )
            )
            changed = sorted(
                k for k in {*card, *current.card} if card.get(k) != current.card.get(k)
            )
            before = {k: current.card.get(k) for k in changed}
            after = {"revision": revision, **{k: card.get(k) for k in changed}}
            _event(conn, row.model_id, actor, "card_updated", reason, before, after, version)
            return one_version(conn, row.model_id, name, version)

    def history(self, project: str, name: str, *, limit: int = 1000) -> list[HistoryEvent]:
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= _MAX_HISTORY:
            raise InvalidArgumentError(f"history limit must be 1..{_MAX_HISTORY}, got {limit!r}")
        with driver_errors(f"reading the history of {name!r}"), self._engine.connect() as conn:
            model_id = find_model(conn, project, name)
            meta = conn.execute(
                sa.select(mc.name, pc.name.label("project"))
                .join(projects, pc.project_id == mc.project_id)
                .where(mc.model_id == model_id)
            ).one()
            rows = conn.execute(
                sa.select(model_history)
                .where(mh.model_id == model_id)
                .order_by(mh.seq.desc())
                .limit(limit)
            ).all()
        return [
            HistoryEvent(
                project=meta.project,
                name=meta.name,
                seq=int(r.seq),
                created_ms=int(r.created_ms),
                actor=r.actor,
                action=r.action,
                version=None if r.version is None else int(r.version),
                alias=r.alias,
                reason=r.reason,
                before=loads(r.before, None),
                after=loads(r.after, None),
            )
            for r in reversed(rows)
        ]


# -- helpers ------------------------------------------------------------------------------


def _expect(name: str, alias: str, current: int | None, expected: int | None) -> None:
    if expected is None:
        return
    expected = 0 if expected == 0 else check_version_number(expected, "expected version")
    if (current or 0) != expected:
        now = f"v{current}" if current is not None else "not set"
        wanted = f"v{expected}" if expected else "not set"
        raise VersionConflictError(
            f"alias {alias!r} of model {name!r} is {now} (current version: "
            f"{current if current is not None else 'none'}), not {wanted} as expected; "
            "another change moved it first"
        )


def _check_run(conn: sa.Connection, run_id: str, project: str) -> None:
    found = conn.execute(
        sa.select(pc.name)
        .select_from(runs)
        .join(projects, pc.project_id == rc.project_id)
        .where(rc.run_id == run_id)
    ).scalar()
    if found != project:
        raise NotFoundError(f"run {run_id!r} does not exist in project {project!r}")


def _ensure_model(
    conn: sa.Connection, project: str, name: str, now: int, fields: dict[str, Any]
) -> tuple[str, bool]:
    """The model's id, locked, and whether this call created it."""
    project_id = conn.execute(sa.select(pc.project_id).where(pc.name == project)).scalar()
    if project_id is None:
        ins = dialect_insert(conn)(projects).on_conflict_do_nothing(index_elements=["name"])
        conn.execute(ins.values(project_id=secrets.token_hex(8), name=project, created_ms=now))
        project_id = conn.execute(sa.select(pc.project_id).where(pc.name == project)).scalar_one()
    ins = dialect_insert(conn)(registered_models).on_conflict_do_nothing(
        index_elements=["project_id", "name"]
    )
    inserted = conn.execute(
        ins.returning(mc.model_id).values(
            model_id=secrets.token_hex(8),
            project_id=project_id,
            name=name,
            description=fields.get("description", ""),
            owner=fields.get("owner", ""),
            tags=dumps(fields.get("tags", {})),
            archived=False,
            created_ms=now,
            updated_ms=now,
        )
    )
    created = inserted.first() is not None
    return _lock(conn, project, name).model_id, created


def _lock(conn: sa.Connection, project: str, name: str) -> Any:
    """The model's row, locked for this transaction (PostgreSQL: ``FOR UPDATE``)."""
    stmt = (
        sa.select(mc.model_id, mc.description, mc.owner, mc.tags, mc.archived)
        .join(projects, pc.project_id == mc.project_id)
        .where(pc.name == project, mc.name == name)
    )
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(of=registered_models)
    row = conn.execute(stmt).first()
    if row is None:
        raise NotFoundError(f"no model named {name!r} in project {project!r}")
    return row


def _event(
    conn: sa.Connection,
    model_id: str,
    actor: str,
    action: str,
    reason: str,
    before: Any,
    after: Any,
    version: int | None = None,
    alias: str | None = None,
) -> None:
    """Append one history event; the caller holds the model's lock."""
    top = conn.execute(sa.select(sa.func.max(mh.seq)).where(mh.model_id == model_id)).scalar()
    conn.execute(
        model_history.insert().values(
            model_id=model_id,
            seq=int(top or 0) + 1,
            created_ms=_now_ms(),
            actor=actor,
            action=action,
            version=version,
            alias=alias,
            reason=reason,
            before=None if before is None else dumps(before),
            after=None if after is None else dumps(after),
        )
    )
    if action not in ("model_created", "model_updated"):
        conn.execute(
            registered_models.update().where(mc.model_id == model_id).values(updated_ms=_now_ms())
        )
    from mltrail.store.sql.audit_hooks import model_event

    model_event(conn, model_id, int(top or 0) + 1, action, actor, version, alias)
