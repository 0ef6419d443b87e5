"""The model registry from Python: register, alias, card, load.

Example:
    >>> import mltrail  # doctest: +SKIP
    >>> v = mltrail.register_model("fraud", run=run, artifact="model:v3")
    >>> mltrail.set_alias("fraud", "staging", v.version)
    >>> mltrail.models.card("fraud", v.version).update(intended_use="...", limitations="...")
    >>> mltrail.set_alias("fraud", "production", v.version)  # refused until the card is complete
    >>> path = mltrail.load_model_ref("models:/fraud@production")

Every function works on the store a run uses, ``store=`` or ``MLTRAIL_STORE`` (else the
embedded ``./.mltrail``). Alias moves check the policy of the committed
``.mltrail/config.toml`` found from the working directory upwards (and the model's own
``mltrail.policy`` tag), see :mod:`mltrail.registry.policy`.
"""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltrail.errors import AmbiguousIdError, IntegrityError, InvalidArgumentError, NotFoundError
from mltrail.registry.records import NewModelVersion, check_model_name
from mltrail.store.registry import StoreLocation, open_store, resolve_location

if TYPE_CHECKING:
    import builtins
    from collections.abc import Mapping

    from mltrail.artifacts.records import ArtifactVersion
    from mltrail.registry.base import ModelRegistry
    from mltrail.registry.records import HistoryEvent, ModelVersion, RegisteredModel
    from mltrail.sdk.run import Run
    from mltrail.store.base import TrackingStore

__all__ = [
    "Card",
    "load_model_ref",
    "model_artifact",
    "models",
    "register_model",
    "set_alias",
]


def _actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""


def _location(run: Run | str | None, store: str | os.PathLike[str] | None) -> StoreLocation:
    from mltrail.sdk.run import Run

    if isinstance(run, Run):
        return run.location
    if store is None and run is None:
        from mltrail.sdk.active import active_run

        live = active_run()
        if live is not None:
            return live.location
    return resolve_location(store)


def _open(location: StoreLocation) -> tuple[TrackingStore, ModelRegistry]:
    from mltrail.errors import ArtifactsUnsupportedError
    from mltrail.store.optional import HasModelRegistry

    tracking = open_store(location)
    if not isinstance(tracking, HasModelRegistry):
        raise ArtifactsUnsupportedError(
            f"the store {location.display} keeps no model registry: use an embedded, "
            "sqlite:///, postgresql:// or http(s):// store"
        )
    return tracking, tracking.model_registry()


def _project(reg: ModelRegistry, name: str, project: str | None) -> str:
    if project is not None:
        return project
    found = sorted({m.project for m in reg.list_models(include_archived=True) if m.name == name})
    if not found:
        raise NotFoundError(f"no model named {name!r}")
    if len(found) > 1:
        raise AmbiguousIdError(
            f"model {name!r} exists in several projects ({', '.join(found)}); pass project="
        )
    return found[0]


