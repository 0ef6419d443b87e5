"""Artifact records and the rules for names, aliases, types, metadata and references.

An *artifact* is a named thing of a project (a dataset, a model, ...); each distinct content it
has had is a *version* ``name:vN``, identified by its content digest. The bytes live in a
content-addressed object store (:mod:`mltrail.objects`), never in the tracking store; the
versions, aliases and lineage are kept by an :class:`~mltrail.artifacts.base.ArtifactStore`.

This module is light (no SQL, no hashing): the SDK, the CLI and every store import it.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from mltrail.entities import json_safe
from mltrail.errors import InvalidArgumentError

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "ALIAS_LATEST",
    "ARTIFACT_KINDS",
    "MAX_ALIAS_CHARS",
    "MAX_METADATA_BYTES",
    "MAX_NAME_CHARS",
    "MAX_TYPE_CHARS",
    "Artifact",
    "ArtifactRef",
    "ArtifactVersion",
    "Direction",
    "LineageEdge",
    "LineageGraph",
    "LineageNode",
    "NewVersion",
    "check_alias",
    "check_lineage_args",
    "check_artifact_name",
    "check_artifact_type",
    "check_metadata",
    "parse_ref",
]

#: The implicit alias of every artifact's highest version.
ALIAS_LATEST = "latest"
ARTIFACT_KINDS = ("file", "tree", "reference")
MAX_NAME_CHARS = 128
MAX_ALIAS_CHARS = 64
MAX_TYPE_CHARS = 64
MAX_METADATA_BYTES = 64 * 1024
#: Lineage graphs stop growing past this many nodes (``truncated`` says so).
MAX_LINEAGE_NODES = 10_000

Direction = Literal["upstream", "downstream", "both"]

_DIGEST = re.compile(r"^(blake3|sha256|md5):[0-9a-f]{32,128}(\.tree)?$")
_VERSION = re.compile(r"^v([0-9]{1,9})$")
_EXTRA = "-_."


def _check_word(value: object, what: str, limit: int) -> str:
    """A name-like string: NFC, 1..limit characters, letters, digits and ``- _ .``."""
    if not isinstance(value, str):
        raise InvalidArgumentError(f"{what} must be a str, got {type(value).__name__}")
    if "\x00" in value:
        raise InvalidArgumentError(f"{what} {value[:40]!r} contains a NUL byte")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgumentError(
            f"{what} {value[:40]!r} contains a lone surrogate and is not valid Unicode"
        ) from None
    text = unicodedata.normalize("NFC", value)
    if not text:
        raise InvalidArgumentError(f"{what} must not be empty")
    if len(text) > limit:
        raise InvalidArgumentError(
            f"{what} {text[:40]!r}... is {len(text)} characters; the limit is {limit}"
        )
    bad = sorted({ch for ch in text if not (ch.isalnum() or ch in _EXTRA)})
    if bad:
        shown = ", ".join(repr(ch) for ch in bad[:5])
        raise InvalidArgumentError(
            f"{what} {text[:40]!r} contains {shown}; use letters, digits, '-', '_' and '.'"
        )
    if not text[0].isalnum():
        raise InvalidArgumentError(f"{what} {text[:40]!r} must start with a letter or digit")
    return text


def check_artifact_name(name: object) -> str:
    """Validate and NFC-normalise an artifact name.

    Rules: a str of 1 to 128 characters; letters, digits, ``-``, ``_`` and ``.``; starting
    with a letter or digit (so ``:`` separates versions and ``/`` projects unambiguously, and
    no name is a path like ``..``). Case is kept.

    Raises:
        InvalidArgumentError: naming the field and the rule broken.
    """
    return _check_word(name, "artifact name", MAX_NAME_CHARS)


def check_alias(alias: object) -> str:
    """Validate an alias: like a name (at most 64 characters), not ``latest`` nor ``vN``.

    Raises:
        InvalidArgumentError: naming the alias and the rule broken.
    """
    text = _check_word(alias, "artifact alias", MAX_ALIAS_CHARS)
    if text == ALIAS_LATEST:
        raise InvalidArgumentError(
            "artifact alias 'latest' is implicit (the highest version) and cannot be set"
        )
    if _VERSION.match(text):
        raise InvalidArgumentError(
            f"artifact alias {text!r} looks like a version number; pick another alias"
        )
    return text


def check_artifact_type(type_: object) -> str:
    """Validate an artifact type (``dataset``, ``model``, ...): like a name, at most 64 chars."""
    return _check_word(type_, "artifact type", MAX_TYPE_CHARS)


def check_metadata(metadata: object) -> dict[str, Any]:
    """Validate version metadata: a JSON-serialisable mapping of at most 64 KB.

    Non-finite floats are kept as the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``.

    Raises:
        InvalidArgumentError: not a mapping, not JSON, or over the limit.
    """
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise InvalidArgumentError(
            f"artifact metadata must be a mapping, got {type(metadata).__name__}"
        )
    try:
        clean = json_safe({str(k): v for k, v in metadata.items()})
        text = json.dumps(clean, allow_nan=False, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"artifact metadata must be JSON-serialisable: {exc}") from None
    if "\\u0000" in text:
        raise InvalidArgumentError("artifact metadata contains a NUL character")
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidArgumentError("artifact metadata contains a lone surrogate") from None
    if size > MAX_METADATA_BYTES:
        raise InvalidArgumentError(
            f"artifact metadata is {size} bytes as JSON; the limit is {MAX_METADATA_BYTES}"
        )
    result: dict[str, Any] = json.loads(text)
    return result


@dataclass(frozen=True, slots=True)
class ArtifactRef:
    """A parsed artifact reference (see :func:`parse_ref`).

    Exactly one of: ``digest`` set (a bare digest); or ``name`` set with at most one of
    ``version`` / ``alias`` (neither means ``latest``).
    """

    project: str | None = None
    name: str | None = None
    version: int | None = None
    alias: str | None = None
    digest: str | None = None

    def __str__(self) -> str:
        head = f"{self.project}/" if self.project else ""
        if self.digest is not None:
            return head + self.digest
        tail = f":v{self.version}" if self.version is not None else ""
        tail = f":{self.alias}" if self.alias is not None else tail
        return f"{head}{self.name}{tail}"


def parse_ref(text: object) -> ArtifactRef:
    """Parse ``[project/]name[:vN|:alias]`` or ``[project/]<algo>:<hex>`` (a bare digest).

    Raises:
        InvalidArgumentError: the reference is malformed (the message shows the accepted forms).
    """
    if not isinstance(text, str):
        raise InvalidArgumentError(f"artifact reference must be a str, got {type(text).__name__}")
    raw = unicodedata.normalize("NFC", text.strip())
    forms = "use NAME, NAME:vN, NAME:ALIAS, PROJECT/NAME:..., or a digest like blake3:<hex>"
    if not raw:
        raise InvalidArgumentError(f"artifact reference is empty; {forms}")
    project: str | None = None
    if "/" in raw:
        head, _, raw = raw.partition("/")
        try:
            project = _check_project(head)
        except InvalidArgumentError as exc:
            raise InvalidArgumentError(f"artifact reference {text!r}: {exc}; {forms}") from None
    if _DIGEST.match(raw):
        return ArtifactRef(project=project, digest=raw)
    name_part, sep, selector = raw.partition(":")
    try:
        name = check_artifact_name(name_part)
        if not sep:
            return ArtifactRef(project=project, name=name)
        match = _VERSION.match(selector)
        if match:
            version = int(match.group(1))
            if version < 1:
                raise InvalidArgumentError("versions start at v1")
            return ArtifactRef(project=project, name=name, version=version)
        if selector == ALIAS_LATEST:
            return ArtifactRef(project=project, name=name)
        return ArtifactRef(project=project, name=name, alias=check_alias(selector))
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(f"artifact reference {text!r}: {exc}; {forms}") from None


def _check_project(project: str) -> str:
    from mltrail._validation import check_key

    return check_key(project, "project")


@dataclass(frozen=True, slots=True)
class ArtifactVersion:
    """One content version of an artifact (an immutable snapshot).

    Attributes:
        project: the project the artifact belongs to.
        name: the artifact's name.
        type: its type (``dataset``, ``model``, ...).
        version: ``N`` of ``name:vN`` (from 1).
        digest: the content digest (``blake3:<hex>``; a tree digest for directories).
        kind: ``file``, ``tree`` or ``reference`` (recorded by digest, bytes not copied).
        size: bytes of content (all files of a tree).
        file_count: 1 for a file, the number of files of a tree.
        uri: where a reference's bytes are (``s3://...``, a local path); None otherwise.
        metadata: the user's metadata.
        source: what mltrail recorded about the origin (file name, ETags of references).
        run_id: the run that produced it, if any.
        created_ms: when it was first logged.
        aliases: every alias of this version, ``latest`` included, sorted.
    """

    project: str
    name: str
    type: str
    version: int
    digest: str
    kind: str
    size: int
    file_count: int
    uri: str | None
    metadata: dict[str, Any]
    source: dict[str, Any]
    run_id: str | None
    created_ms: int
    aliases: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        """``name:vN``."""
        return f"{self.name}:v{self.version}"

    @property
    def qualified(self) -> str:
        """``project/name:vN``, unique across the store."""
        return f"{self.project}/{self.name}:v{self.version}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (non-finite floats as strings)."""
        return {
            "project": self.project,
            "name": self.name,
            "type": self.type,
            "version": self.version,
            "ref": self.ref,
            "digest": self.digest,
            "kind": self.kind,
            "size": self.size,
            "file_count": self.file_count,
            "uri": self.uri,
            "metadata": json_safe(self.metadata),
            "source": json_safe(self.source),
            "run_id": self.run_id,
            "created_ms": self.created_ms,
            "aliases": list(self.aliases),
        }


