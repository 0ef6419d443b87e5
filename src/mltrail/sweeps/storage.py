"""Where a sweep lives: Optuna's ``RDBStorage`` on the same database as the runs.

- An embedded store (a folder) or ``sqlite:///file.db``: an SQLite file beside it
  (``<folder>/optuna.db``, ``<file>.optuna.db``), so Optuna's writes never hold the lock the
  run writers need.
- ``postgresql://``: the same database, Optuna's tables in the schema ``mltrail_optuna``
  (``store/sql/sweeps_schema.py``), so none of its names (``studies``, ``trials``,
  ``alembic_version``...) can meet one of mltrail's.

A sweep is an Optuna study named by the sweep id. What mltrail adds is kept in the study's
user attributes: the spec (canonical form), the git SHA of the folder it was created from,
the seed, the state (``running``/``stopped``), the project and when it was created.
"""

from __future__ import annotations

import json
import re
import secrets
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltrail.errors import InvalidArgumentError, NotFoundError
from mltrail.sweeps.engine import directions, import_optuna

if TYPE_CHECKING:
    import optuna

    from mltrail.store.registry import StoreLocation
    from mltrail.sweeps.spec import SweepSpec

__all__ = [
    "SWEEP_ID_PATTERN",
    "SweepRecord",
    "close_storage",
    "create_sweep",
    "load_sweep",
    "open_storage",
    "optuna_storage_url",
    "set_state",
]

_ATTR = "mltrail"
#: what a sweep id looks like
SWEEP_ID_PATTERN = r"^sw-[0-9a-f]{10}$"  # the study user attribute holding the sweep's record
_SQLITE_TIMEOUT_S = 60


@dataclass(frozen=True, slots=True)
class SweepRecord:
    """A sweep as stored: its spec and what makes it reproducible."""

    sweep_id: str
    spec: dict[str, Any]
    git_sha: str | None
    seed: int
    state: str
    project: str
    created_ms: int
    cwd: str

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {
            "sweep_id": self.sweep_id,
            "spec": self.spec,
            "git_sha": self.git_sha,
            "seed": self.seed,
            "state": self.state,
            "project": self.project,
            "created_ms": self.created_ms,
            "cwd": self.cwd,
        }


def _location(store: str | None) -> StoreLocation:
    from mltrail.store.registry import resolve_location

    location = resolve_location(store)
    if location.scheme not in ("sqlite", "postgresql"):
        raise InvalidArgumentError(
            f"store {location.display}: sweeps need a database store (a folder, sqlite:/// or "
            "postgresql://); agents cannot share a sweep through a server yet"
        )
    return location


def optuna_storage_url(location: StoreLocation) -> str:
    """The URL of Optuna's storage for a store (see the module docstring)."""
    if location.scheme == "postgresql":
        from mltrail.store.sql.sweeps_schema import optuna_url

        return optuna_url(location.uri)
    db = Path(location.uri[len("sqlite:///") :])
    # the folder's own database, named as a folder or by its file (`mltrail ui` passes the
    # file's URI): one Optuna file, whichever way the store was named
    folder_db = db.name == "mltrail.db"
    optuna_db = db.parent / ("optuna.db" if folder_db else f"{db.stem}.optuna.db")
    older = db.parent / f"{db.stem}.optuna.db"  # where a file URI put it before
    if folder_db and not optuna_db.exists() and older.exists():
        optuna_db = older
    return f"sqlite:///{optuna_db}"