def config_dir(start: Path | None = None) -> Path | None:
    """The ``.mltrail`` folder holding ``config.toml``, from ``start`` (cwd) up to the git root."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / ".mltrail" / "config.toml").is_file():
            return folder / ".mltrail"
        if (folder / ".git").exists():
            return None
    return None


def _artifact_version(
    run: Run | str | None,
    artifact: str | os.PathLike[str],
    name: str,
    location: StoreLocation,
    project: str | None,
    tracking: TrackingStore,
) -> tuple[str, str, int, str | None]:
    """``(project, artifact name, version, run id)`` of what to register; a path is stored
    first as a version of the ``model`` artifact ``name`` produced by the run."""
    from mltrail.sdk.run import Run
    from mltrail.store.registry import open_artifact_store

    arts = open_artifact_store(location)
    run_id = run.run_id if isinstance(run, Run) else run
    if run_id is not None and project is None:
        project = run.project if isinstance(run, Run) else tracking.get_run(run_id).project
    text = os.fspath(artifact)
    if isinstance(artifact, os.PathLike) or Path(text).exists():
        if isinstance(run, Run):
            version = run.log_artifact(text, name=name, type="model")
        else:
            version = _store_path(text, name, location, arts, project, run_id)
        return version.project, version.name, version.version, run_id
    found = arts.resolve(text, project=project)
    if run_id is None:
        run_id = found.run_id
    return found.project, found.name, found.version, run_id


def _store_path(
    text: str,
    name: str,
    location: StoreLocation,
    arts: Any,
    project: str | None,
    run_id: str | None,
) -> Any:
    from mltrail.artifacts.records import NewVersion
    from mltrail.artifacts.storage import storage_for

    if project is None:
        raise InvalidArgumentError("register_model from a path needs run= or project=")
    local = Path(text).expanduser().resolve()
    staged = storage_for(location).store_path(local)
    return arts.log_version(
        NewVersion(
            project=project,
            name=name,
            type="model",
            digest=staged.digest,
            kind=staged.kind,
            size=staged.size,
            file_count=staged.file_count,
            source={"filename": local.name, "path": str(local)},
            run_id=run_id,
        )
    )


def register_model(
    name: str,
    run: Run | str | None = None,
    artifact: str | os.PathLike[str] | None = None,
    *,
    project: str | None = None,
    signature: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
    description: str = "",
    reason: str = "",
    store: str | os.PathLike[str] | None = None,
) -> ModelVersion:
    """Register the next version of model ``name`` (created on first use).

    Args:
        name: the model's name (letters, digits, ``-_.``; at most 128 characters).
        run: the source run: a live :class:`~mltrail.Run` or a run id (default: the active
            run, else the artifact's producing run).
        artifact: an artifact reference (``model:v3``, ``model:best``, ``PROJECT/model``) or
            a path to a file or directory, stored first as a ``model`` artifact of the run.
        signature: inputs/outputs as you describe them (JSON, at most 64 KB).
        metadata: other facts (JSON, at most 64 KB).

    Returns:
        The new version: its number, digest (the bytes it pins) and source run.

    Raises:
        InvalidArgumentError: a bad name, reference or JSON (the message names the field).
        NotFoundError: no such run or artifact version.
    """
    name = check_model_name(name)
    if artifact is None:
        raise InvalidArgumentError("register_model needs artifact= (a reference or a path)")
    location = _location(run, store)
    tracking, reg = _open(location)
    if run is None and store is None:
        from mltrail.sdk.active import active_run

        run = active_run()
    if project is None and run is None:
        try:  # a new version of a known model: its project
            project = _project(reg, name, None)
        except NotFoundError:
            project = None
    proj, art_name, art_version, run_id = _artifact_version(
        run, artifact, name, location, project, tracking
    )
    return reg.register_version(
        NewModelVersion(
            project=proj,
            name=name,
            artifact_name=art_name,
            artifact_version=art_version,
            run_id=run_id,
            signature=dict(signature or {}),
            metadata=dict(metadata or {}),
            description=description,
            actor=_actor(),
            reason=reason,
        )
    )


def set_alias(
    name: str,
    alias: str,
    version: int,
    *,
    expected_version: int | None = None,
    reason: str = "",
    override_reason: str | None = None,
    project: str | None = None,
    store: str | os.PathLike[str] | None = None,
) -> ModelVersion:
    """Point ``alias`` of model ``name`` at ``version``, under the registry policy.

    Args:
        expected_version: move only if the alias is at this version now (0: not set).
        reason: why (kept in the history).
        override_reason: move even though policy rules are unmet (an admin's decision; the
            history records the rules overridden and this reason).

    Raises:
        PolicyViolationError: the alias is protected and rules are unmet (all listed).
        VersionConflictError: ``expected_version`` given and the alias is elsewhere.
    """
    from mltrail.registry.policy import guarded_set_alias, load_policy

    location = _location(None, store)
    tracking, reg = _open(location)
    proj = _project(reg, name, project)
    policy = load_policy(config_dir())
    if location.scheme in ("http", "https"):  # the server checks the model's rules too
        reg = _ForwardOverride(reg, override_reason)
    return guarded_set_alias(
        reg,
        tracking,
        policy,
        proj,
        name,
        alias,
        version,
        expected_version=expected_version,
        actor=_actor(),
        reason=reason,
        override_reason=override_reason,
    )


class _ForwardOverride:
    """A server's registry whose ``set_alias`` also sends the override reason (the server
    applies the model's own policy and may need it)."""

    def __init__(self, reg: Any, override_reason: str | None) -> None:
        self._reg = reg
        self._override_reason = override_reason

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reg, name)

    def set_alias(self, *args: Any, **kwargs: Any) -> ModelVersion:
        got: ModelVersion = self._reg.set_alias(
            *args, override_reason=self._override_reason, **kwargs
        )
        return got


def model_artifact(
    ref: str, *, project: str | None = None, store: str | os.PathLike[str] | None = None
) -> ArtifactVersion:
    """The artifact version ``models:/...`` names, checked against the digest it pinned.

    Raises:
        NotFoundError: no such model, alias or version.
        IntegrityError: the artifact version no longer has the digest the model pinned.
    """
    from mltrail.store.registry import open_artifact_store

    location = _location(None, store)
    _, reg = _open(location)
    version = reg.resolve(ref, project=project)
    found = open_artifact_store(location).resolve(
        f"{version.project}/{version.artifact}", project=version.project
    )
    if found.digest != version.digest:
        raise IntegrityError(
            f"{version.ref} pins {version.digest} but artifact {version.artifact} has "
            f"{found.digest}"
        )
    return found


