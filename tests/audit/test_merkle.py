"""Merkle trees against RFC 6962's recursive definition, and the RFC 9162 proof checks."""

from __future__ import annotations

import hashlib

import pytest

from mltrail.audit.merkle import (
    EMPTY_ROOT,
    Frontier,
    MerkleTree,
    leaf_hash,
    node_hash,
    verify_consistency,
    verify_inclusion,
)


def _mth(data: list[bytes]) -> bytes:
    """RFC 6962 section 2.1, literally."""
    n = len(data)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaf_hash(data[0])
    k = 1
    while k * 2 < n:
        k *= 2
    return node_hash(_mth(data[:k]), _mth(data[k:]))


def _data(n: int) -> list[bytes]:
    return [i.to_bytes(4, "big") for i in range(n)]


def test_hashing_is_domain_separated() -> None:
    assert leaf_hash(b"a") == hashlib.sha256(b"\x00a").digest()
    assert node_hash(b"l", b"r") == hashlib.sha256(b"\x01lr").digest()
    assert MerkleTree([]).root() == EMPTY_ROOT == hashlib.sha256(b"").digest()


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7, 8, 9, 31, 33])
def test_roots_proofs_and_frontier_match_the_rfc(n: int) -> None:
    data = _data(n)
    tree = MerkleTree.from_data(data)
    frontier = Frontier()
    for m in range(n + 1):
        assert tree.root(m) == _mth(data[:m])
        if m:
            assert frontier.root() == _mth(data[: m - 1])
            frontier.push(leaf_hash(data[m - 1]))
    assert frontier.root() == tree.root()
    for i in range(n):
        proof = tree.inclusion_proof(i)
        assert verify_inclusion(leaf_hash(data[i]), i, n, proof, tree.root())
        assert not verify_inclusion(leaf_hash(b"other"), i, n, proof, tree.root())
        if n > 1:
            assert not verify_inclusion(leaf_hash(data[i]), (i + 1) % n, n, proof, tree.root())
    for m in range(n + 1):
        proof = tree.consistency_proof(m)
        assert verify_consistency(m, n, tree.root(m), tree.root(), proof)
        if 0 < m < n:
            assert not verify_consistency(m, n, tree.root(m), leaf_hash(b"x"), proof)
            assert not verify_consistency(m, n, leaf_hash(b"x"), tree.root(), proof)


def test_rfc9162_example_shapes() -> None:
    """The seven-leaf tree of RFC 9162 2.1.5: proof lengths of its examples."""
    tree = MerkleTree.from_data(_data(7))
    assert len(tree.inclusion_proof(0)) == 3  # a: [b, h, l]
    assert len(tree.inclusion_proof(3)) == 3  # d: [c, g, l]
    assert len(tree.inclusion_proof(4)) == 3  # e: [f, j, k]
    assert len(tree.inclusion_proof(6)) == 2  # g: [i, k]
    assert len(tree.consistency_proof(3)) == 4  # [c, d, g, l]
    assert len(tree.consistency_proof(4)) == 1  # [l]
    assert len(tree.consistency_proof(6)) == 3  # [i, j, k]
