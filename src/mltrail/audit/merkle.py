"""Merkle trees as RFC 6962 / RFC 9162 (Certificate Transparency) define them.

``leaf = SHA-256(0x00 || data)``, ``node = SHA-256(0x01 || left || right)``; the tree over
``n`` leaves splits at the largest power of two below ``n``. :class:`MerkleTree` builds the
levels bottom-up (a last odd node moves up unchanged, which gives the same tree), so the root
of any prefix, an inclusion proof (RFC 9162 2.1.3.1) and a consistency proof (2.1.4.1) cost
O(log n) once built; the verifiers are the RFC's own algorithms (2.1.3.2, 2.1.4.2) and need
nothing but hashes.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

__all__ = [
    "EMPTY_ROOT",
    "Frontier",
    "MerkleTree",
    "leaf_hash",
    "node_hash",
    "root",
    "verify_consistency",
    "verify_inclusion",
]

_sha256 = hashlib.sha256
#: The root of the empty tree: SHA-256 of the empty string.
EMPTY_ROOT = _sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """``SHA-256(0x00 || data)``."""
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``."""
    return _sha256(b"\x01" + left + right).digest()


class MerkleTree:
    """A tree over leaf hashes (already ``leaf_hash``-ed), with every level kept.

    ``levels[k][j]`` is the hash of leaves ``j*2^k .. min((j+1)*2^k, n) - 1``.
    """

    __slots__ = ("levels",)

    def __init__(self, leaf_hashes: Iterable[bytes]) -> None:
        level = list(leaf_hashes)
        self.levels: list[list[bytes]] = [level]
        prefix = b"\x01"
        while len(level) > 1:
            nxt = [
                _sha256(prefix + level[i] + level[i + 1]).digest()
                for i in range(0, len(level) - 1, 2)
            ]
            if len(level) % 2:
                nxt.append(level[-1])
            self.levels.append(nxt)
            level = nxt

    @classmethod
    def from_data(cls, leaves: Iterable[bytes]) -> MerkleTree:
        """A tree over raw leaf data (hashed with :func:`leaf_hash`)."""
        return cls(leaf_hash(d) for d in leaves)

    @property
    def size(self) -> int:
        """The number of leaves."""
        return len(self.levels[0])

    def root(self, size: int | None = None) -> bytes:
        """The root of the first ``size`` leaves (default all), RFC 6962's MTH."""
        n = self.size if size is None else size
        if not 0 <= n <= self.size:
            raise ValueError(f"size {n} outside 0..{self.size}")
        if n == 0:
            return EMPTY_ROOT
        return self._range(0, n)

    def _range(self, lo: int, hi: int) -> bytes:
        """MTH of leaves ``lo..hi-1`` where ``lo`` is a multiple of the largest power of two
        not above ``hi - lo`` (every range RFC 6962's recursion visits is)."""
        width = hi - lo
        if width == 1:
            return self.levels[0][lo]
        k = (width - 1).bit_length()  # smallest k with 2^k >= width
        if lo % (1 << k) == 0 and (width == 1 << k or hi == self.size):
            return self.levels[k][lo >> k]
        split = 1 << (k - 1)  # largest power of two below width
        return node_hash(self._range(lo, lo + split), self._range(lo + split, hi))

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """The audit path of leaf ``index`` (0-based) in the tree of ``size`` leaves."""
        n = self.size if size is None else size
        if not 0 <= index < n <= self.size:
            raise ValueError(f"leaf {index} is not in a tree of {n}")
        return self._path(index, 0, n)

    def _path(self, m: int, lo: int, hi: int) -> list[bytes]:
        width = hi - lo
        if width == 1:
            return []
        k = 1 << ((width - 1).bit_length() - 1)
        if m < k:
            return [*self._path(m, lo, lo + k), self._range(lo + k, hi)]
        return [*self._path(m - k, lo + k, hi), self._range(lo, lo + k)]

    def consistency_proof(self, old_size: int, size: int | None = None) -> list[bytes]:
        """The proof that the tree of ``old_size`` leaves is a prefix of the tree of
        ``size`` (default all); empty when the sizes are equal or ``old_size`` is 0."""
        n = self.size if size is None else size
        if not 0 <= old_size <= n <= self.size:
            raise ValueError(f"sizes {old_size} <= {n} <= {self.size} do not hold")
        if old_size == 0 or old_size == n:
            return []
        return self._subproof(old_size, 0, n, True)

    def _subproof(self, m: int, lo: int, hi: int, whole: bool) -> list[bytes]:
        width = hi - lo
        if m == width:
            return [] if whole else [self._range(lo, hi)]
        k = 1 << ((width - 1).bit_length() - 1)
        if m <= k:
            return [*self._subproof(m, lo, lo + k, whole), self._range(lo + k, hi)]
        return [*self._subproof(m - k, lo + k, hi, False), self._range(lo, lo + k)]


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """The Merkle root over ``leaf_hashes``."""
    return MerkleTree(leaf_hashes).root()


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], expected_root: bytes
) -> bool:
    """RFC 9162 2.1.3.2: whether ``proof`` shows the leaf hash ``leaf`` at ``index``
    (0-based) in the tree of ``size`` leaves whose root is ``expected_root``."""
    if index >= size or index < 0:
        return False
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while True:
                    fn >>= 1
                    sn >>= 1
                    if fn & 1 or fn == 0:
                        break
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == expected_root


def verify_consistency(
    old_size: int,
    size: int,
    old_root: bytes,
    new_root: bytes,
    proof: Sequence[bytes],
) -> bool:
    """RFC 9162 2.1.4.2: whether ``proof`` shows the tree of ``old_size`` leaves (root
    ``old_root``) is a prefix of the tree of ``size`` leaves (root ``new_root``)."""
    if old_size > size or old_size < 0:
        return False
    if old_size == size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is the first node
        path.insert(0, old_root)
    if not path:
        return False
    fn, sn = old_size - 1, size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while True:
                    fn >>= 1
                    sn >>= 1
                    if fn & 1 or fn == 0:
                        break
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0


class Frontier:
    """The compact range of a growing tree: the roots of its perfect subtrees, largest
    first (at most log2 n hashes), enough to append leaves and give the root."""

    __slots__ = ("nodes", "size")

    def __init__(self, size: int = 0, nodes: Sequence[bytes] = ()) -> None:
        if len(nodes) != bin(size).count("1"):
            raise ValueError(f"a frontier of {size} leaves has {bin(size).count('1')} nodes")
        self.size = size
        self.nodes = list(nodes)

    def push(self, leaf: bytes) -> None:
        """Append one leaf hash."""
        node = leaf
        n = self.size
        while n & 1:
            node = node_hash(self.nodes.pop(), node)
            n >>= 1
        self.nodes.append(node)
        self.size += 1

    def root(self) -> bytes:
        """The root of the tree so far (RFC 6962's MTH)."""
        if not self.nodes:
            return EMPTY_ROOT
        r = self.nodes[-1]
        for node in reversed(self.nodes[:-1]):
            r = node_hash(node, r)
        return r