def open_storage(
    store: str | None,
    *,
    heartbeat_s: int | None = None,
    grace_s: int | None = None,
    max_retry: int = 0,
) -> optuna.storages.RDBStorage:
    """Optuna's storage for ``store`` (created on first use).

    Args:
        store: A folder, ``sqlite:///`` or ``postgresql://`` URI (None: the default store).
        heartbeat_s: Trials record a heartbeat this often (None: no heartbeat).
        grace_s: A running trial whose heartbeat is older is failed (default 2 heartbeats).
        max_retry: How often a trial failed by a stale heartbeat is retried.

    Raises:
        InvalidArgumentError: a store that is not a database.
        StoreError: the database cannot be reached.
    """
    op = import_optuna()
    location = _location(store)
    url = optuna_storage_url(location)
    kwargs: dict[str, Any] = {}
    if location.scheme == "postgresql":
        from mltrail.store.sql.sweeps_schema import SWEEPS_SCHEMA, ensure_schema

        ensure_schema(location.uri)
        kwargs = {
            "connect_args": {"options": f"-c search_path={SWEEPS_SCHEMA}"},
            "pool_pre_ping": True,
        }
    else:
        Path(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
        kwargs = {"connect_args": {"timeout": _SQLITE_TIMEOUT_S}}
    callback = None
    with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna
        warnings.simplefilter("ignore", op.exceptions.ExperimentalWarning)
        if heartbeat_s is not None and max_retry > 0:
            callback = op.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
        storage: optuna.storages.RDBStorage = op.storages.RDBStorage(
            url,
            engine_kwargs=kwargs,
            heartbeat_interval=heartbeat_s,
            grace_period=grace_s,
            heartbeat_stale_trial_callback=callback,
        )
    if location.scheme == "sqlite":
        from mltrail.store.sql.sweeps_schema import tune_sqlite

        tune_sqlite(storage.engine)
    return storage


def close_storage(storage: optuna.storages.RDBStorage) -> None:
    """Close the storage's connections (its engine's pool)."""
    storage.remove_session()
    storage.engine.dispose()


def create_sweep(
    spec: SweepSpec,
    *,
    store: str | None = None,
    cwd: str | Path | None = None,
    sweep_id: str | None = None,
) -> SweepRecord:
    """Create a sweep: an Optuna study holding the spec, the git SHA and the seed.

    Args:
        spec: The validated spec; a missing seed is drawn now and recorded.
        store: Where runs and the sweep go (None: the default store).
        cwd: The folder the program runs in; its git HEAD is recorded.
        sweep_id: The id (``sw-`` and 10 hex digits; None: a random one).

    Returns:
        The new :class:`SweepRecord`.
    """
    op = import_optuna()
    folder = Path(cwd or Path.cwd()).resolve()
    if sweep_id is not None and not re.fullmatch(SWEEP_ID_PATTERN, sweep_id):
        raise InvalidArgumentError(f"sweep id {sweep_id!r}: sw- and 10 hex digits")
    seed = spec.seed if spec.seed is not None else secrets.randbelow(2**31)
    spec_dict = {**spec.to_dict(), "seed": seed}
    record = SweepRecord(
        sweep_id=sweep_id or "sw-" + secrets.token_hex(5),
        spec=spec_dict,
        git_sha=_git_sha(folder),
        seed=seed,
        state="running",
        project=spec.project,
        created_ms=time.time_ns() // 1_000_000,
        cwd=str(folder),
    )
    storage = open_storage(store)
    try:
        study = op.create_study(
            storage=storage, study_name=record.sweep_id, directions=directions(spec)
        )
        study.set_user_attr(_ATTR, json.dumps(record.to_dict()))
    finally:
        close_storage(storage)
    return record


def _git_sha(folder: Path) -> str | None:
    from mltrail._git import run_git
    from mltrail.errors import GitError

    try:
        return run_git(folder, "rev-parse", "HEAD").decode().strip() or None
    except GitError:
        return None


def load_sweep(sweep_id: str, storage: optuna.storages.RDBStorage) -> SweepRecord:
    """The record of ``sweep_id`` in ``storage``.

    Raises:
        NotFoundError: no such sweep.
    """
    try:
        study_id = storage.get_study_id_from_name(sweep_id)
    except KeyError:
        raise NotFoundError(f"no sweep {sweep_id!r} in this store") from None
    attrs = storage.get_study_user_attrs(study_id)
    if _ATTR not in attrs:
        raise NotFoundError(f"study {sweep_id!r} is not an mltrail sweep")
    raw = json.loads(attrs[_ATTR])
    state = storage.get_study_system_attrs(study_id).get("mltrail.state", raw["state"])
    return SweepRecord(**{**raw, "state": state})


def set_state(sweep_id: str, state: str, *, store: str | None = None) -> SweepRecord:
    """Stop (``stopped``: agents start no new trial) or resume (``running``) a sweep."""
    if state not in ("running", "stopped"):
        raise InvalidArgumentError(f"state {state!r}: use running or stopped")
    storage = open_storage(store)
    try:
        load_sweep(sweep_id, storage)
        study_id = storage.get_study_id_from_name(sweep_id)
        storage.set_study_system_attr(study_id, "mltrail.state", state)
        return load_sweep(sweep_id, storage)
    finally:
        close_storage(storage)
