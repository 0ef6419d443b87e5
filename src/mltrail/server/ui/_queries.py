"""Read helpers the UI needs beyond the :class:`TrackingStore` protocol.

The column chooser lists every param, metric and tag key of a project. On an SQL store this
is three ``DISTINCT`` queries over indexed columns; on any other store the keys of the most
recent runs are used (bounded, so a page never reads a whole project into memory).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mltrail.api import Api
from mltrail.errors import NotFoundError

if TYPE_CHECKING:
    from mltrail.store.base import TrackingStore

__all__ = ["KEYS_TTL_S", "MAX_KEYS", "ProjectKeys", "StoreApi", "project_keys", "require_project"]

#: At most this many keys of each kind are offered (a project with more is unusual).
MAX_KEYS = 2000
_SAMPLE_RUNS = 500
#: How long the keys of a project are reused.
KEYS_TTL_S = 5.0
_cache: dict[tuple[int, str], tuple[float, ProjectKeys]] = {}
_cache_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class ProjectKeys:
    """The param, metric and tag keys used by a project's runs, sorted."""

    params: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, list[str]]:
        return {"params": self.params, "metrics": self.metrics, "tags": self.tags}


class StoreApi(Api):
    """An :class:`~mltrail.api.Api` over an already-open store (no spool recovery).

    The server owns its store; :func:`mltrail.diff.diff_runs` reads through this.
    """

    def __init__(self, store: TrackingStore) -> None:  # noqa: D107 - no super(): no location
        self.store = store
        self.recovered = []


def require_project(store: TrackingStore, project: str) -> None:
    """Raise :class:`NotFoundError` unless ``project`` exists."""
    if not any(p.name == project for p in store.list_projects()):
        raise NotFoundError(f"no project named {project!r}")


def project_keys(store: TrackingStore, project: str) -> ProjectKeys:
    """Every param, metric and tag key of ``project``'s runs (at most :data:`MAX_KEYS` each).

    Cached for :data:`KEYS_TTL_S` per store and project: a table re-sorted or re-filtered
    does not scan the project's keys again (a key logged meanwhile shows a few seconds late).
    """
    now = time.monotonic()
    cache_key = (id(store), project)
    with _cache_lock:
        hit = _cache.get(cache_key)
        if hit is not None and now - hit[0] < KEYS_TTL_S:
            return hit[1]
    engine = getattr(store, "_engine", None)
    keys = _sql_keys(engine, project) if engine is not None else _sampled_keys(store, project)
    with _cache_lock:
        if len(_cache) > 1000:
            _cache.clear()
        _cache[cache_key] = (now, keys)
    return keys


def _sql_keys(engine: Any, project: str) -> ProjectKeys:
    import sqlalchemy as sa

    from mltrail.errors import StoreError
    from mltrail.store.sql.schema import metric_summaries, params, projects, runs, tags

    pid = sa.select(projects.c.project_id).where(projects.c.name == project).scalar_subquery()
    in_project = sa.select(runs.c.run_id).where(runs.c.project_id == pid)
    out: dict[str, list[str]] = {}
    try:
        with engine.connect() as conn:
            for name, table in (("params", params), ("metrics", metric_summaries), ("tags", tags)):
                stmt = (
                    sa.select(table.c.key)
                    .where(table.c.run_id.in_(in_project))
                    .distinct()
                    .order_by(table.c.key)
                    .limit(MAX_KEYS)
                )
                out[name] = [str(k) for k in conn.execute(stmt).scalars()]
    except sa.exc.SQLAlchemyError as exc:
        raise StoreError(f"listing the keys of project {project!r} failed") from exc
    return ProjectKeys(**out)


def _sampled_keys(store: TrackingStore, project: str) -> ProjectKeys:
    p: set[str] = set()
    m: set[str] = set()
    t: set[str] = set()
    for run in store.search_runs(project, limit=_SAMPLE_RUNS).runs:
        p.update(run.params)
        m.update(run.metrics)
        t.update(run.tags)
    return ProjectKeys(*(sorted(s)[:MAX_KEYS] for s in (p, m, t)))
