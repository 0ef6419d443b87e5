"""``Api``: read access to a store, for notebooks, the CLI and benchmarks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mltrail.errors import InvalidArgumentError
from mltrail.store.registry import open_store, resolve_location

if TYPE_CHECKING:
    import os

    from mltrail.entities import Project, RunRecord
    from mltrail.events.recovery import Recovered
    from mltrail.store.base import ConsoleLine, MetricSeries, RunPage, TrackingStore

__all__ = ["Api"]

MAX_LIMIT = 10_000


class Api:
    """Read runs from a store (resolved like :func:`mltrail.init`).

    Opening it applies any spool left by a process that died (crash recovery), so what you
    read includes everything those processes acknowledged.

    Example:
        >>> api = mltrail.Api()  # doctest: +SKIP
        >>> best = api.runs(project="mnist", order_by="metrics.acc desc", limit=1)[0]
        >>> api.history(best.run_id, "loss").values.min()
    """

    def __init__(self, store: str | os.PathLike[str] | None = None) -> None:
        from mltrail.events.recovery import recover_spools

        self.location = resolve_location(store)
        self.store: TrackingStore = open_store(self.location)
        self.recovered: list[Recovered] = recover_spools(self.store, self.location.spool_dir)

    def projects(self) -> list[Project]:
        """Every project, by name, with its run count."""
        return self.store.list_projects()

    def runs(
        self,
        project: str | None = None,
        filter: str | None = None,
        order_by: str | None = None,
        limit: int | None = None,
    ) -> list[RunRecord]:
        """Runs matching ``filter``, ordered; all of them when ``limit`` is None."""
        if limit is not None and limit < 1:
            raise InvalidArgumentError(f"limit must be >= 1, got {limit}")
        out: list[RunRecord] = []
        token: str | None = None
        while True:
            want = MAX_LIMIT if limit is None else min(MAX_LIMIT, limit - len(out))
            page = self.page(project, filter, order_by, want, token)
            out.extend(page.runs)
            token = page.next_token
            if token is None or (limit is not None and len(out) >= limit):
                return out

    def page(
        self,
        project: str | None = None,
        filter: str | None = None,
        order_by: str | None = None,
        limit: int = 100,
        page_token: str | None = None,
    ) -> RunPage:
        """One page of :meth:`runs`, with the token for the next."""
        return self.store.search_runs(project, filter, order_by, limit, page_token)

    def run(self, run_id: str) -> RunRecord:
        """One run by id or unambiguous id prefix."""
        return self.store.get_run(self.store.resolve_run_id(run_id))

    def state(self, run_id: str) -> dict[str, dict[str, Any]]:
        """Everything captured about what the run depended on, by kind."""
        return self.store.get_state(self.store.resolve_run_id(run_id))

    def blob(self, digest: str) -> bytes:
        """A stored blob (an uncommitted diff, a lock file) by digest."""
        return self.store.get_blob(digest)

    def console(self, run_id: str, tail: int | None = None) -> list[ConsoleLine]:
        """The run's console output, line by line (the last ``tail`` lines when given)."""
        return self.store.read_console(self.store.resolve_run_id(run_id), tail)

    def history(self, run_id: str, key: str) -> MetricSeries:
        """A metric's whole series as NumPy arrays (``steps``, ``timestamps``, ``values``)."""
        return self.store.metric_history(self.store.resolve_run_id(run_id), key)
