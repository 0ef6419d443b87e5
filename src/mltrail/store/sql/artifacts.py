"""``SqlArtifactStore``: artifact versions, aliases and lineage on SQLAlchemy Core.

Concurrency: a version number is allocated inside one write transaction that holds the
artifact's row lock (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE``
already serialises writers), after looking the digest up again under that lock. So two
processes logging the same content end with one version, two contents with v1 and v2, and no
version number is skipped. The artifact row itself is created with ``INSERT ... ON CONFLICT DO
NOTHING`` on ``(project_id, name)`` and read back, so concurrent first logs agree on it.
"""

from __future__ import annotations

import json
import secrets
import time
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from mltrail._validation import check_key
from mltrail.artifacts.records import (
    ALIAS_LATEST,
    ARTIFACT_KINDS,
    Artifact,
    ArtifactRef,
    ArtifactVersion,
    Direction,
    LineageGraph,
    NewVersion,
    check_alias,
    check_artifact_name,
    check_artifact_type,
    check_lineage_args,
    check_metadata,
    dedupe,
    parse_ref,
)
from mltrail.errors import AmbiguousIdError, InvalidArgumentError, NotFoundError
from mltrail.store.sql.audit_hooks import artifact_change, rows_change
from mltrail.store.sql.driver import dialect_insert, driver_errors
from mltrail.store.sql.engine import write_connection
from mltrail.store.sql.schema import (
    artifact_aliases,
    artifact_versions,
    artifacts,
    projects,
    run_inputs,
    runs,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

__all__ = ["SqlArtifactStore"]

_IN_LIMIT = 500
_MAX_DIGEST = 100
_MAX_URI = 4096

ac, vc, lc, ic, pc, rc = (
    artifacts.c,
    artifact_versions.c,
    artifact_aliases.c,
    run_inputs.c,
    projects.c,
    runs.c,
)

#: versions joined with their artifact and project: everything an ArtifactVersion needs
_VERSION_COLUMNS = (
    vc.artifact_id,
    vc.version,
    vc.digest,
    vc.kind,
    vc.size,
    vc.file_count,
    vc.uri,
    vc.meta,
    vc.run_id,
    vc.created_ms,
    ac.name,
    ac.type,
    pc.name.label("project"),
)


def _versions_select() -> sa.Select[Any]:
    return (
        sa.select(*_VERSION_COLUMNS)
        .join(artifacts, ac.artifact_id == vc.artifact_id)
        .join(projects, pc.project_id == ac.project_id)
    )


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _chunks(items: list[str]) -> Iterable[list[str]]:
    for i in range(0, len(items), _IN_LIMIT):
        yield items[i : i + _IN_LIMIT]


class SqlArtifactStore:
    """The :class:`~mltrail.artifacts.records.ArtifactStore` of an SQL tracking store.

    Obtain it with ``SqlTrackingStore.artifacts()``; it shares the tracking store's engine.
    """

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    # -- writes ---------------------------------------------------------------------------

    def log_version(self, new: NewVersion) -> ArtifactVersion:
        project = check_key(new.project, "project")
        name = check_artifact_name(new.name)
        type_ = check_artifact_type(new.type)
        aliases = dedupe([check_alias(a) for a in new.aliases])
        _check_version_fields(new)
        meta = json.dumps(
            {"metadata": check_metadata(new.metadata), "source": check_metadata(new.source)},
            sort_keys=True,
        )
        now = new.created_ms if new.created_ms is not None else _now_ms()
        with driver_errors(f"logging artifact {name!r}"), write_connection(self._engine) as conn:
            project_id = _ensure_project(conn, project, now)
            if new.run_id is not None:
                run_project = conn.execute(
                    sa.select(rc.project_id).where(rc.run_id == new.run_id)
                ).scalar()
                if run_project is None:
                    raise NotFoundError(f"run {new.run_id!r} does not exist")
            artifact_id = _ensure_artifact(conn, project_id, name, type_, now)
            version = conn.execute(
                sa.select(vc.version).where(vc.artifact_id == artifact_id, vc.digest == new.digest)
            ).scalar()
            if version is None:
                top = conn.execute(
                    sa.select(sa.func.max(vc.version)).where(vc.artifact_id == artifact_id)
                ).scalar()
                version = int(top or 0) + 1
                conn.execute(
                    artifact_versions.insert().values(
                        artifact_id=artifact_id,
                        version=version,
                        digest=new.digest,
                        kind=new.kind,
                        size=new.size,
                        file_count=new.file_count,
                        uri=new.uri,
                        meta=meta,
                        run_id=new.run_id,
                        created_ms=now,
                    )
                )
            for alias in aliases:
                _upsert_alias(conn, artifact_id, alias, int(version))
            artifact_change(conn, "version", artifact_id, version=int(version))
            return self._load_one(conn, artifact_id, int(version))

    def set_alias(self, project: str, name: str, alias: str, version: int) -> ArtifactVersion:
        alias = check_alias(alias)
        with driver_errors(f"setting alias {alias!r}"), write_connection(self._engine) as conn:
            artifact_id = self._artifact_id(conn, project, name)
            exists = conn.execute(
                sa.select(vc.version).where(vc.artifact_id == artifact_id, vc.version == version)
            ).scalar()
            if exists is None:
                raise NotFoundError(f"artifact {name!r} has no version v{version}")
            _upsert_alias(conn, artifact_id, alias, version)
            artifact_change(conn, "alias", artifact_id)
            return self._load_one(conn, artifact_id, version)

    def remove_alias(self, project: str, name: str, alias: str) -> bool:
        with driver_errors(f"removing alias {alias!r}"), write_connection(self._engine) as conn:
            artifact_id = self._artifact_id(conn, project, name)
            result = conn.execute(
                artifact_aliases.delete().where(lc.artifact_id == artifact_id, lc.alias == alias)
            )
            if result.rowcount:
                artifact_change(conn, "alias_removed", artifact_id, removed_alias=alias)
            return bool(result.rowcount)

    def record_input(self, run_id: str, version: ArtifactVersion) -> None:
        with (
            driver_errors(f"recording an input of run {run_id}"),
            write_connection(self._engine) as conn,
        ):
            if conn.execute(sa.select(rc.run_id).where(rc.run_id == run_id)).first() is None:
                raise NotFoundError(f"run {run_id!r} does not exist")
            artifact_id = self._artifact_id(conn, version.project, version.name)
            found = conn.execute(
                sa.select(vc.version).where(
                    vc.artifact_id == artifact_id, vc.version == version.version
                )
            ).scalar()
            if found is None:
                raise NotFoundError(f"artifact version {version.qualified} does not exist")
            ins = dialect_insert(conn)(run_inputs).on_conflict_do_nothing(
                index_elements=["run_id", "artifact_id", "version"]
            )
            conn.execute(
                ins.values(
                    run_id=run_id,
                    artifact_id=artifact_id,
                    version=version.version,
                    created_ms=_now_ms(),
                )
            )
            edge = {"run_id": run_id, "artifact_id": artifact_id, "version": version.version}
            rows_change(conn, "run.input", f"run:{run_id}", {"run_inputs": edge})

    # -- reads ----------------------------------------------------------------------------

    def resolve(self, ref: str | ArtifactRef, project: str | None = None) -> ArtifactVersion:
        parsed = ref if isinstance(ref, ArtifactRef) else parse_ref(ref)
        scope = parsed.project or project
        with driver_errors(f"resolving artifact {str(parsed)!r}"), self._engine.connect() as conn:
            if parsed.digest is not None:
                return self._resolve_digest(conn, parsed.digest, scope)
            assert parsed.name is not None
            artifact_id = self._artifact_id(conn, scope, parsed.name)
            if parsed.version is not None:
                version = parsed.version
            elif parsed.alias is not None:
                got = conn.execute(
                    sa.select(lc.version).where(
                        lc.artifact_id == artifact_id, lc.alias == parsed.alias
                    )
                ).scalar()
                if got is None:
                    known = conn.execute(
                        sa.select(lc.alias).where(lc.artifact_id == artifact_id).order_by(lc.alias)
                    ).scalars()
                    names = ", ".join([ALIAS_LATEST, *known])
                    raise NotFoundError(
                        f"artifact {parsed.name!r} has no alias {parsed.alias!r} "
                        f"(its aliases: {names})"
                    )
                version = int(got)
            else:
                top = conn.execute(
                    sa.select(sa.func.max(vc.version)).where(vc.artifact_id == artifact_id)
                ).scalar()
                if top is None:
                    raise NotFoundError(f"artifact {parsed.name!r} has no versions")
                version = int(top)
            return self._load_one(conn, artifact_id, version, parsed.name)

    def list_artifacts(self, project: str | None = None) -> list[Artifact]:
        stats = (
            sa.select(
                vc.artifact_id,
                sa.func.max(vc.version).label("top"),
                sa.func.count().label("n"),
            )
            .group_by(vc.artifact_id)
            .subquery()
        )
        stmt = (
            sa.select(
                ac.artifact_id,
                ac.name,
                ac.type,
                ac.created_ms,
                pc.name.label("project"),
                sa.func.coalesce(stats.c.top, 0).label("top"),
                sa.func.coalesce(stats.c.n, 0).label("n"),
            )
            .join(projects, pc.project_id == ac.project_id)
            .outerjoin(stats, stats.c.artifact_id == ac.artifact_id)
            .order_by(pc.name, ac.name)
        )
        if project is not None:
            stmt = stmt.where(pc.name == project)
        with driver_errors("listing artifacts"), self._engine.connect() as conn:
            rows = conn.execute(stmt).all()
            aliases = self._aliases(conn, [r.artifact_id for r in rows])
        return [
            Artifact(
                project=r.project,
                name=r.name,
                type=r.type,
                created_ms=int(r.created_ms),
                latest_version=int(r.top),
                version_count=int(r.n),
                aliases={
                    a: v
                    for (aid, v), names in aliases.items()
                    if aid == r.artifact_id
                    for a in names
                },
            )
            for r in rows
        ]

    def list_versions(self, project: str, name: str) -> list[ArtifactVersion]:
        with driver_errors(f"listing versions of {name!r}"), self._engine.connect() as conn:
            artifact_id = self._artifact_id(conn, project, name)
            rows = conn.execute(
                _versions_select().where(vc.artifact_id == artifact_id).order_by(vc.version)
            ).all()
            return self._records(conn, rows)

    def get_version(self, project: str, name: str, version: int) -> ArtifactVersion:
        """One version by project, name and number.

        Raises:
            NotFoundError: no such artifact or version.
        """
        with driver_errors(f"reading {name}:v{version}"), self._engine.connect() as conn:
            return self._load_one(conn, self._artifact_id(conn, project, name), version, name)

    def run_inputs(self, run_id: str) -> list[ArtifactVersion]:
        with driver_errors(f"reading the inputs of run {run_id}"), self._engine.connect() as conn:
            rows = conn.execute(
                _versions_select()
                .join(
                    run_inputs,
                    sa.and_(ic.artifact_id == vc.artifact_id, ic.version == vc.version),
                )
                .where(ic.run_id == run_id)
                .order_by(ic.created_ms, ac.name, vc.version)
            ).all()
            return self._records(conn, rows)

    def run_outputs(self, run_id: str) -> list[ArtifactVersion]:
        with driver_errors(f"reading the outputs of run {run_id}"), self._engine.connect() as conn:
            rows = conn.execute(
                _versions_select()
                .where(vc.run_id == run_id)
                .order_by(vc.created_ms, ac.name, vc.version)
            ).all()
            return self._records(conn, rows)

    def consumers(self, version: ArtifactVersion) -> list[str]:
        with (
            driver_errors(f"reading the users of {version.qualified}"),
            self._engine.connect() as conn,
        ):
            artifact_id = self._artifact_id(conn, version.project, version.name)
            return [
                str(r)
                for r in conn.execute(
                    sa.select(ic.run_id)
                    .where(ic.artifact_id == artifact_id, ic.version == version.version)
                    .order_by(ic.created_ms, ic.run_id)
                ).scalars()
            ]

    def lineage(
        self,
        *,
        run_id: str | None = None,
        version: ArtifactVersion | None = None,
        direction: Direction = "both",
        max_depth: int | None = None,
    ) -> LineageGraph:
        from mltrail.store.sql.lineage import lineage_graph

        check_lineage_args(run_id, version, direction, max_depth)
        with driver_errors("reading lineage"), self._engine.connect() as conn:
            return lineage_graph(conn, self, run_id, version, direction, max_depth)

    # -- helpers --------------------------------------------------------------------------

    def _artifact_id(self, conn: sa.Connection, project: str | None, name: str) -> str:
        stmt = (
            sa.select(ac.artifact_id, pc.name)
            .join(projects, pc.project_id == ac.project_id)
            .where(ac.name == name)
        )
        if project is not None:
            stmt = stmt.where(pc.name == project)
        rows = conn.execute(stmt.limit(20)).all()
        if not rows:
            where = f" in project {project!r}" if project is not None else ""
            raise NotFoundError(f"no artifact named {name!r}{where}")
        if len(rows) > 1:
            listed = ", ".join(sorted(f"{r[1]}/{name}" for r in rows))
            raise AmbiguousIdError(
                f"artifact {name!r} exists in several projects ({listed}); "
                "write PROJECT/NAME or pass the project"
            )
        return str(rows[0][0])

    def _resolve_digest(
        self, conn: sa.Connection, digest: str, project: str | None
    ) -> ArtifactVersion:
        stmt = _versions_select().where(vc.digest == digest).order_by(vc.created_ms)
        if project is not None:
            stmt = stmt.where(pc.name == project)
        rows = conn.execute(stmt.limit(20)).all()
        if not rows:
            where = f" in project {project!r}" if project is not None else ""
            raise NotFoundError(f"no artifact version has digest {digest}{where}")
        if len(rows) > 1:
            listed = ", ".join(f"{r.project}/{r.name}:v{r.version}" for r in rows)
            raise AmbiguousIdError(
                f"digest {digest} is the content of several artifact versions ({listed}); "
                "name one as NAME:vN"
            )
        return self._records(conn, rows)[0]

    def _load_one(
        self, conn: sa.Connection, artifact_id: str, version: int, name: str | None = None
    ) -> ArtifactVersion:
        rows = conn.execute(
            _versions_select().where(vc.artifact_id == artifact_id, vc.version == version)
        ).all()
        if not rows:
            label = repr(name) if name is not None else "the artifact"
            raise NotFoundError(f"artifact {label} has no version v{version}")
        return self._records(conn, rows)[0]

    def _aliases(
        self, conn: sa.Connection, artifact_ids: list[str]
    ) -> dict[tuple[str, int], list[str]]:
        """``(artifact_id, version) → aliases`` (``latest`` included) for these artifacts."""
        out: dict[tuple[str, int], list[str]] = defaultdict(list)
        for chunk in _chunks(sorted(set(artifact_ids))):
            tops = conn.execute(
                sa.select(vc.artifact_id, sa.func.max(vc.version))
                .where(vc.artifact_id.in_(chunk))
                .group_by(vc.artifact_id)
            ).all()
            for aid, top in tops:
                out[(str(aid), int(top))].append(ALIAS_LATEST)
            rows = conn.execute(
                sa.select(lc.artifact_id, lc.alias, lc.version).where(lc.artifact_id.in_(chunk))
            ).all()
            for aid, alias, ver in rows:
                out[(str(aid), int(ver))].append(str(alias))
        return out

    def _records(self, conn: sa.Connection, rows: Sequence[Any]) -> list[ArtifactVersion]:
        aliases = self._aliases(conn, [r.artifact_id for r in rows])
        return [_version(r, aliases.get((r.artifact_id, int(r.version)), [])) for r in rows]


def _check_version_fields(new: NewVersion) -> None:
    if new.kind not in ARTIFACT_KINDS:
        raise InvalidArgumentError(
            f"artifact kind must be one of {', '.join(ARTIFACT_KINDS)}, got {new.kind!r}"
        )
    if not isinstance(new.digest, str) or not 0 < len(new.digest) <= _MAX_DIGEST:
        raise InvalidArgumentError(f"artifact digest must be 1 to {_MAX_DIGEST} characters")
    if ":" not in new.digest:
        raise InvalidArgumentError(f"artifact digest {new.digest!r} must be ALGO:HEX")
    for field_name, value in (("size", new.size), ("file_count", new.file_count)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
            raise InvalidArgumentError(f"artifact {field_name} must be an int >= 0, got {value!r}")
    if new.uri is not None and (len(new.uri) > _MAX_URI or "\x00" in new.uri):
        raise InvalidArgumentError(f"artifact uri must be at most {_MAX_URI} characters, no NUL")


def _ensure_project(conn: sa.Connection, name: str, now_ms: int) -> str:
    found = conn.execute(sa.select(pc.project_id).where(pc.name == name)).scalar()
    if found is not None:
        return str(found)
    ins = dialect_insert(conn)(projects).on_conflict_do_nothing(index_elements=["name"])
    conn.execute(ins.values(project_id=secrets.token_hex(8), name=name, created_ms=now_ms))
    return str(conn.execute(sa.select(pc.project_id).where(pc.name == name)).scalar_one())


def _ensure_artifact(
    conn: sa.Connection, project_id: str, name: str, type_: str, now_ms: int
) -> str:
    where = sa.and_(ac.project_id == project_id, ac.name == name)
    row = conn.execute(sa.select(ac.artifact_id, ac.type).where(where)).first()
    if row is None:
        ins = dialect_insert(conn)(artifacts).on_conflict_do_nothing(
            index_elements=["project_id", "name"]
        )
        conn.execute(
            ins.values(
                artifact_id=secrets.token_hex(8),
                project_id=project_id,
                name=name,
                type=type_,
                created_ms=now_ms,
            )
        )
    lock = sa.select(ac.artifact_id, ac.type).where(where)
    if conn.dialect.name == "postgresql":
        lock = lock.with_for_update()  # serialise version numbering per artifact
    row = conn.execute(lock).first()
    assert row is not None
    if row.type != type_:
        raise InvalidArgumentError(
            f"artifact {name!r} is a {row.type!r}; cannot log a {type_!r} under that name"
        )
    return str(row.artifact_id)


def _upsert_alias(conn: sa.Connection, artifact_id: str, alias: str, version: int) -> None:
    ins = dialect_insert(conn)(artifact_aliases).values(
        artifact_id=artifact_id, alias=alias, version=version
    )
    conn.execute(
        ins.on_conflict_do_update(
            index_elements=["artifact_id", "alias"], set_={"version": ins.excluded.version}
        )
    )


def _version(r: Any, aliases: list[str]) -> ArtifactVersion:
    try:
        meta = json.loads(r.meta or "{}")
    except ValueError:
        meta = {}
    if not isinstance(meta, dict):
        meta = {}
    return ArtifactVersion(
        project=r.project,
        name=r.name,
        type=r.type,
        version=int(r.version),
        digest=r.digest,
        kind=r.kind,
        size=int(r.size),
        file_count=int(r.file_count),
        uri=r.uri,
        metadata=dict(meta.get("metadata") or {}),
        source=dict(meta.get("source") or {}),
        run_id=r.run_id,
        created_ms=int(r.created_ms),
        aliases=tuple(sorted(aliases)),
    )
