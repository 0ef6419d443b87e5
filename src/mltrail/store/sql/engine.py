"""Engines for SQLite and PostgreSQL, and the schema check (and upgrade) that runs on open.

SQLite: WAL journal (readers never block the writer), ``synchronous=NORMAL`` (a committed
transaction survives a process crash; WAL is only synced at checkpoints), a 30 s busy
timeout, and ``BEGIN IMMEDIATE`` for write transactions so that concurrent writers queue on
the busy handler instead of failing with "database is locked" on lock upgrade.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import event

from mltrail.errors import SchemaVersionError, StoreError
from mltrail.store.sql.schema import PG_STORAGE, SCHEMA_REVISION, VERSION_TABLE, metadata

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = [
    "after_commit",
    "create_engine",
    "known_revisions",
    "schema_revision",
    "upgrade_schema",
    "write_connection",
]

BUSY_TIMEOUT_MS = 30_000
_WRITE = "mltrail_write"
_AFTER_COMMIT = "mltrail_after_commit"
_NETWORK_FS = {"nfs", "nfs4", "cifs", "smb3", "smbfs", "fuse", "fuse.sshfs", "9p", "afs", "ceph"}


def _filesystem_type(path: Path) -> str | None:
    """The filesystem type of ``path`` from /proc/mounts (Linux), else None."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return None
    best, fstype = "", None
    target = str(path.resolve())
    for line in mounts:
        fields = line.split()
        if (
            len(fields) >= 3
            and (target == fields[1] or target.startswith(fields[1].rstrip("/") + "/"))
            and len(fields[1]) >= len(best)
        ):
            best, fstype = fields[1], fields[2]
    return fstype


def warn_if_network_fs(db_path: Path) -> None:
    """Warn when an SQLite file sits on a network filesystem (WAL needs one host)."""
    fstype = _filesystem_type(db_path.parent)
    if fstype and (fstype in _NETWORK_FS or fstype.startswith("fuse")):
        warnings.warn(
            f"the SQLite store {db_path} is on a {fstype} filesystem; SQLite's WAL mode needs "
            "all processes on one host and a local disk. Use a local folder or PostgreSQL.",
            RuntimeWarning,
            stacklevel=3,
        )


def create_engine(uri: str) -> sa.Engine:
    """An engine for ``sqlite:///`` or ``postgresql://`` with mltrail's settings."""
    if uri.startswith("sqlite:"):
        return _sqlite_engine(uri)
    url = sa.make_url(uri)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    try:
        return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
    except ImportError as exc:
        raise StoreError(
            f"PostgreSQL needs the psycopg driver: pip install 'mltrail[postgres]' ({exc})"
        ) from exc


def _synchronous() -> str:
    """SQLite's ``synchronous`` for ``MLTRAIL_DURABILITY``: FULL (the log synced at every
    commit) for ``call``; NORMAL otherwise (``batch`` syncs the log each flush interval and
    at each run's end, see SqlTrackingStore.sync_log)."""
    from mltrail.settings import settings

    try:
        mode = settings().durability
    except ValueError:  # a bad value is reported where runs start; the store stays safe
        mode = "batch"
    return "FULL" if mode == "call" else "NORMAL"


def _sqlite_engine(uri: str) -> sa.Engine:
    db_path = Path(uri[len("sqlite:///") :])
    db_path.parent.mkdir(parents=True, exist_ok=True)
    warn_if_network_fs(db_path)
    engine = sa.create_engine(
        uri,
        connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
        pool_size=4,
        max_overflow=8,
    )

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        # new databases only (ignored once one exists): a chunk row of a few hundred points
        # fits one 16 KiB page instead of a 4 KiB page plus an overflow chain (measured: a
        # batch of 10^4 keys x 150 points applies in 1.0 s instead of 1.9 s)
        cur.execute("PRAGMA page_size=16384")
        cur.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL survives a killed process; FULL syncs the log at each commit
        cur.execute(f"PRAGMA synchronous={_synchronous()}")
        # 16 MiB of page cache (reads of hot pages past it are a pread from the OS cache):
        # with 64 MiB a writer applying 10^4-key batches grew by 75 MB more (measured)
        cur.execute("PRAGMA cache_size=-16384")
        cur.execute("PRAGMA wal_autocheckpoint=8192")  # fewer checkpoint fsyncs
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        write = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


