"""Reading DVC's files (never writing them): ``.dvc`` files, ``dvc.lock`` outs, DVC's cache.

A DVC output is recorded with an md5 digest: of the file's bytes (DVC 3, ``hash: md5``), of
the file with CRLF turned into LF when it looks like text (DVC 2's ``md5-dos2unix``, files
without ``hash: md5``), or for a directory the md5 of its ``.dir`` manifest (the JSON list
``[{"md5": ..., "relpath": ...}]`` sorted by relpath, dumped with ``sort_keys``), suffixed
``.dir``. The manifest lives in DVC's cache: ``.dvc/cache/files/md5/ab/cdef...dir`` (DVC 3)
or ``.dvc/cache/ab/cdef...dir`` (DVC 2).

mltrail records these digests as ``md5:<hex>`` and ``md5:<hex>.dir`` (the ``.dir`` form is
DVC's, not an mltrail tree digest) and can tell whether the workspace still matches them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from mltrail.data.pointer import check_relpath
from mltrail.errors import InvalidArgumentError

__all__ = [
    "DvcOut",
    "out_from_dict",
    "dir_digest",
    "dvc_cache_path",
    "md5_file",
    "parse_dvc_file",
    "parse_dvc_lock",
    "read_dir_manifest",
]

MAX_DVC_FILE_BYTES = 4 * 1024 * 1024
_TEXT_PROBE = 512


@dataclass(frozen=True, slots=True)
class DvcOut:
    """One output DVC tracks.

    Attributes:
        path: The output's path relative to the git root (posix).
        source: The file that records it, relative to the git root (``x.dvc``, ``dvc.lock``).
        stage: The ``dvc.lock`` stage (None for ``.dvc`` files).
        md5: DVC's digest, hex, ``.dir``-suffixed for a directory.
        legacy: The digest is DVC 2's ``md5-dos2unix`` (no ``hash: md5`` field).
        size: Bytes, when recorded.
        files: File count (``nfiles``) for a directory, 1 for a file, when recorded.
    """

    path: str
    source: str
    stage: str | None
    md5: str
    legacy: bool
    size: int | None
    files: int | None

    @property
    def is_dir(self) -> bool:
        """Whether the output is a directory."""
        return self.md5.endswith(".dir")

    @property
    def digest(self) -> str:
        """``md5:<hex>`` or ``md5:<hex>.dir``."""
        return f"md5:{self.md5}"


def _load_yaml(raw: bytes, where: str) -> Any:
    import yaml

    if len(raw) > MAX_DVC_FILE_BYTES:
        raise InvalidArgumentError(f"{where}: larger than {MAX_DVC_FILE_BYTES} bytes")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(raw, Loader=loader)  # noqa: S506 (a safe loader)
    except yaml.YAMLError as exc:
        raise InvalidArgumentError(f"{where}: not valid YAML ({exc})") from None


def out_from_dict(item: Any, base: PurePosixPath, source: str, stage: str | None) -> DvcOut | None:
    if not isinstance(item, dict):
        return None
    md5 = item.get("md5")
    path = item.get("path")
    if not isinstance(md5, str) or not isinstance(path, str):
        return None  # not yet computed (``dvc add`` interrupted) or cloud-versioned output
    hexd = md5.removesuffix(".dir")
    if len(hexd) != 32 or any(c not in "0123456789abcdef" for c in hexd):
        raise InvalidArgumentError(f"{source}: malformed md5 {md5[:80]!r} for {path!r}")
    rel = base / check_relpath(path, f"{source}: out path")
    size = item.get("size")
    nfiles = item.get("nfiles")
    return DvcOut(
        path=str(rel),
        source=source,
        stage=stage,
        md5=md5,
        legacy=item.get("hash") != "md5",
        size=size if isinstance(size, int) and not isinstance(size, bool) else None,
        files=nfiles if isinstance(nfiles, int) else (None if md5.endswith(".dir") else 1),
    )


def parse_dvc_file(raw: bytes, source: str) -> list[DvcOut]:
    """The outs of a ``.dvc`` file; ``source`` is its path relative to the git root.

    Raises:
        InvalidArgumentError: not valid YAML, or an out with a malformed digest or unsafe path.
    """
    doc = _load_yaml(raw, source)
    base = PurePosixPath(source).parent
    outs = doc.get("outs") if isinstance(doc, dict) else None
    found = (
        [out_from_dict(o, base, source, None) for o in outs or []] if isinstance(outs, list) else []
    )
    return [o for o in found if o is not None]


def parse_dvc_lock(raw: bytes, source: str) -> list[DvcOut]:
    """The outs of every stage of a ``dvc.lock`` (schema 2.0; paths relative to its folder)."""
    doc = _load_yaml(raw, source)
    base = PurePosixPath(source).parent
    stages = doc.get("stages") if isinstance(doc, dict) else None
    found: list[DvcOut] = []
    if not isinstance(stages, dict):
        return found
    for name, stage in stages.items():
        outs = stage.get("outs") if isinstance(stage, dict) else None
        for item in outs if isinstance(outs, list) else []:
            out = out_from_dict(item, base, source, str(name))
            if out is not None:
                found.append(out)
    return found


def dvc_cache_path(root: Path, md5: str) -> Path | None:
    """Where DVC's cache under ``root/.dvc/cache`` holds ``md5`` (3.x layout, then 2.x)."""
    cache = root / ".dvc" / "cache"
    for candidate in (cache / "files" / "md5" / md5[:2] / md5[2:], cache / md5[:2] / md5[2:]):
        if candidate.is_file():
            return candidate
    return None


