"""Reads for project-scoped tokens where a record has no project of its own.

A token scoped to one project sees nothing of another: a run of another project answers 404
like a missing one (:func:`mltrail.server.api.visible_run`). Some lookups are not of one run
and must be narrowed *before* they match, or their answer would depend on other projects:

- a run id prefix is resolved among the project's runs only, so "ambiguous" and "not found"
  never count another project's runs, and no message names one;
- a blob is served only if a run of the project carried it (knowing a digest is not enough);
- an object of the server's object store only if the project references it;
- run ids met in other records (a version's producer, lineage) only if their run is visible.

These need the store's :class:`~mltrail.store.optional.ScopedReads` queries
(``store.scoped_reads()``, SQL stores);
on a store without them a project-scoped token gets the strict answer (an exact run id only;
no blobs, no objects). Unscoped principals (``project`` None) see everything, as before.

The UI reads through :class:`ScopedTrackingStore`, the store as one principal sees it, so
every page (and ``mltrail.diff`` run on the server) gets these rules without checking them
itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mltrail.errors import NotFoundError, PermissionDeniedError
from mltrail.store.base import RunPage
from mltrail.store.optional import HasScopedReads, ScopedReads

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from mltrail.entities import Project, RunRecord
    from mltrail.server.auth import Principal
    from mltrail.store.base import ConsoleLine, MetricSeries, TrackingStore
    from mltrail.store.batch import Batch, BatchResult

__all__ = [
    "ScopedTrackingStore",
    "read_blob",
    "readable_objects",
    "resolve_run_id",
    "scoped_reads",
    "visible_run_ids",
]


def scoped_reads(store: Any) -> ScopedReads | None:
    """The store's scoped-read queries, or None when it has none."""
    if not isinstance(store, HasScopedReads):
        return None
    found = store.scoped_reads()
    return found if isinstance(found, ScopedReads) else None


def resolve_run_id(who: Principal, store: TrackingStore, prefix: str) -> str:
    """The full id of the one run ``who`` may see whose id starts with ``prefix``.

    Raises:
        NotFoundError: no such run the principal may see (the message names the prefix only).
        AmbiguousIdError: several runs it may see match.
    """
    if who.project is None:
        return store.resolve_run_id(prefix)
    reads = scoped_reads(store)
    if reads is not None:
        return reads.resolve_run_id(prefix, who.project)
    try:  # no scoped query: only an exact id of a visible run
        if store.get_run(prefix).project == who.project:
            return prefix
    except NotFoundError:
        pass
    raise NotFoundError(f"no run id starts with {prefix!r}")


def read_blob(who: Principal, store: TrackingStore, digest: str) -> bytes:
    """The blob ``digest``, if a run ``who`` may read carried it.

    Raises:
        NotFoundError: no such blob, or none the principal may read (the same answer).
    """
    if who.project is not None:
        reads = scoped_reads(store)
        if reads is None or not reads.blob_readable(digest, who.project):
            raise NotFoundError(f"no blob {digest!r}")
    return store.get_blob(digest)


def readable_objects(who: Principal, store: TrackingStore, digests: Sequence[str]) -> set[str]:
    """Those of ``digests`` that ``who`` may read (all of them for an unscoped principal)."""
    if who.project is None:
        return set(digests)
    reads = scoped_reads(store)
    return set() if reads is None else reads.readable_objects(digests, who.project)


def visible_run_ids(who: Principal, store: TrackingStore, run_ids: Iterable[str]) -> set[str]:
    """Those of ``run_ids`` that exist in a project ``who`` may see."""
    wanted = list(run_ids)
    if who.project is None or not wanted:
        return set(wanted)
    reads = scoped_reads(store)
    if reads is not None:
        found = reads.run_projects(wanted)
        return {r for r, p in found.items() if who.can_see(p)}
    out = set()
    for run_id in wanted:
        try:
            if who.can_see(store.get_run(run_id).project):
                out.add(run_id)
        except NotFoundError:
            continue
    return out


class ScopedTrackingStore:
    """A :class:`~mltrail.store.base.TrackingStore` as one principal sees it (read-only).

    Another project's runs, projects and blobs do not exist here: every miss is the
    :class:`NotFoundError` a missing record gives. It does not own the store (``close`` is a
    no-op) and refuses writes.

    Args:
        store: the server's store.
        who: the principal of the request.
    """

    def __init__(self, store: TrackingStore, who: Principal) -> None:
        self.inner = store
        self.who = who
        self.uri = store.uri

    def apply_batch(self, batch: Batch) -> BatchResult:
        """Refused: the UI's view of the store is read-only."""
        raise PermissionDeniedError("this view of the store is read-only")

    def ingest_position(self, source: str) -> int:
        """The applied offset of ``source``, 0 for another project's spool."""
        run_id = source.partition(".")[0]
        if self.who.project is not None and not visible_run_ids(self.who, self.inner, [run_id]):
            return 0
        return self.inner.ingest_position(source)

    def get_run(self, run_id: str) -> RunRecord:
        """The run, if the principal may see it (else :class:`NotFoundError`, as missing)."""
        record = self.inner.get_run(run_id)
        if not self.who.can_see(record.project):
            raise NotFoundError(f"run {run_id!r} does not exist")
        return record

    def resolve_run_id(self, prefix: str) -> str:
        """A prefix resolved among the runs the principal may see."""
        return resolve_run_id(self.who, self.inner, prefix)

    def search_runs(
        self,
        project: str | None = None,
        filter: str | None = None,  # noqa: A002 - the protocol's name
        order_by: str | None = None,
        limit: int = 100,
        page_token: str | None = None,
    ) -> RunPage:
        """A search narrowed to the principal's project."""
        if self.who.project is not None:
            if project is not None and project != self.who.project:
                return RunPage([], None)
            project = self.who.project
        return self.inner.search_runs(project, filter, order_by, limit, page_token)

    def list_projects(self) -> list[Project]:
        """The projects the principal may see."""
        return [p for p in self.inner.list_projects() if self.who.can_see(p.name)]

    def metric_history(self, run_id: str, key: str) -> MetricSeries:
        """A metric of a run the principal may see."""
        self.get_run(run_id)
        return self.inner.metric_history(run_id, key)

    def metric_buckets(
        self,
        run_id: str,
        key: str,
        points: int,
        step_min: int | None = None,
        step_max: int | None = None,
    ) -> dict[str, Any]:
        """A chart of a metric of a run the principal may see (from the store's chart
        summaries when it keeps them, see :class:`~mltrail.store.optional.HasMetricBuckets`)."""
        from mltrail.server.series import chart

        self.get_run(run_id)
        return chart(self.inner, run_id, key, points, step_min, step_max)

    def get_state(self, run_id: str) -> dict[str, dict[str, Any]]:
        """The captured state of a run the principal may see."""
        self.get_run(run_id)
        return self.inner.get_state(run_id)

    def get_blob(self, digest: str) -> bytes:
        """A blob a run the principal may read carried."""
        return read_blob(self.who, self.inner, digest)

    def read_console(self, run_id: str, tail: int | None = None) -> list[ConsoleLine]:
        """The console of a run the principal may see."""
        self.get_run(run_id)
        return self.inner.read_console(run_id, tail)

    def close(self) -> None:
        """Nothing to release: the server owns the store."""