@dataclass(frozen=True, slots=True)
class Artifact:
    """A named artifact with a summary of its versions."""

    project: str
    name: str
    type: str
    created_ms: int
    latest_version: int
    version_count: int
    aliases: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "project": self.project,
            "name": self.name,
            "type": self.type,
            "created_ms": self.created_ms,
            "latest_version": self.latest_version,
            "version_count": self.version_count,
            "aliases": dict(self.aliases),
        }


@dataclass(frozen=True, slots=True)
class NewVersion:
    """What :meth:`ArtifactStore.log_version` records (validated by the caller's edge)."""

    project: str
    name: str
    type: str
    digest: str
    kind: str
    size: int
    file_count: int
    uri: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    aliases: tuple[str, ...] = ()
    created_ms: int | None = None


@dataclass(frozen=True, slots=True)
class LineageNode:
    """A run (``run:<id>``) or an artifact version (``artifact:<project>/<name>:vN``)."""

    id: str
    type: Literal["run", "artifact"]
    label: str
    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {**json_safe(self.data), "id": self.id, "type": self.type, "label": self.label}


@dataclass(frozen=True, slots=True)
class LineageEdge:
    """``run → artifact`` (``produced``) or ``artifact → run`` (``used``)."""

    source: str
    target: str
    relation: Literal["produced", "used"]

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "target": self.target, "relation": self.relation}