def read_dir_manifest(root: Path, md5: str) -> dict[str, str] | None:
    """DVC's ``.dir`` manifest of ``md5`` as ``{relpath: md5}``; None if not in the cache.

    The manifest is untrusted: entries with absolute paths, ``..``, backslashes or NUL are
    refused.

    Raises:
        InvalidArgumentError: a malformed manifest (naming the entry).
    """
    path = dvc_cache_path(root, md5)
    if path is None:
        return None
    where = f"DVC manifest {md5}"
    try:
        entries = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise InvalidArgumentError(f"{where}: unreadable ({exc})") from None
    if not isinstance(entries, list):
        raise InvalidArgumentError(f"{where}: not a JSON list")
    out: dict[str, str] = {}
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("md5"), str):
            raise InvalidArgumentError(f"{where}: an entry lacks md5/relpath")
        out[check_relpath(entry.get("relpath"), where)] = entry["md5"]
    return out


def dir_digest(entries: dict[str, str]) -> str:
    """DVC's digest of a directory whose files have these md5s: ``<md5 of manifest>.dir``."""
    listing = [{"md5": md5, "relpath": rel} for rel, md5 in sorted(entries.items())]
    return hashlib.md5(json.dumps(listing, sort_keys=True).encode()).hexdigest() + ".dir"


def _looks_text(head: bytes) -> bool:
    """DVC 2's text heuristic (``istextblock``): no NUL and few non-text bytes."""
    if not head:
        return True
    if b"\x00" in head:
        return False
    text_chars = bytes({7, 8, 9, 10, 12, 13, 27} | set(range(0x20, 0x100)) - {0x7F})
    nontext = head.translate(None, text_chars)
    return len(nontext) / len(head) <= 0.30


def md5_file(path: Path, legacy: bool) -> str:
    """DVC's md5 of a file: of its bytes, or (``legacy``) with CRLF→LF when it looks text."""
    from mltrail.objects.digest import hash_file, parse_digest

    if not legacy:
        return parse_digest(hash_file(path, "md5"))[1]
    with open(path, "rb") as fh:
        head = fh.read(_TEXT_PROBE)
        if not _looks_text(head):
            return parse_digest(hash_file(path, "md5"))[1]
        h = hashlib.md5()
        fh.seek(0)
        carry = b""
        while chunk := fh.read(1 << 20):
            chunk = carry + chunk
            carry = b"\r" if chunk.endswith(b"\r") else b""
            if carry:
                chunk = chunk[:-1]
            h.update(chunk.replace(b"\r\n", b"\n"))
        h.update(carry)
    return h.hexdigest()
