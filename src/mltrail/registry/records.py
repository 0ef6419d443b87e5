"""Registry records (frozen) and the rules for names, aliases and model references.

A *registered model* is a name in a project; each *version* (1, 2, ... without gaps) points
at an artifact version by its content digest, so the bytes of a model version never change.
*Aliases* (``staging``, ``production``) point at one version and move; ``latest`` is
implicit. Every change is a :class:`HistoryEvent`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from mltrail.artifacts.records import _check_word, check_metadata
from mltrail.errors import InvalidArgumentError

__all__ = [
    "ACTIONS",
    "ALIAS_LATEST",
    "MAX_REASON_CHARS",
    "HistoryEvent",
    "ModelRef",
    "ModelVersion",
    "NewModelVersion",
    "RegisteredModel",
    "check_card",
    "check_model_alias",
    "check_model_name",
    "check_reason",
    "check_tags",
    "check_version_number",
    "parse_model_ref",
]

ALIAS_LATEST = "latest"
MAX_NAME_CHARS = 128
MAX_ALIAS_CHARS = 64
MAX_REASON_CHARS = 2000
MAX_DESCRIPTION_CHARS = 20_000
MAX_TAGS = 100
MAX_TAG_CHARS = 5000
MAX_VERSION = 999_999_999
MAX_CARD_BYTES = 256 * 1024
#: every kind of history event (one per mutation)
ACTIONS = (
    "model_created",
    "model_updated",
    "model_archived",
    "model_restored",
    "version_created",
    "version_archived",
    "version_restored",
    "alias_set",
    "alias_moved",
    "alias_removed",
    "card_updated",
)
_VERSION = re.compile(r"^v?([0-9]{1,9})$")


def check_model_name(name: object) -> str:
    """A model name: 1-128 letters, digits, ``-_.``, starting with a letter or digit.

    Raises:
        InvalidArgumentError: naming the field and the rule broken.
    """
    return _check_word(name, "model name", MAX_NAME_CHARS)


def check_model_alias(alias: object) -> str:
    """An alias: like a name (at most 64 characters), neither ``latest`` nor a number.

    Raises:
        InvalidArgumentError: naming the alias and the rule broken.
    """
    text = _check_word(alias, "model alias", MAX_ALIAS_CHARS)
    if text == ALIAS_LATEST:
        raise InvalidArgumentError("model alias 'latest' is implicit (the highest version)")
    if _VERSION.match(text):
        raise InvalidArgumentError(f"model alias {text!r} looks like a version number")
    return text


def check_version_number(version: object, what: str = "model version") -> int:
    """A version number: an int from 1 to 999,999,999.

    Raises:
        InvalidArgumentError: naming ``what`` and the limit.
    """
    if isinstance(version, bool) or not isinstance(version, int):
        raise InvalidArgumentError(f"{what} must be an int, got {version!r}")
    if not 1 <= version <= MAX_VERSION:
        raise InvalidArgumentError(f"{what} must be 1..{MAX_VERSION}, got {version}")
    return version


def check_reason(reason: object) -> str:
    """A reason for a change: text of at most 2,000 characters (may be empty).

    Raises:
        InvalidArgumentError: not text, too long or holding a NUL.
    """
    if reason is None:
        return ""
    if not isinstance(reason, str):
        raise InvalidArgumentError(f"reason must be a str, got {type(reason).__name__}")
    if len(reason) > MAX_REASON_CHARS:
        raise InvalidArgumentError(
            f"reason is {len(reason)} characters; the limit is {MAX_REASON_CHARS}"
        )
    if "\x00" in reason:
        raise InvalidArgumentError("reason contains a NUL byte")
    return reason


def check_text(value: object, what: str, limit: int) -> str:
    """Free text (a description, an owner) of at most ``limit`` characters, no NUL."""
    if not isinstance(value, str):
        raise InvalidArgumentError(f"{what} must be a str, got {type(value).__name__}")
    if len(value) > limit:
        raise InvalidArgumentError(f"{what} is {len(value)} characters; the limit is {limit}")
    if "\x00" in value:
        raise InvalidArgumentError(f"{what} contains a NUL byte")
    return value


def check_card(card: object) -> dict[str, Any]:
    """A model card document: a JSON object of at most 256 KB.

    Raises:
        InvalidArgumentError: naming the card and the limit.
    """
    if not isinstance(card, dict):
        raise InvalidArgumentError(f"model card must be a dict, got {type(card).__name__}")
    try:
        text = dumps(card)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"model card is not plain JSON: {exc}") from None
    size = len(text.encode())
    if size > MAX_CARD_BYTES:
        raise InvalidArgumentError(
            f"model card is {size} bytes as JSON; the limit is {MAX_CARD_BYTES}"
        )
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def check_tags(tags: object) -> dict[str, str]:
    """Model tags: at most 100 ``str -> str`` pairs, keys like names, values <= 5,000 chars.

    Raises:
        InvalidArgumentError: naming the tag and the limit broken.
    """
    if tags is None:
        return {}
    if not isinstance(tags, dict):
        raise InvalidArgumentError(f"model tags must be a dict, got {type(tags).__name__}")
    if len(tags) > MAX_TAGS:
        raise InvalidArgumentError(f"model tags: {len(tags)} given; the limit is {MAX_TAGS}")
    out: dict[str, str] = {}
    for key, value in tags.items():
        k = _check_word(key, "model tag key", MAX_ALIAS_CHARS * 4)
        out[k] = check_text(value, f"model tag {k!r}", MAX_TAG_CHARS)
    return dict(sorted(out.items()))


@dataclass(frozen=True, slots=True)
class ModelRef:
    """What ``models:/[project/]name[@alias|/N]`` names (neither: the latest version)."""

    name: str
    project: str | None = None
    alias: str | None = None
    version: int | None = None

    def __str__(self) -> str:
        base = f"models:/{self.project + '/' if self.project else ''}{self.name}"
        if self.alias is not None:
            return f"{base}@{self.alias}"
        return f"{base}/{self.version}" if self.version is not None else base


def parse_model_ref(text: object) -> ModelRef:
    """Parse ``models:/name``, ``models:/name@alias``, ``models:/name/3`` (with an optional
    ``project/`` before the name).

    Raises:
        InvalidArgumentError: anything else, naming the accepted forms.
    """
    if not isinstance(text, str) or len(text) > 512:
        raise InvalidArgumentError(f"model reference must be a str of <= 512 chars: {text!r}")
    bad = InvalidArgumentError(
        f"model reference {text!r}: expected models:/NAME, models:/NAME@ALIAS or "
        "models:/NAME/VERSION (optionally models:/PROJECT/NAME@ALIAS)"
    )
    if not text.startswith("models:/"):
        raise bad
    body, alias = text[len("models:/") :], None
    if "@" in body:
        body, _, alias = body.partition("@")
        if not alias or "/" in alias:
            raise bad
    parts = body.split("/")
    version: str | None = None
    if alias is None and len(parts) in (2, 3) and parts[-1].isdigit():
        version = parts.pop()
    if len(parts) not in (1, 2) or not all(parts):
        raise bad
    project = parts[0] if len(parts) == 2 else None
    if alias is not None and alias != ALIAS_LATEST:
        alias = check_model_alias(alias)
    return ModelRef(
        name=check_model_name(parts[-1]),
        project=project,
        alias=None if alias == ALIAS_LATEST else alias,
        version=None if version is None else check_version_number(int(version)),
    )


@dataclass(frozen=True, slots=True)
class RegisteredModel:
    """A registered model: its name, description, tags, owner, aliases and counts."""

    project: str
    name: str
    description: str
    owner: str
    tags: dict[str, str]
    archived: bool
    created_ms: int
    updated_ms: int
    latest_version: int
    version_count: int
    aliases: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "name": self.name,
            "description": self.description,
            "owner": self.owner,
            "tags": dict(self.tags),
            "archived": self.archived,
            "created_ms": self.created_ms,
            "updated_ms": self.updated_ms,
            "latest_version": self.latest_version,
            "version_count": self.version_count,
            "aliases": dict(self.aliases),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RegisteredModel:
        return cls(
            project=str(d["project"]),
            name=str(d["name"]),
            description=str(d.get("description", "")),
            owner=str(d.get("owner", "")),
            tags={str(k): str(v) for k, v in (d.get("tags") or {}).items()},
            archived=bool(d.get("archived", False)),
            created_ms=int(d["created_ms"]),
            updated_ms=int(d["updated_ms"]),
            latest_version=int(d["latest_version"]),
            version_count=int(d["version_count"]),
            aliases={str(k): int(v) for k, v in (d.get("aliases") or {}).items()},
        )


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One version of a registered model: the artifact version it is (by digest), the run
    that made it, its signature and metadata, its current card and aliases."""

    project: str
    name: str
    version: int
    artifact: str  # name:vN of the artifact version
    digest: str
    kind: str
    size: int
    file_count: int
    run_id: str | None
    signature: dict[str, Any]
    metadata: dict[str, Any]
    description: str
    archived: bool
    created_ms: int
    created_by: str
    card: dict[str, Any]
    card_revision: int
    aliases: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        """``models:/project/name/N``."""
        return f"models:/{self.project}/{self.name}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "name": self.name,
            "version": self.version,
            "ref": self.ref,
            "artifact": self.artifact,
            "digest": self.digest,
            "kind": self.kind,
            "size": self.size,
            "file_count": self.file_count,
            "run_id": self.run_id,
            "signature": self.signature,
            "metadata": self.metadata,
            "description": self.description,
            "archived": self.archived,
            "created_ms": self.created_ms,
            "created_by": self.created_by,
            "card": self.card,
            "card_revision": self.card_revision,
            "aliases": list(self.aliases),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelVersion:
        return cls(
            project=str(d["project"]),
            name=str(d["name"]),
            version=int(d["version"]),
            artifact=str(d["artifact"]),
            digest=str(d["digest"]),
            kind=str(d["kind"]),
            size=int(d["size"]),
            file_count=int(d["file_count"]),
            run_id=None if d.get("run_id") is None else str(d["run_id"]),
            signature=dict(d.get("signature") or {}),
            metadata=dict(d.get("metadata") or {}),
            description=str(d.get("description", "")),
            archived=bool(d.get("archived", False)),
            created_ms=int(d["created_ms"]),
            created_by=str(d.get("created_by", "")),
            card=dict(d.get("card") or {}),
            card_revision=int(d.get("card_revision", 0)),
            aliases=tuple(str(a) for a in d.get("aliases") or ()),
        )