@dataclass(frozen=True, slots=True)
class LineageGraph:
    """The lineage around ``root``: nodes by id and edges in data-flow direction."""

    root: str
    direction: Direction
    nodes: tuple[LineageNode, ...]
    edges: tuple[LineageEdge, ...]
    truncated: bool = False

    def node(self, node_id: str) -> LineageNode:
        """The node with id ``node_id``.

        Raises:
            KeyError: no such node in this graph.
        """
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(node_id)

    def to_dict(self) -> dict[str, Any]:
        """``{"root", "direction", "nodes": [...], "edges": [...], "truncated"}``."""
        return {
            "root": self.root,
            "direction": self.direction,
            "nodes": [n.to_dict() for n in self.nodes],
            "edges": [e.to_dict() for e in self.edges],
            "truncated": self.truncated,
        }


def run_node_id(run_id: str) -> str:
    """The lineage node id of a run."""
    return f"run:{run_id}"


def version_node_id(v: ArtifactVersion) -> str:
    """The lineage node id of an artifact version."""
    return f"artifact:{v.qualified}"


def dedupe(items: Sequence[str]) -> tuple[str, ...]:
    """``items`` without repeats, first occurrence kept."""
    return tuple(dict.fromkeys(items))


def check_lineage_args(
    run_id: str | None, version: ArtifactVersion | None, direction: str, max_depth: int | None
) -> None:
    """The argument rules of :meth:`ArtifactStore.lineage`, shared by every backend.

    Raises:
        InvalidArgumentError: not exactly one root, an unknown direction, a negative depth.
    """
    if (run_id is None) == (version is None):
        raise InvalidArgumentError("lineage needs exactly one root: a run or a version")
    if direction not in ("upstream", "downstream", "both"):
        raise InvalidArgumentError(
            f"direction must be upstream, downstream or both, got {direction!r}"
        )
    if max_depth is not None and max_depth < 0:
        raise InvalidArgumentError(f"max_depth must be >= 0, got {max_depth}")
