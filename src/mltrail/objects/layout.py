"""Where an object lives inside a store: ``<root>/<algo>/<first 2 hex>/<rest>[.tree]``.

``blake3:ab12...`` is stored at ``blake3/ab/12...`` and the tree ``blake3:cd34....tree`` at
``blake3/cd/34....tree``, in every backend that keeps files (a local directory, any fsspec
filesystem, a server's own store). A leaf module: backends, the cache and the maintenance
verbs import it, it imports only :mod:`~mltrail.objects.digest`.
"""

from __future__ import annotations

import re

from mltrail.objects.digest import ALGORITHMS, TREE_SUFFIX, is_tree, make_digest, parse_digest

__all__ = ["VALID_DIGEST", "digest_from_parts", "object_key"]

#: A well-formed digest (file or tree), for hot loops that skip :func:`parse_digest`.
VALID_DIGEST = re.compile(r"(?:(?:blake3|sha256):[0-9a-f]{64}|md5:[0-9a-f]{32})(?:\.tree)?")


def object_key(digest: str) -> str:
    """The object's path relative to a store's root: ``algo/ab/cdef...[.tree]``.

    Raises:
        InvalidArgumentError: ``digest`` is malformed.
    """
    algo, hexd = parse_digest(digest)
    suffix = TREE_SUFFIX if is_tree(digest) else ""
    return f"{algo}/{hexd[:2]}/{hexd[2:]}{suffix}"


def digest_from_parts(algo: str, shard: str, name: str) -> str | None:
    """The digest a stored file's path ``algo/shard/name`` encodes, or None for anything
    else (temp files, strangers)."""
    tree = name.endswith(TREE_SUFFIX)
    rest = name[: -len(TREE_SUFFIX)] if tree else name
    hexd = shard + rest
    if (
        algo not in ALGORITHMS
        or len(shard) != 2
        or len(hexd) != ALGORITHMS[algo]
        or hexd.strip("0123456789abcdef")
    ):
        return None
    return make_digest(algo, hexd, tree=tree)