def load_model_ref(
    ref: str,
    root: str | os.PathLike[str] | None = None,
    *,
    project: str | None = None,
    store: str | os.PathLike[str] | None = None,
) -> Path:
    """Fetch the files of ``models:/name@alias`` (or ``/N``, or the latest) by digest,
    every object verified, into the cache (or ``root``); the file or directory.

    Raises:
        NotFoundError: no such model, alias or version, or its bytes are not in the storage.
        CorruptObjectError: a stored object fails verification.
        IntegrityError: the artifact version no longer has the digest the model pinned.
    """
    from mltrail.artifacts.access import checkout_version

    found = model_artifact(ref, project=project, store=store)
    return checkout_version(found, _location(None, store), root)


class Card:
    """The model card of one version: read it, update sections, export it."""

    def __init__(self, reg: ModelRegistry, tracking: TrackingStore, version: ModelVersion):
        self._reg = reg
        self._tracking = tracking
        self.version = version

    @property
    def data(self) -> dict[str, Any]:
        """The card's sections (a copy)."""
        return dict(self.version.card)

    def update(self, reason: str = "", **sections: Any) -> Card:
        """Set sections (None removes one); empty sections the record can fill (model
        details, training data with digests, evaluation results) are filled from the run.

        Raises:
            InvalidArgumentError: an unknown section (the known ones are listed).
        """
        from mltrail.registry.cards import autofill, merge_sections

        card = merge_sections(self.version.card, sections)
        run, data = self._run_facts()
        card = autofill(card, self.version, run, data)
        v = self.version
        self.version = self._reg.update_card(
            v.project, v.name, v.version, card, actor=_actor(), reason=reason
        )
        return self

    def missing(self, required: tuple[str, ...] | None = None) -> list[str]:
        """The sections of ``required`` (default: all) left empty."""
        from mltrail.registry.cards import SECTIONS, missing_sections

        return missing_sections(self.version.card, required or tuple(SECTIONS))

    def export(self, fmt: str = "md") -> str:
        """The card as ``md``, ``html`` or ``json``."""
        from mltrail.registry.cards import render

        return render(self.version, fmt)

    def _run_facts(self) -> tuple[Any, list[dict[str, Any]]]:
        run_id = self.version.run_id
        if run_id is None:
            return None, []
        try:
            run = self._tracking.get_run(run_id)
        except NotFoundError:
            return None, []
        data: list[dict[str, Any]] = []
        state = self._tracking.get_state(run_id).get("data", {})
        for p in state.get("pointers", []) if isinstance(state, dict) else []:
            if isinstance(p, dict) and p.get("digest"):
                data.append({"path": p.get("path"), "digest": p["digest"], "size": p.get("size")})
        from mltrail.store.optional import HasArtifacts

        if isinstance(self._tracking, HasArtifacts):
            for a in self._tracking.artifacts().run_inputs(run_id):
                data.append({"name": a.qualified, "digest": a.digest, "size": a.size})
        return run, data


class _Models:
    """``mltrail.models``: read the registry and edit cards."""

    def card(
        self,
        name: str,
        version: int,
        *,
        project: str | None = None,
        store: str | os.PathLike[str] | None = None,
    ) -> Card:
        """The card of ``name`` version ``version``."""
        tracking, reg = _open(_location(None, store))
        got = reg.get_version(_project(reg, name, project), name, version)
        return Card(reg, tracking, got)

    def get(
        self, name: str, *, project: str | None = None, store: str | None = None
    ) -> RegisteredModel:
        """One registered model."""
        _, reg = _open(_location(None, store))
        return reg.get_model(_project(reg, name, project), name)

    def list(
        self,
        project: str | None = None,
        *,
        include_archived: bool = False,
        store: str | None = None,
    ) -> list[RegisteredModel]:
        """Registered models (of ``project``)."""
        _, reg = _open(_location(None, store))
        return reg.list_models(project, include_archived=include_archived)

    def versions(
        self, name: str, *, project: str | None = None, store: str | None = None
    ) -> builtins.list[ModelVersion]:
        """Every version of a model, oldest first."""
        _, reg = _open(_location(None, store))
        return reg.list_versions(_project(reg, name, project), name)

    def history(
        self, name: str, *, project: str | None = None, store: str | None = None
    ) -> builtins.list[HistoryEvent]:
        """The model's history, oldest first."""
        _, reg = _open(_location(None, store))
        return reg.history(_project(reg, name, project), name)


models = _Models()