@dataclass(frozen=True, slots=True)
class NewModelVersion:
    """A version to register: the artifact version ``artifact_name:vN`` of ``project`` (its
    digest, kind and size are read from the artifact store, so they cannot be forged)."""

    project: str
    name: str
    artifact_name: str
    artifact_version: int
    run_id: str | None = None
    signature: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    actor: str = ""
    reason: str = ""

    def checked(self) -> NewModelVersion:
        """A copy with every field validated (NFC names, JSON sizes).

        Raises:
            InvalidArgumentError: naming the field and the limit.
        """
        from mltrail._validation import check_key
        from mltrail.artifacts.records import check_artifact_name

        return NewModelVersion(
            project=check_key(self.project, "project"),
            name=check_model_name(self.name),
            artifact_name=check_artifact_name(self.artifact_name),
            artifact_version=check_version_number(self.artifact_version, "artifact version"),
            run_id=self.run_id,
            signature=check_metadata(self.signature),
            metadata=check_metadata(self.metadata),
            description=check_text(self.description, "description", MAX_DESCRIPTION_CHARS),
            actor=check_text(self.actor, "actor", 250),
            reason=check_reason(self.reason),
        )


@dataclass(frozen=True, slots=True)
class HistoryEvent:
    """One change of a registered model, append-only: ``seq`` counts 1, 2, ... per model.

    ``before``/``after`` are what the change replaced and what it wrote (None for nothing).
    """

    project: str
    name: str
    seq: int
    created_ms: int
    actor: str
    action: str
    version: int | None
    alias: str | None
    reason: str
    before: Any
    after: Any

    def to_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "name": self.name,
            "seq": self.seq,
            "created_ms": self.created_ms,
            "actor": self.actor,
            "action": self.action,
            "version": self.version,
            "alias": self.alias,
            "reason": self.reason,
            "before": self.before,
            "after": self.after,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HistoryEvent:
        return cls(
            project=str(d["project"]),
            name=str(d["name"]),
            seq=int(d["seq"]),
            created_ms=int(d["created_ms"]),
            actor=str(d.get("actor", "")),
            action=str(d["action"]),
            version=None if d.get("version") is None else int(d["version"]),
            alias=None if d.get("alias") is None else str(d["alias"]),
            reason=str(d.get("reason", "")),
            before=d.get("before"),
            after=d.get("after"),
        )


def dumps(value: Any) -> str:
    """Canonical JSON for stored documents (sorted keys, no NaN)."""
    return json.dumps(value, sort_keys=True, allow_nan=False, separators=(",", ":"))
