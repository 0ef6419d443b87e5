"""Attest and verify: ``mltrail attest`` and ``mltrail attest verify`` as library calls.

:func:`attest` resolves a model version or a run, hashes its files, builds the provenance
statement and signs it (DSSE, Ed25519, the local key). :func:`verify` needs only the
envelope, the public key and, optionally, the files: no store, no network.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltrail.attest import dsse
from mltrail.attest.provenance import (
    PREDICATE_TYPE,
    STATEMENT_TYPE,
    build_statement,
    canonical_json,
)
from mltrail.attest.target import hash_files, resolve_target, subject_files
from mltrail.errors import IntegrityError, InvalidArgumentError

if TYPE_CHECKING:
    import os

    from mltrail.attest.target import Target

__all__ = ["Attestation", "Verified", "attest", "verify"]


@dataclass(frozen=True, slots=True)
class Attestation:
    """A signed statement: the envelope to write, and what it says."""

    envelope: dict[str, Any]
    statement: dict[str, Any]
    target: Target

    def to_json(self) -> str:
        return json.dumps(self.envelope, indent=2) + "\n"


@dataclass(frozen=True, slots=True)
class Verified:
    """What a successful verification checked.

    Attributes:
        key_id: the public key's id (SHA-256 of its raw bytes, hex).
        subjects: ``{name: sha256}`` the statement covers.
        files_checked: the subject files found on disk with their digest (empty without
            ``artifact``).
    """

    statement: dict[str, Any]
    key_id: str
    subjects: dict[str, str]
    files_checked: list[str] = field(default_factory=list)


def attest(
    target: str,
    *,
    store: str | os.PathLike[str] | None = None,
    key: str | os.PathLike[str] | None = None,
    project: str | None = None,
) -> Attestation:
    """Sign the provenance of ``target`` (``MODEL@VERSION``, ``MODEL@ALIAS``, ``models:/...``
    or a run id) with the Ed25519 key at ``key`` (default ``MLTRAIL_AUDIT_KEY``).

    Raises:
        NotFoundError: no such model, version, run or key.
        InvalidArgumentError: a malformed target, a target without files, a bad key file.
        IntegrityError, CorruptObjectError: stored bytes that do not match their digests.
    """
    from mltrail.audit import keys
    from mltrail.store.registry import open_store, resolve_location

    private = keys.load_private_key(Path(key) if key is not None else None)
    location = resolve_location(store)
    tracking = open_store(location)
    resolved = resolve_target(tracking, target, project)
    files = subject_files(resolved, location)
    builder = location.display if "://" in location.display else f"file://{location.display}"
    statement = build_statement(tracking, resolved, files, builder)
    envelope = dsse.sign_envelope(canonical_json(statement), private)
    return Attestation(envelope=envelope, statement=statement, target=resolved)


def verify(
    envelope: bytes | str | os.PathLike[str],
    public_key: str | os.PathLike[str],
    artifact: str | os.PathLike[str] | None = None,
) -> Verified:
    """Check the envelope's signature with ``public_key``, the statement's form, and (with
    ``artifact``: a file or a folder) that the files on disk are exactly the subject.

    Raises:
        IntegrityError: a signature that does not verify, or files that differ from the
            subject (the message names the first file and why).
        InvalidArgumentError: not an envelope of an in-toto statement.
        NotFoundError: no key or artifact at the path given.
    """
    from mltrail.audit import keys
    from mltrail.errors import NotFoundError

    pub = keys.load_public_key(Path(public_key))
    if isinstance(envelope, bytes):
        data = envelope
    else:
        try:
            data = Path(envelope).read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"no envelope at {envelope}") from None
        except OSError as exc:
            raise InvalidArgumentError(f"envelope {envelope}: {exc.strerror or exc}") from None
    payload_type, payload = dsse.open_envelope(dsse.parse_envelope(data), pub)
    if payload_type != dsse.INTOTO_PAYLOAD_TYPE:
        raise InvalidArgumentError(f"envelope: payloadType {payload_type!r} is not in-toto's")
    statement = _statement(payload)
    subjects = {s["name"]: s["digest"]["sha256"] for s in statement["subject"]}
    checked: list[str] = []
    if artifact is not None:
        checked = _check_files(Path(artifact), subjects)
    return Verified(statement, keys.public_key_id(pub), subjects, checked)


def _statement(payload: bytes) -> dict[str, Any]:
    try:
        statement = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgumentError(f"statement: not JSON ({exc})") from None
    if not isinstance(statement, dict) or statement.get("_type") != STATEMENT_TYPE:
        raise InvalidArgumentError(f"statement: _type is not {STATEMENT_TYPE}")
    if statement.get("predicateType") != PREDICATE_TYPE:
        raise InvalidArgumentError(f"statement: predicateType is not {PREDICATE_TYPE}")
    subject = statement.get("subject")
    if not isinstance(subject, list) or not subject:
        raise InvalidArgumentError("statement: no subject")
    for i, s in enumerate(subject):
        ok = isinstance(s, dict) and isinstance(s.get("name"), str)
        ok = ok and isinstance(s.get("digest"), dict) and isinstance(s["digest"].get("sha256"), str)
        if not ok:
            raise InvalidArgumentError(f"statement: subject[{i}] lacks a name or a sha256 digest")
    return statement


def _check_files(path: Path, subjects: dict[str, str]) -> list[str]:
    from mltrail.errors import NotFoundError

    if not path.exists():
        raise NotFoundError(f"--artifact {path}: no such file or folder")
    if path.is_file():
        name = path.name if path.name in subjects else None
        if name is None and len(subjects) == 1:
            name = next(iter(subjects))
        if name is None:
            raise IntegrityError(f"{path.name}: not a subject of the statement")
        got = hash_files(path)[path.name]
        if got != subjects[name]:
            raise IntegrityError(f"{path}: sha256 {got} but the statement says {subjects[name]}")
        return [name]
    on_disk = hash_files(path)
    if len(subjects) == 1 and not on_disk.keys() & subjects.keys():
        # a one-file model checked out into a folder under another name
        raise IntegrityError(f"{path}: holds none of the subject's files ({next(iter(subjects))})")
    for name, want in subjects.items():
        if name not in on_disk:
            raise IntegrityError(f"{name}: missing under {path}")
        if on_disk[name] != want:
            raise IntegrityError(f"{name}: sha256 {on_disk[name]} but the statement says {want}")
    extra = sorted(on_disk.keys() - subjects.keys())
    if extra:
        raise IntegrityError(
            f"{extra[0]}: under {path} but not in the statement ({len(extra)} such files)"
        )
    return sorted(subjects)
