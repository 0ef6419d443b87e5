"""Optional capabilities of a tracking store, each a small protocol checked with ``isinstance``.

The core :class:`~mltrail.store.base.TrackingStore` is what every backend offers. Some stores
can do more: keep artifact versions (SQL stores and servers), API tokens and run files (SQL
stores, for ``mltrail server``), answer project-scoped reads (SQL stores). A caller asks with
``isinstance(store, HasArtifacts)`` and gets a typed accessor; nothing probes attributes by
name and no method raises ``NotImplementedError``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from mltrail.artifacts.base import ArtifactStore
    from mltrail.entities import Project
    from mltrail.registry.base import ModelRegistry
    from mltrail.store.run_files import RunFiles
    from mltrail.store.tokens import TokenStore

__all__ = [
    "HasArtifacts",
    "HasMetricBuckets",
    "HasModelRegistry",
    "HasProjectKeys",
    "HasProjectLookup",
    "HasRunEdits",
    "HasRunFiles",
    "HasScopedReads",
    "HasTokens",
    "RunEdits",
    "ScopedReads",
    "SyncsLog",
]


@runtime_checkable
class HasArtifacts(Protocol):
    """A store that keeps artifact versions, aliases and lineage."""

    def artifacts(self) -> ArtifactStore:
        """The artifact store sharing this store's connection."""
        ...


@runtime_checkable
class HasModelRegistry(Protocol):
    """A store that keeps a model registry (SQL stores and servers); the contract is
    :mod:`mltrail.registry.base`."""

    def model_registry(self) -> ModelRegistry:
        """The model registry sharing this store's connection."""
        ...


@runtime_checkable
class HasTokens(Protocol):
    """A store that keeps the API tokens of ``mltrail server``."""

    def tokens(self) -> TokenStore:
        """The token store sharing this store's connection."""
        ...


@runtime_checkable
class HasProjectLookup(Protocol):
    """A store that tells whether one project exists without counting every project's runs
    (``list_projects`` does: at a million runs, the UI's every page paid for it)."""

    def project_exists(self, name: str) -> bool:
        """Whether a project named ``name`` exists (with or without runs).

        Raises:
            StoreError: the store cannot be read.
        """
        ...


@runtime_checkable
class HasProjectKeys(Protocol):
    """A store that lists a project's param, metric and tag keys with one query each."""

    def project_keys(self, project: str, limit: int) -> dict[str, list[str]]:
        """``{"params", "metrics", "tags"}``: the distinct keys of ``project``'s runs, sorted,
        at most ``limit`` of each.

        Raises:
            StoreError: the store cannot be read.
        """
        ...


@runtime_checkable
class HasRunFiles(Protocol):
    """A store that indexes run files (logical path to content digest)."""

    def run_files(self) -> RunFiles:
        """The run-file index sharing this store's connection."""
        ...


@runtime_checkable
class RunEdits(Protocol):
    """Edits no batch carries, for foreign APIs (MLflow's): an empty project, a tag removed."""

    def ensure_project(self, name: str) -> Project:
        """The project ``name``, created with no runs when missing."""
        ...

    def delete_tag(self, run_id: str, key: str) -> bool:
        """Remove a run's tag; False when it had none. Raises NotFoundError for no run."""
        ...


@runtime_checkable
class HasRunEdits(Protocol):
    """A store that can create empty projects and delete tags (SQL stores)."""

    def run_edits(self) -> RunEdits:
        """The edits sharing this store's connection."""
        ...


@runtime_checkable
class ScopedReads(Protocol):
    """Project-scoped queries a store offers the server (see :mod:`mltrail.server.scoping`).

    Every method is an indexed lookup; none scans all runs.
    """

    def resolve_run_id(self, prefix: str, project: str) -> str:
        """The one run of ``project`` whose id starts with ``prefix``.

        Raises:
            NotFoundError: none (the message names only ``prefix``).
            AmbiguousIdError: several runs of the project match.
        """
        ...

    def run_projects(self, run_ids: Iterable[str]) -> dict[str, str]:
        """The project of each existing run of ``run_ids``."""
        ...

    def blob_readable(self, digest: str, project: str) -> bool:
        """Whether a run of ``project`` carried the blob ``digest``."""
        ...

    def readable_objects(self, digests: Sequence[str], project: str) -> set[str]:
        """Those of ``digests`` that ``project`` references."""
        ...

    def add_object_refs(self, project: str, digests: Iterable[str]) -> None:
        """Record that ``project`` references the objects ``digests`` (idempotent)."""
        ...

    def is_version_digest(self, digest: str, project: str) -> bool:
        """Whether an artifact version of ``project`` has the content ``digest``."""
        ...


@runtime_checkable
class HasScopedReads(Protocol):
    """A store that answers project-scoped reads (:class:`ScopedReads`)."""

    def scoped_reads(self) -> ScopedReads:
        """The scoped queries sharing this store's connection."""
        ...


@runtime_checkable
class HasMetricBuckets(Protocol):
    """A store that draws a chart of a series without loading it whole."""

    def metric_buckets(
        self,
        run_id: str,
        key: str,
        points: int,
        step_min: int | None = None,
        step_max: int | None = None,
    ) -> dict[str, Any]:
        """At most ``points`` min/max buckets of the series over ``[step_min, step_max]``:
        the body :func:`mltrail.store.buckets.downsample` gives (a bucket edge may be off by
        less than a store-defined block of points on long ranges; min/max are exact for the
        points each bucket covers).

        Raises:
            NotFoundError: no such run or metric.
            InvalidArgumentError: ``points < 1`` or ``step_min > step_max``.
        """
        ...


@runtime_checkable
class SyncsLog(Protocol):
    """A store whose commits are durable against power loss only once synced.

    Contract: after ``sync_log()`` returns, every transaction committed before the call
    survives an OS crash or power loss (SQLite in WAL mode with ``synchronous=NORMAL``: the
    write-ahead log is fsynced). Cheap when nothing was committed. Stores whose commits are
    durable at commit (PostgreSQL, a server) do not offer it. Raises ``StoreError``.
    """

    def sync_log(self) -> None: ...
