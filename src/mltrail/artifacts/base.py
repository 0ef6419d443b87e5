"""The ``ArtifactStore`` protocol: artifact versions, aliases and lineage in a tracking store.

An *artifact* is a named thing of a project (a dataset, a model, ...); each distinct content it
has had is a *version* ``name:vN``. Versions are identified by their content digest; the bytes
live in a content-addressed object store (:mod:`mltrail.objects`), never in the tracking store.

Contract, for every backend (checked by :class:`mltrail.testing.ArtifactStoreContract`):

- **Same content, same version.** :meth:`ArtifactStore.log_version` with a digest the artifact
  already has returns that version unchanged (its producing run, metadata and time stay the
  first ones); a new digest becomes version ``max + 1``. Versions start at 1 and have no gaps,
  also when several processes log at once: two processes logging the same content end with one
  version, two different contents with ``v1`` and ``v2``.
- **Aliases.** An alias (``best``, ``production``) points at one version of one artifact;
  setting it again moves it. ``latest`` is implicit (the highest version) and cannot be set.
  :attr:`ArtifactVersion.aliases` lists every alias of a version, ``latest`` included.
- **One type per artifact.** Logging a version under an existing name with another type raises
  :class:`~mltrail.errors.InvalidArgumentError`.
- **Resolution.** :meth:`ArtifactStore.resolve` takes ``[project/]name``, ``name:vN``,
  ``name:alias``, ``name:latest`` or a bare digest (``blake3:<hex>``), within a project when
  one is given. Unknown names, versions, aliases and digests raise
  :class:`~mltrail.errors.NotFoundError`; a name or digest that several artifacts share
  (across projects, or the same content under two names) raises
  :class:`~mltrail.errors.AmbiguousIdError` naming them.
- **Lineage.** A version's ``run_id`` is the run that produced it (an output); inputs are
  recorded with :meth:`ArtifactStore.record_input` (idempotent). :meth:`ArtifactStore.lineage`
  walks outputs and inputs upstream (what a node came from), downstream (what came of it) or
  both, and returns a :class:`~mltrail.artifacts.records.LineageGraph`.
- **Errors.** Unknown runs raise ``NotFoundError``; bad names ``InvalidArgumentError`` naming
  the field and the limit; driver failures ``StoreError`` with the driver's exception chained.

The records and name rules live in :mod:`mltrail.artifacts.records`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from mltrail.artifacts.records import (
        Artifact,
        ArtifactRef,
        ArtifactVersion,
        Direction,
        LineageGraph,
        NewVersion,
    )

__all__ = ["ArtifactStore"]


@runtime_checkable
class ArtifactStore(Protocol):
    """Artifact versions, aliases and lineage in a tracking store. See the module docstring."""

    def log_version(self, new: NewVersion) -> ArtifactVersion:
        """Record ``new`` as a version of its artifact (created on first use), idempotently.

        Returns the existing version when the artifact already has ``new.digest``, else a new
        version ``max + 1``; then points ``new.aliases`` at it.

        Raises:
            NotFoundError: ``new.run_id`` is not a run of this store.
            InvalidArgumentError: the artifact exists with another type; a bad name or alias.
        """
        ...

    def set_alias(self, project: str, name: str, alias: str, version: int) -> ArtifactVersion:
        """Point ``alias`` of artifact ``name`` at ``version`` (moving it); the version.

        Raises:
            NotFoundError: no such artifact or version. InvalidArgumentError: a bad alias.
        """
        ...

    def remove_alias(self, project: str, name: str, alias: str) -> bool:
        """Remove an alias; True when it existed."""
        ...

    def resolve(self, ref: str | ArtifactRef, project: str | None = None) -> ArtifactVersion:
        """The version ``ref`` names (see :func:`~mltrail.artifacts.records.parse_ref`), within
        ``project`` when given.

        A project in ``ref`` itself (``P/name:v1``) wins over ``project``.

        Raises:
            NotFoundError, AmbiguousIdError, InvalidArgumentError: see the module docstring.
        """
        ...

    def list_artifacts(self, project: str | None = None) -> list[Artifact]:
        """Every artifact (of ``project``), by project and name."""
        ...

    def list_versions(self, project: str, name: str) -> list[ArtifactVersion]:
        """Every version of one artifact, oldest first.

        Raises:
            NotFoundError: no such artifact.
        """
        ...

    def record_input(self, run_id: str, version: ArtifactVersion) -> None:
        """Record that ``run_id`` used ``version`` (idempotent).

        Raises:
            NotFoundError: no such run or artifact version.
        """
        ...

    def run_inputs(self, run_id: str) -> list[ArtifactVersion]:
        """The artifact versions ``run_id`` used, in the order first recorded."""
        ...

    def run_outputs(self, run_id: str) -> list[ArtifactVersion]:
        """The artifact versions ``run_id`` produced, oldest first."""
        ...

    def consumers(self, version: ArtifactVersion) -> list[str]:
        """Ids of the runs that used ``version``, in the order recorded."""
        ...

    def lineage(
        self,
        *,
        run_id: str | None = None,
        version: ArtifactVersion | None = None,
        direction: Direction = "both",
        max_depth: int | None = None,
    ) -> LineageGraph:
        """The lineage graph from a run or an artifact version (give exactly one).

        ``upstream`` follows what a node came from (a run's inputs, a version's producing run),
        ``downstream`` what came of it (a run's outputs, a version's consumers); ``max_depth``
        counts edges (None: no limit, up to 10,000 nodes).

        Raises:
            NotFoundError: no such run. InvalidArgumentError: neither or both roots given.
        """
        ...
