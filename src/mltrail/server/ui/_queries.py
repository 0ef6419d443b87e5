"""Read helpers the UI needs beyond the :class:`TrackingStore` protocol.

The column chooser lists every param, metric and tag key of a project: asked of the store
when it can (``HasProjectKeys``: three ``DISTINCT`` queries on SQL stores), else taken from the
most recent runs (bounded, so a page never reads a whole project into memory). No SQL here.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

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
_cache: dict[tuple[str, str], tuple[float, ProjectKeys]] = {}
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
    """Raise :class:`NotFoundError` unless ``project`` exists (visible to ``store``)."""
    from mltrail.store.optional import HasProjectLookup

    if isinstance(store, HasProjectLookup):  # one indexed lookup, not every project's count
        found = store.project_exists(project)
    else:  # a scoped view lists only what its token may see
        found = any(p.name == project for p in store.list_projects())
    if not found:
        raise NotFoundError(f"no project named {project!r}")


def project_keys(store: TrackingStore, project: str) -> ProjectKeys:
    """Every param, metric and tag key of ``project``'s runs (at most :data:`MAX_KEYS` each).

    Cached for :data:`KEYS_TTL_S` per store and project: a table re-sorted or re-filtered
    does not scan the project's keys again (a key logged meanwhile shows a few seconds late).
    A store that lists keys itself (:class:`~mltrail.store.optional.HasProjectKeys`) does it
    with one query per kind; any other is sampled from its most recent runs.
    """
    from mltrail.store.optional import HasProjectKeys

    now = time.monotonic()
    cache_key = (store.uri, project)
    with _cache_lock:
        hit = _cache.get(cache_key)
        if hit is not None and now - hit[0] < KEYS_TTL_S:
            return hit[1]
    if isinstance(store, HasProjectKeys):
        keys = ProjectKeys(**store.project_keys(project, MAX_KEYS))
    else:
        keys = _sampled_keys(store, project)
    with _cache_lock:
        if len(_cache) > 1000:
            _cache.clear()
        _cache[cache_key] = (now, keys)
    return keys


def _sampled_keys(store: TrackingStore, project: str) -> ProjectKeys:
    p: set[str] = set()
    m: set[str] = set()
    t: set[str] = set()
    for run in store.search_runs(project, limit=_SAMPLE_RUNS).runs:
        p.update(run.params)
        m.update(run.metrics)
        t.update(run.tags)
    return ProjectKeys(*(sorted(s)[:MAX_KEYS] for s in (p, m, t)))
