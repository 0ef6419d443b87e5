"""The pointer file: ``PATH.mltrail``, the small YAML file committed in place of PATH.

Format (version 1)::

    # mltrail data pointer: commit this file; `mltrail data pull` fetches what it names
    mltrail: 1
    path: "train"
    kind: tree
    digest: blake3:6f1e....tree
    size: 40960000
    files: 10000

``path`` is relative to the pointer's folder (by default the pointer's own name without
``.mltrail``); ``kind`` is ``file`` or ``tree`` (a directory: the digest, ending ``.tree``,
names its manifest); ``digest`` carries its algorithm; ``size`` is the total bytes and
``files`` the file count.

Reading is strict (the file comes from a repository, so it is untrusted input): an unknown
format version, a malformed digest, a negative size or a path that is absolute, holds ``..``,
a backslash or NUL is refused with :class:`~mltrail.errors.InvalidArgumentError` naming the
file and the field. Pointer files mltrail wrote parse without YAML (one line per field); a
hand-edited one falls back to ``yaml.safe_load``.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from mltrail.errors import InvalidArgumentError

__all__ = [
    "FORMAT_VERSION",
    "POINTER_SUFFIX",
    "Pointer",
    "check_digest",
    "check_relpath",
    "dump_pointer",
    "parse_pointer",
    "read_pointer",
    "write_pointer",
]

POINTER_SUFFIX = ".mltrail"
FORMAT_VERSION = 1
MAX_POINTER_BYTES = 64 * 1024
KINDS = ("file", "tree")
_LINE_RE = re.compile(r"^([a-z_]+):[ \t]*(.*?)[ \t]*$")
_HEADER = "# mltrail data pointer: commit this file; `mltrail data pull` fetches what it names\n"


@dataclass(frozen=True, slots=True)
class Pointer:
    """What one pointer file says.

    Attributes:
        path: The data's path relative to the pointer's folder (posix separators).
        kind: ``file`` or ``tree``.
        digest: ``"<algorithm>:<hex>"``; for a tree, the digest of its manifest.
        size: Total bytes of the data.
        files: Number of files (1 for a file).
    """

    path: str
    kind: str
    digest: str
    size: int
    files: int

    @property
    def algorithm(self) -> str:
        """The digest's algorithm (``blake3``, ``sha256``, ``md5`` for DVC's)."""
        return self.digest.partition(":")[0]

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-able dict (with the algorithm spelled out)."""
        return {
            "path": self.path,
            "kind": self.kind,
            "digest": self.digest,
            "algorithm": self.algorithm,
            "size": self.size,
            "files": self.files,
        }


def check_digest(digest: object, where: str) -> str:
    """``digest`` if it is ``"<known algorithm>:<hex of the right length>[.tree]"``.

    Raises:
        InvalidArgumentError: naming ``where`` and what is wrong.
    """
    from mltrail.objects.digest import parse_digest

    if not isinstance(digest, str):
        raise InvalidArgumentError(f"{where}: digest must be a string like 'blake3:<hex>'")
    try:
        parse_digest(digest)
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(f"{where}: {exc.message}") from None
    return digest


def check_relpath(path: object, where: str) -> str:
    """``path`` if it is a safe relative posix path (no ``..``, not absolute, no ``\\``/NUL).

    Raises:
        InvalidArgumentError: naming ``where``.
    """
    if not isinstance(path, str) or not path or len(path) > 4096:
        raise InvalidArgumentError(f"{where}: path must be a non-empty string of ≤ 4096 chars")
    bad = (
        "\x00" in path
        or "\\" in path
        or path.startswith("/")
        or any(part in ("..", "") for part in path.split("/"))
        or PurePosixPath(path).is_absolute()
    )
    if bad:
        raise InvalidArgumentError(
            f"{where}: unsafe path {path!r} (absolute, '..', empty part, backslash or NUL)"
        )
    return path


def _int_field(doc: dict[str, Any], key: str, where: str) -> int:
    value = doc.get(key)
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidArgumentError(f"{where}: field {key!r} must be an integer ≥ 0")
    return value


def _fast_fields(text: str) -> dict[str, Any] | None:
    """The fields of a pointer as mltrail writes it, or None when it needs a YAML parser."""
    doc: dict[str, Any] = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _LINE_RE.match(line)
        if match is None:
            return None
        key, raw = match.groups()
        if raw.startswith('"'):
            try:
                value: Any = json.loads(raw)
            except ValueError:
                return None
        elif raw.isdigit():
            value = int(raw)
        elif re.fullmatch(r"[A-Za-z0-9:_.-]+", raw):
            value = raw
        else:
            return None
        if key in doc:
            return None
        doc[key] = value
    return doc