@contextlib.contextmanager
def write_connection(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection in a write transaction (``BEGIN IMMEDIATE`` on SQLite), committed on exit;
    then the callables given to :func:`after_commit` run (not when it rolls back)."""
    with engine.connect().execution_options(**{_WRITE: True}) as conn:
        try:
            with conn.begin():
                yield conn
            hooks = conn.info.pop(_AFTER_COMMIT, ())
        finally:
            conn.info.pop(_AFTER_COMMIT, None)
    for hook in hooks:
        hook()


def after_commit(conn: sa.Connection, hook: Callable[[], None]) -> None:
    """Run ``hook`` once the write transaction of ``conn`` (a :func:`write_connection`) has
    committed (the audit trail signs its checkpoints there, outside the transaction)."""
    conn.info.setdefault(_AFTER_COMMIT, []).append(hook)


def _current_revision(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(VERSION_TABLE):
            return None
        return conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()


@contextlib.contextmanager
def _migration_lock(engine: sa.Engine) -> Iterator[sa.Connection]:
    """Serialise schema upgrades between processes (advisory lock / file lock)."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(74210117)"))
            try:
                yield conn
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(74210117)"))
                conn.commit()
        return
    import fcntl

    db = str(engine.url.database)
    fd = os.open(db + ".migrate.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with engine.connect() as conn:
            yield conn
    finally:
        os.close(fd)


def _create_fresh(engine: sa.Engine) -> None:
    """Create the head schema in an empty database and record its revision, without Alembic.

    Importing Alembic and replaying every migration costs ~160 ms; a new store needs neither.
    The version table is the one Alembic would create, so later upgrades run from here.
    """
    version = sa.Table(
        VERSION_TABLE,
        sa.MetaData(),
        sa.Column("version_num", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("version_num", name=f"{VERSION_TABLE}_pkc"),
    )
    with engine.connect().execution_options(**{_WRITE: True}) as conn, conn.begin():
        metadata.create_all(conn)
        if conn.dialect.name == "postgresql":
            for statement in PG_STORAGE:
                conn.execute(sa.text(statement))
        version.create(conn)
        conn.execute(version.insert().values(version_num=SCHEMA_REVISION))


def known_revisions() -> list[str]:
    """Every revision the migrations of this mltrail know, oldest first."""
    folder = Path(__file__).parent / "migrations" / "versions"
    return sorted(p.name.split("_", 1)[0] for p in folder.glob("[0-9]*_*.py"))


def schema_revision(engine: sa.Engine) -> str | None:
    """The database's schema revision; None for a database mltrail never created."""
    return _current_revision(engine)


def _display(engine: sa.Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def _check_known(engine: sa.Engine, current: str | None) -> None:
    if current is not None and current not in known_revisions():
        raise SchemaVersionError(
            f"the database {_display(engine)} is at schema revision {current}, newer than this "
            f"mltrail knows (it reaches {SCHEMA_REVISION}): upgrade mltrail"
        )


def upgrade_schema(engine: sa.Engine, *, migrate: bool = True) -> None:
    """Bring the schema to :data:`SCHEMA_REVISION`, running Alembic only when needed.

    The check is one query; an empty database gets the head schema directly; Alembic is
    imported only to upgrade an older one.

    Args:
        migrate: upgrade an older schema. When False (``mltrail server``, PostgreSQL) an
            older schema raises instead: migrations are a team's explicit step
            (``mltrail db upgrade``), never one a server or a client takes by itself. An
            empty database still gets the head schema.

    Raises:
        SchemaVersionError: the schema is older and ``migrate`` is False, or it is newer
            than this mltrail.
    """
    if _current_revision(engine) == SCHEMA_REVISION:
        return
    with _migration_lock(engine) as conn:
        current = _current_revision(engine)
        if current == SCHEMA_REVISION:
            return
        if current is None and not set(sa.inspect(conn).get_table_names()) & set(metadata.tables):
            # no mltrail table yet (an empty database, or one Optuna shares): nothing to
            # migrate, no history to replay
            _create_fresh(engine)
            return
        _check_known(engine, current)
        if not migrate:
            raise SchemaVersionError(
                f"the database {_display(engine)} is at schema revision {current or 'none'} "
                f"and this mltrail needs {SCHEMA_REVISION}; it is not migrated automatically: "
                f"stop the servers and run: mltrail db upgrade --store {_display(engine)}"
            )
        _alembic_upgrade(engine)


def _alembic_upgrade(engine: sa.Engine) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.attributes["engine"] = engine
    command.upgrade(cfg, "head")
