"""The ``ModelRegistry`` protocol: registered models, versions, aliases, cards and history.

Contract, for every backend (checked by :class:`mltrail.testing.ModelRegistryContract` over
SQLite, PostgreSQL and a server):

- **Versions.** :meth:`ModelRegistry.register_version` creates the model on first use and
  gives it the version ``max + 1``: versions start at 1 and have no gaps, also when many
  processes register at once. A version is an artifact version of the same project, pinned
  by its content digest (read from the artifact store, never taken from the caller), so the
  bytes a version names never change. Versions are never deleted; they are archived.
- **Aliases.** An alias (any name but ``latest`` and numbers) points at one version and is
  moved atomically. With ``expected_version`` the move happens only if the alias is at that
  version now (``0``: not set); otherwise :class:`~mltrail.errors.VersionConflictError`
  naming the current version, and nothing changes. Of N concurrent moves expecting the same
  version exactly one wins. ``latest`` is implicit (the highest version).
- **History.** Every call that changes something appends exactly one
  :class:`~mltrail.registry.records.HistoryEvent` (who, when, the reason, before and after)
  in the same transaction as the change; a call that changes nothing (removing an absent
  alias, pointing an alias where it already is, an identical card) appends none. History is
  never updated or deleted; ``seq`` counts 1, 2, ... per model without gaps.
- **Who.** ``actor`` is recorded as given, except by a backend that authenticates its
  callers (a server), which records the authenticated identity instead.
- **Cards.** A version's model card is a JSON document stored with the version; each change
  is a new revision (``card_revision``), the old ones kept.
- **Errors.** Unknown models, versions, aliases and runs raise
  :class:`~mltrail.errors.NotFoundError`; bad names, reasons, tags or JSON raise
  :class:`~mltrail.errors.InvalidArgumentError` naming the field and the limit; an archived
  version cannot get an alias (``InvalidArgumentError``); driver failures raise
  :class:`~mltrail.errors.StoreError`. All methods are thread-safe; records are frozen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from mltrail.registry.records import (
        HistoryEvent,
        ModelRef,
        ModelVersion,
        NewModelVersion,
        RegisteredModel,
    )

__all__ = ["ModelRegistry"]


@runtime_checkable
class ModelRegistry(Protocol):
    """Registered models and their versions, aliases, cards and history (module docstring)."""

    def create_model(
        self,
        project: str,
        name: str,
        *,
        description: str = "",
        owner: str = "",
        tags: dict[str, str] | None = None,
        actor: str = "",
        reason: str = "",
    ) -> RegisteredModel:
        """Register a model name with no versions yet.

        Raises:
            AlreadyExistsError: the project already has a model of this name.
        """
        ...

    def update_model(
        self,
        project: str,
        name: str,
        *,
        description: str | None = None,
        owner: str | None = None,
        tags: dict[str, str] | None = None,
        actor: str = "",
        reason: str = "",
    ) -> RegisteredModel:
        """Change the description, owner or tags (None: keep); one ``model_updated`` event."""
        ...

    def set_model_archived(
        self, project: str, name: str, archived: bool, *, actor: str = "", reason: str = ""
    ) -> RegisteredModel:
        """Archive (or restore) a model: listings leave archived models out by default."""
        ...

    def get_model(self, project: str, name: str) -> RegisteredModel:
        """One model. Raises NotFoundError."""
        ...

    def list_models(
        self, project: str | None = None, *, include_archived: bool = False
    ) -> list[RegisteredModel]:
        """Models (of ``project``) by project and name."""
        ...

    def register_version(self, new: NewModelVersion) -> ModelVersion:
        """Add the next version of ``new.name`` (creating the model on first use).

        Raises:
            NotFoundError: no such artifact version or run in the project.
        """
        ...

    def get_version(self, project: str, name: str, version: int) -> ModelVersion:
        """One version. Raises NotFoundError."""
        ...

    def list_versions(self, project: str, name: str) -> list[ModelVersion]:
        """Every version of a model, oldest first. Raises NotFoundError."""
        ...

    def set_version_archived(
        self,
        project: str,
        name: str,
        version: int,
        archived: bool,
        *,
        actor: str = "",
        reason: str = "",
    ) -> ModelVersion:
        """Archive (or restore) a version. An aliased version cannot be archived
        (InvalidArgumentError naming its aliases)."""
        ...

    def set_alias(
        self,
        project: str,
        name: str,
        alias: str,
        version: int,
        *,
        expected_version: int | None = None,
        actor: str = "",
        reason: str = "",
        override: dict[str, Any] | None = None,
    ) -> ModelVersion:
        """Point ``alias`` at ``version``; ``override`` (the rules an admin overrode) goes
        into the event.

        Raises:
            VersionConflictError: ``expected_version`` given and the alias is elsewhere.
        """
        ...

    def remove_alias(
        self,
        project: str,
        name: str,
        alias: str,
        *,
        expected_version: int | None = None,
        actor: str = "",
        reason: str = "",
    ) -> bool:
        """Remove an alias; False (and no event) when it was not set.

        Raises:
            VersionConflictError: ``expected_version`` given and the alias is elsewhere.
        """
        ...

    def resolve(self, ref: ModelRef | str, project: str | None = None) -> ModelVersion:
        """The version ``models:/[project/]name[@alias|/N]`` names (none: the latest).

        Raises:
            NotFoundError: no such model, alias or version. AmbiguousIdError: the name
            exists in several projects and none was given.
        """
        ...

    def update_card(
        self,
        project: str,
        name: str,
        version: int,
        card: dict[str, Any],
        *,
        actor: str = "",
        reason: str = "",
    ) -> ModelVersion:
        """Store ``card`` as the version's new card revision (at most 256 KB as JSON)."""
        ...

    def history(self, project: str, name: str, *, limit: int = 1000) -> list[HistoryEvent]:
        """The model's events, oldest first (the last ``limit``). Raises NotFoundError."""
        ...