def parse_pointer(text: str, where: str, default_path: str | None = None) -> Pointer:
    """Parse and validate the text of a pointer file.

    Args:
        text: The file's content.
        where: The file's name, for messages.
        default_path: The path to use when the file has no ``path`` field.

    Raises:
        InvalidArgumentError: the file is not a valid pointer (the message names the field).
    """
    doc = _fast_fields(text)
    if doc is None:
        import yaml

        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidArgumentError(f"{where}: not valid YAML ({exc})") from None
        if not isinstance(loaded, dict):
            raise InvalidArgumentError(f"{where}: a pointer file is a YAML mapping")
        doc = loaded
    version = doc.get("mltrail")
    if version != FORMAT_VERSION:
        raise InvalidArgumentError(
            f"{where}: unsupported pointer format version {version!r} (this mltrail reads "
            f"'mltrail: {FORMAT_VERSION}'; a newer mltrail may have written it)"
        )
    path = doc.get("path", default_path)
    check_relpath(path, f"{where}: field 'path'")
    kind = doc.get("kind", "file")
    if kind not in KINDS:
        raise InvalidArgumentError(f"{where}: field 'kind' must be 'file' or 'tree'")
    digest = check_digest(doc.get("digest"), f"{where}: field 'digest'")
    size = _int_field(doc, "size", where)
    files = _int_field(doc, "files", where) if "files" in doc else 1
    if kind == "file" and files != 1:
        raise InvalidArgumentError(f"{where}: a 'file' pointer has files: 1")
    if (kind == "tree") != digest.endswith(".tree"):
        raise InvalidArgumentError(
            f"{where}: field 'kind' is {kind!r} but the digest names a "
            f"{'tree' if digest.endswith('.tree') else 'file'}"
        )
    return Pointer(str(path), str(kind), digest, size, files)


def dump_pointer(pointer: Pointer) -> str:
    """The text of a pointer file (stable: the same pointer always gives the same bytes)."""
    return (
        f"{_HEADER}mltrail: {FORMAT_VERSION}\n"
        f"path: {json.dumps(pointer.path, ensure_ascii=False)}\n"
        f"kind: {pointer.kind}\n"
        f"digest: {pointer.digest}\n"
        f"size: {pointer.size}\n"
        f"files: {pointer.files}\n"
    )


def read_pointer(pointer_file: Path, where: str | None = None) -> Pointer:
    """Read and validate ``pointer_file``.

    Raises:
        InvalidArgumentError: not a valid pointer, or larger than 64 KiB.
        NotFoundError: the file does not exist.
    """
    from mltrail.errors import NotFoundError

    name = where or str(pointer_file)
    try:
        with open(pointer_file, "rb") as fh:
            raw = fh.read(MAX_POINTER_BYTES + 1)
    except FileNotFoundError:
        raise NotFoundError(f"{name}: no such pointer file") from None
    except OSError as exc:
        raise InvalidArgumentError(f"{name}: cannot read ({exc.strerror})") from None
    return parse_bytes(raw, name, pointer_file.name)


def parse_bytes(raw: bytes, where: str, filename: str) -> Pointer:
    """Parse a pointer's bytes (at most 64 KiB, UTF-8); ``filename`` gives the default path."""
    if len(raw) > MAX_POINTER_BYTES:
        raise InvalidArgumentError(f"{where}: larger than {MAX_POINTER_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidArgumentError(f"{where}: not UTF-8 text") from None
    default = filename[: -len(POINTER_SUFFIX)] if filename.endswith(POINTER_SUFFIX) else None
    return parse_pointer(text, where, default or None)


def write_pointer(pointer_file: Path, pointer: Pointer) -> bool:
    """Write ``pointer_file`` atomically unless it already says the same; True if written."""
    text = dump_pointer(pointer)
    try:
        if pointer_file.read_text(encoding="utf-8") == text:
            return False
    except (OSError, UnicodeDecodeError):
        pass
    tmp = pointer_file.with_name(f".{pointer_file.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, pointer_file)
    finally:
        tmp.unlink(missing_ok=True)
    return True
