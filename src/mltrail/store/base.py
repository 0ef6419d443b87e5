"""The ``TrackingStore`` protocol: the seam between mltrail and where runs are kept.

Contract, for every backend (checked by :class:`mltrail.testing.TrackingStoreContract`):

- **Thread-safety.** A store may be shared by threads; each method is safe to call
  concurrently. Several processes may open the same store at once.
- **Records are immutable snapshots.** Returned records never change after return.
- **Atomic, idempotent batches.** :meth:`apply_batch` applies all of a batch or none of it,
  in one transaction. A batch with a ``source`` is applied at most once: if the store has
  already applied ``source`` up to ``batch.end`` it does nothing and reports
  ``applied=False``. A batch that starts past the applied position is a gap and raises
  :class:`~mltrail.errors.IntegrityError`.
- **Params are immutable.** A param offered again with the same value is a no-op; with a
  different value it is not applied and is reported in ``BatchResult.param_conflicts``
  (the rest of the batch is applied: nothing acknowledged is dropped silently).
- **Metrics are append-only.** Points with repeated or decreasing steps are all kept. Series
  read back ordered by ``(step, timestamp)``, ties in logging order. Values round-trip as
  IEEE float64, NaN and ±inf included.
- **Effective status.** A run marked running whose heartbeat is older than three of its
  heartbeat intervals is reported ``crashed`` with ``end_ms`` = its last heartbeat.
- **Errors.** Missing runs raise ``NotFoundError``; an ambiguous id prefix
  ``AmbiguousIdError``; bad filters ``FilterSyntaxError``; driver failures ``StoreError``
  with the driver's exception chained. No driver exception escapes a store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from mltrail.store.batch import MetricSeries

if TYPE_CHECKING:
    from mltrail.entities import Project, RunRecord
    from mltrail.store.batch import Batch, BatchResult

__all__ = ["ConsoleLine", "MetricSeries", "RunPage", "TrackingStore"]


@dataclass(frozen=True, slots=True)
class ConsoleLine:
    """One line of a run's console output."""

    timestamp_ms: int
    stream: str
    text: str


@dataclass(frozen=True, slots=True)
class RunPage:
    """One page of search results; ``next_token`` is None on the last page."""

    runs: list[RunRecord]
    next_token: str | None


@runtime_checkable
class TrackingStore(Protocol):
    """Where runs, params, tags and metric series are kept. See the module docstring."""

    uri: str

    def apply_batch(self, batch: Batch) -> BatchResult:
        """Apply one batch atomically and idempotently.

        Raises:
            NotFoundError: the batch is for a run that does not exist and does not create it.
            IntegrityError: the batch starts past the applied position of its source.
            StoreError: the backing store failed; nothing was applied.
        """
        ...

    def ingest_position(self, source: str) -> int:
        """The byte offset of ``source`` applied so far (0 when unknown)."""
        ...

    def get_run(self, run_id: str) -> RunRecord:
        """One run with params, tags, config and metric summaries.

        Raises:
            NotFoundError: no such run.
        """
        ...

    def resolve_run_id(self, prefix: str) -> str:
        """The full id of the one run whose id starts with ``prefix``.

        Raises:
            NotFoundError: no run matches. AmbiguousIdError: several do.
        """
        ...

    def search_runs(
        self,
        project: str | None = None,
        filter: str | None = None,
        order_by: str | None = None,
        limit: int = 100,
        page_token: str | None = None,
    ) -> RunPage:
        """Runs matching a filter expression, ordered, one page at a time.

        Args:
            project: restrict to one project (by name).
            filter: the filter language, e.g. ``params.lr = 0.01 and metrics.acc > 0.9``.
            order_by: ``KEY [asc|desc]``, comma-separated; default newest first.
            limit: page size, 1 to 10,000.
            page_token: the ``next_token`` of the previous page.

        Raises:
            FilterSyntaxError: the filter or order-by does not parse (names the position).
            InvalidArgumentError: bad limit or page token.
        """
        ...

    def list_projects(self) -> list[Project]:
        """Every project with its run count, by name."""
        ...

    def metric_history(self, run_id: str, key: str) -> MetricSeries:
        """The whole series of one metric key (``key`` in any Unicode normal form: keys are
        stored NFC, and a key typed in NFD finds the same series).

        Raises:
            NotFoundError: no such run or key.
        """
        ...

    def get_state(self, run_id: str) -> dict[str, dict[str, Any]]:
        """The captured state of a run by kind (``code``, ``environment``, ...); may be empty.

        Raises:
            NotFoundError: no such run.
        """
        ...

    def get_blob(self, digest: str) -> bytes:
        """The content stored under ``digest`` (``sha256:<hex>``).

        Raises:
            NotFoundError: no such blob.
        """
        ...

    def read_console(self, run_id: str, tail: int | None = None) -> list[ConsoleLine]:
        """The run's console lines in order; only the last ``tail`` when given.

        Raises:
            NotFoundError: no such run.
        """
        ...

    def close(self) -> None:
        """Release connections. The store must not be used afterwards."""
        ...
