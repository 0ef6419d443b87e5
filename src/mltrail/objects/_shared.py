"""What every backend does the same way on top of its own reads and writes.

:class:`StoreMixin` gives a backend ``add_tree``, ``read_tree`` (verified, checked and
memoised), a hashing ``verify``, a no-op ``close`` and a ``repr``, built on the backend's
``add_bytes`` and ``read_bytes``. It is an implementation aid, not the contract: that is
:class:`mltrail.objects.base.ObjectStore`.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Protocol

from mltrail.errors import CorruptObjectError, InvalidArgumentError
from mltrail.objects.digest import DEFAULT_ALGO, is_tree, parse_digest

if TYPE_CHECKING:
    from mltrail.objects.tree import Tree

__all__ = ["StoreMixin"]

_TREE_MEMO = 8  # parsed trees kept per store object
_MEMO_LOCK = threading.Lock()  # memo lookups and updates are tiny: one lock for all stores


class _Backend(Protocol):
    """What the mixin needs of the class it is mixed into."""

    _tree_memo: dict[str, Tree] | None

    def add_bytes(self, data: bytes, *, algo: str = DEFAULT_ALGO, tree: bool = False) -> str: ...

    def read_bytes(self, digest: str, *, verify: bool = True) -> bytes: ...


class StoreMixin:
    """``add_tree``/``read_tree``/``verify``/``close``/``repr`` for a backend that defines
    ``url``, ``add_bytes`` and ``read_bytes``."""

    url: str
    _tree_memo: dict[str, Tree] | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    def close(self) -> None:
        """Nothing to release."""

    def verify(self: _Backend, digest: str) -> None:
        """Hash the stored object; raise CorruptObjectError naming it if it does not match."""
        self.read_bytes(digest, verify=True)

    def add_tree(self: _Backend, tree: Tree) -> str:
        """Store a tree's manifest; return the tree's digest."""
        digest = self.add_bytes(tree.to_bytes(), algo=tree.algo, tree=True)
        if digest != tree.digest:  # pragma: no cover - to_bytes is deterministic
            raise CorruptObjectError(f"tree {tree.digest} serialised to {digest}")
        return digest

    def read_tree(self: _Backend, digest: str) -> Tree:
        """Read, verify and parse the tree ``digest`` (an untrusted manifest: checked)."""
        from mltrail.objects.tree import Tree

        if not is_tree(digest):
            raise InvalidArgumentError(f"digest: {digest} names a file, not a tree")
        # Trees are immutable: one parsed (verified, checked) tree is reused by the later
        # reads of this store object (push/checkout read a manifest more than once).
        with _MEMO_LOCK:
            memo = self._tree_memo
            if memo is None:
                memo = self._tree_memo = {}
            tree = memo.get(digest)
        if tree is None:
            algo, _ = parse_digest(digest)
            tree = Tree.from_bytes(self.read_bytes(digest), algo=algo)
            with _MEMO_LOCK:
                if len(memo) >= _TREE_MEMO:
                    memo.pop(next(iter(memo)))
                memo[digest] = tree
        return tree

    def _forget_tree(self, digest: str) -> None:
        """Drop a memoised tree (its object is being removed)."""
        with _MEMO_LOCK:
            if self._tree_memo:
                self._tree_memo.pop(digest, None)
