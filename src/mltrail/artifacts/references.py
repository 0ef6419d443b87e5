"""Reference artifacts: data recorded by digest where it is, without copying the bytes.

- A **local path** is hashed in place (a file's content digest, or a directory's tree digest
  built from its files' digests with :mod:`mltrail.objects`); nothing is written to the cache.
- A **URL** (``s3://bucket/key`` or a prefix, any fsspec URL) is described by what the
  storage reports (``fs.info`` / ``fs.find``): per object its ETag (or checksum) and size. The
  digest is the digest of that canonical listing, so it changes whenever any object changes,
  and no byte is downloaded to log it.

Using a reference verifies it first: the path is re-hashed (or the listing re-read) and must
give the recorded digest, else :class:`~mltrail.errors.CorruptObjectError` names the URI.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mltrail.errors import CorruptObjectError, InvalidArgumentError, NotFoundError

__all__ = ["Described", "describe", "fetch", "is_url"]

_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_MAX_LISTED = 1_000_000


@dataclass(frozen=True, slots=True)
class Described:
    """A reference as recorded: where, its digest, size, file count and what was seen."""

    uri: str
    digest: str
    size: int
    file_count: int
    source: dict[str, Any]


def is_url(target: str) -> bool:
    """True for ``scheme://...`` other than ``file://``."""
    match = _URL.match(target)
    return match is not None and match.group(1).lower() != "file"


def describe(target: str | os.PathLike[str]) -> Described:
    """Digest a reference target without copying it.

    Raises:
        NotFoundError: nothing at ``target``.
        UnsafePathError: a symlink in a local directory points outside it.
        InvalidArgumentError: an unusable URL.
    """
    text = os.fspath(target)
    if "\x00" in text:
        raise InvalidArgumentError("reference contains a NUL byte")
    if is_url(text):
        return _describe_url(text)
    path = Path(text[len("file://") :] if text.startswith("file://") else text).expanduser()
    return _describe_local(path.resolve())


def fetch(uri: str, digest: str, dest: Path | None) -> Path:
    """Verify a reference still has ``digest``; return its path, copying to ``dest`` if given.

    A URL is always downloaded (to ``dest``, which must then be given).

    Raises:
        CorruptObjectError: the data at ``uri`` changed since it was logged.
        NotFoundError: nothing at ``uri`` any more.
    """
    now = describe(uri)
    if now.digest != digest:
        raise CorruptObjectError(
            f"reference {uri} no longer matches its logged digest {digest} (now {now.digest}): "
            "the data changed after it was logged"
        )
    if not is_url(uri):
        src = Path(uri)
        if dest is None:
            return src
        return _copy_local(src, dest)
    if dest is None:
        raise InvalidArgumentError("a URL reference needs a destination to download to")
    return _download(uri, now, dest)


# -- local ---------------------------------------------------------------------------------


def _describe_local(path: Path) -> Described:
    """Hash a local file or directory in place (the digest ``log_artifact`` would give)."""
    from mltrail.objects.build import build

    try:
        st = path.lstat()
    except FileNotFoundError:
        raise NotFoundError(f"reference {str(path)!r} does not exist") from None
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
        raise InvalidArgumentError(f"reference {str(path)!r} is not a file or a directory")
    digest, tree, size, count = build(path, None, None, store=False)
    kind = "directory" if tree is not None else "file"
    return Described(str(path), digest, int(size), int(count), {"scheme": "file", "type": kind})


def _copy_local(src: Path, dest: Path) -> Path:
    if src.is_dir():
        shutil.copytree(src, dest, dirs_exist_ok=True, symlinks=True)
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / src.name
    shutil.copy2(src, target)
    return target


# -- URLs ----------------------------------------------------------------------------------


def _filesystem(url: str) -> tuple[Any, str]:
    """An fsspec filesystem for ``url`` and the path: the object layer's, so S3 endpoints
    (``MLTRAIL_S3_ENDPOINT``) and credentials are handled in one place."""
    from mltrail.objects.fsspec_store import filesystem

    return filesystem(url)


def _tag(info: dict[str, Any]) -> str:
    for key in ("ETag", "etag", "md5", "checksum", "crc32c", "mtime", "LastModified"):
        value = info.get(key)
        if value not in (None, ""):
            return f"{key}={value}"
    return ""


def _describe_url(url: str) -> Described:
    from mltrail.objects.digest import hash_bytes

    fs, path = _filesystem(url)
    try:
        info = fs.info(path)
    except FileNotFoundError:
        raise NotFoundError(f"reference {url} does not exist") from None
    except OSError as exc:
        raise NotFoundError(f"reference {url} cannot be read: {exc}") from None
    if info.get("type") == "directory":
        found = fs.find(path, detail=True)
        if len(found) > _MAX_LISTED:
            raise InvalidArgumentError(
                f"reference {url} lists {len(found)} objects; the limit is {_MAX_LISTED}"
            )
        base = path.rstrip("/") + "/"
        listing = sorted(
            (str(name)[len(base) :], int(meta.get("size") or 0), _tag(meta))
            for name, meta in found.items()
            if meta.get("type") != "directory"
        )
        if not listing:
            raise NotFoundError(f"reference {url} is an empty prefix")
        kind = "prefix"
    else:
        listing = [("", int(info.get("size") or 0), _tag(info))]
        kind = "object"
    body = json.dumps({"uri": url, "objects": listing}, separators=(",", ":"))
    digest = hash_bytes(body.encode("utf-8"))
    size = sum(item[1] for item in listing)
    source: dict[str, Any] = {"scheme": url.split("://", 1)[0].lower(), "type": kind}
    if kind == "object":
        source["etag"] = str(info.get("ETag") or info.get("etag") or "")
        source["size"] = size
    return Described(url, digest, size, len(listing), source)


def _download(url: str, described: Described, dest: Path) -> Path:
    fs, path = _filesystem(url)
    dest.mkdir(parents=True, exist_ok=True)
    if described.source.get("type") == "object":
        target = dest / Path(path).name
        fs.get(path, str(target))
        if target.stat().st_size != described.size:
            raise CorruptObjectError(
                f"reference {url}: downloaded {target.stat().st_size} bytes, expected "
                f"{described.size}"
            )
        return target
    fs.get(path.rstrip("/") + "/", str(dest), recursive=True)
    return dest
