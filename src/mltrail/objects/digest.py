"""Content digests: ``"<algo>:<hex>"`` strings, with ``.tree`` marking a directory manifest.

``blake3`` is the default (multithreaded for large files, close to memory bandwidth);
``sha256`` is available; ``md5`` exists only to read DVC's digests. The algorithm is part of
every digest string, so a digest is never ambiguous. A tree (a directory's manifest, see
:mod:`mltrail.objects.tree`) has the digest of its canonical bytes plus the suffix ``.tree``,
so that checkout knows from the digest alone whether it names a file or a directory.

``blake3`` is imported inside the functions that hash: importing this module stays light.
"""

from __future__ import annotations

import os
import re
from typing import Any, Protocol

from mltrail.errors import InvalidArgumentError

__all__ = [
    "ALGORITHMS",
    "DEFAULT_ALGO",
    "TREE_SUFFIX",
    "Hasher",
    "digest_algo",
    "hash_bytes",
    "hash_fd",
    "hash_file",
    "is_tree",
    "make_digest",
    "new_hasher",
    "parse_digest",
]

DEFAULT_ALGO = "blake3"
ALGORITHMS: dict[str, int] = {"blake3": 64, "sha256": 64, "md5": 32}  # algo -> hex length
TREE_SUFFIX = ".tree"
# Files at least this big are hashed through mmap with every core (blake3) or in big chunks.
LARGE_FILE = 4 << 20
CHUNK = 8 << 20

BytesLike = bytes | bytearray | memoryview
_DIGEST_RE = re.compile(r"^(blake3|sha256|md5):([0-9a-f]+)((?:\.tree)?)$")


class Hasher(Protocol):
    """What :func:`new_hasher` returns (hashlib's and blake3's objects both fit)."""

    def update(self, data: BytesLike, /) -> Any: ...  # noqa: D102
    def hexdigest(self) -> str: ...  # noqa: D102


def _check_algo(algo: str) -> None:
    if algo not in ALGORITHMS:
        raise InvalidArgumentError(
            f"algorithm: {algo!r} is not supported (one of {', '.join(ALGORITHMS)})"
        )


def new_hasher(algo: str = DEFAULT_ALGO, *, threads: bool = False) -> Hasher:
    """A fresh incremental hasher; ``threads=True`` lets blake3 use every core (large inputs)."""
    _check_algo(algo)
    if algo == "blake3":
        import blake3

        if threads:
            return blake3.blake3(max_threads=blake3.blake3.AUTO)
        return blake3.blake3()
    import hashlib  # OpenSSL loads on first use: a no-op status never pays for it

    return hashlib.new(algo)


def make_digest(algo: str, hexdigest: str, *, tree: bool = False) -> str:
    """The digest string for ``hexdigest`` computed with ``algo``."""
    return f"{algo}:{hexdigest}{TREE_SUFFIX if tree else ''}"


def parse_digest(digest: str) -> tuple[str, str]:
    """Split ``"algo:hex[.tree]"`` into ``(algo, hex)``; anything malformed is refused."""
    if not isinstance(digest, str):
        raise InvalidArgumentError(f"digest: expected a string, got {type(digest).__name__}")
    m = _DIGEST_RE.match(digest)
    if m is None:
        shown = digest if len(digest) <= 100 else digest[:100] + "..."
        raise InvalidArgumentError(
            f"digest: {shown!r} is not '<algo>:<lowercase hex>' with algo one of "
            f"{', '.join(ALGORITHMS)}"
        )
    algo, hexd = m.group(1), m.group(2)
    if len(hexd) != ALGORITHMS[algo]:
        raise InvalidArgumentError(
            f"digest: a {algo} digest has {ALGORITHMS[algo]} hex digits, got {len(hexd)}"
        )
    return algo, hexd


def is_tree(digest: str) -> bool:
    """Whether ``digest`` names a tree (a directory manifest) rather than a file."""
    return digest.endswith(TREE_SUFFIX)


def digest_algo(digest: str) -> str:
    """The algorithm of a (valid) digest."""
    return parse_digest(digest)[0]


def hash_bytes(data: BytesLike, algo: str = DEFAULT_ALGO, *, tree: bool = False) -> str:
    """The digest of ``data``."""
    h = new_hasher(algo, threads=len(memoryview(data)) >= LARGE_FILE)
    h.update(data)
    return make_digest(algo, h.hexdigest(), tree=tree)


def hash_fd(fd: int, size: int, algo: str = DEFAULT_ALGO) -> str:
    """The digest of the open file ``fd`` (read from its current offset to the end)."""
    if size < LARGE_FILE:
        data = os.read(fd, size + 1)
        if len(data) > size:  # it grew: read the rest too
            chunks = [data]
            while chunk := os.read(fd, CHUNK):
                chunks.append(chunk)
            data = b"".join(chunks)
        h = new_hasher(algo)
        h.update(data)
        return make_digest(algo, h.hexdigest())
    h = new_hasher(algo, threads=True)
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    with open(fd, "rb", buffering=0, closefd=False) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
    return make_digest(algo, h.hexdigest())


def hash_file(path: str | os.PathLike[str], algo: str = DEFAULT_ALGO) -> str:
    """The digest of the file at ``path`` (blake3 hashes large files on every core via mmap)."""
    _check_algo(algo)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        size = os.fstat(fd).st_size
        if algo == "blake3" and size >= LARGE_FILE:
            import blake3

            h = blake3.blake3(max_threads=blake3.blake3.AUTO)
            h.update_mmap(os.fspath(path))
            return make_digest(algo, h.hexdigest())
        return hash_fd(fd, size, algo)
    finally:
        os.close(fd)
