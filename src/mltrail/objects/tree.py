"""Trees: a directory as a manifest of ``(path, digest, size, mode)`` sorted by path.

A tree is itself an object: its digest is the digest of :meth:`Tree.to_bytes` (canonical
JSON) plus the suffix ``.tree``. Files that did not change keep their digest, so versions of a
directory share them. Manifests read from anywhere are untrusted: :meth:`Tree.from_bytes`
refuses absolute paths, ``..``, backslashes, NUL, duplicates, a path under another entry,
and symlinks that leave the root, before anyone writes a byte.

Modes are git's: ``0o100644`` a file, ``0o100755`` an executable, ``0o120000`` a symlink
(whose relative target is kept in the entry; its digest is that of the target text).
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from mltrail.errors import InvalidArgumentError, UnsafePathError
from mltrail.objects.digest import DEFAULT_ALGO, hash_bytes, is_tree, parse_digest
from mltrail.objects.paths import MAX_PATH, resolve_link, validate_relpath

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

__all__ = [
    "MODE_EXEC",
    "MODE_FILE",
    "MODE_LINK",
    "Tree",
    "TreeDiff",
    "TreeEntry",
    "check_walked",
]

MODE_FILE = 0o100644
MODE_EXEC = 0o100755
MODE_LINK = 0o120000
MODES = frozenset({MODE_FILE, MODE_EXEC, MODE_LINK})
FORMAT = "mltrail.tree/1"


@dataclass(frozen=True, slots=True)
class TreeEntry:
    """One file (or symlink) of a tree; ``path`` is relative, posix, normalised."""

    path: str
    digest: str
    size: int
    mode: int = MODE_FILE
    target: str | None = None  # symlinks only: the relative target

    @property
    def is_link(self) -> bool:
        """Whether this entry is a symlink."""
        return self.mode == MODE_LINK

    @property
    def is_exec(self) -> bool:
        """Whether this entry is an executable file."""
        return self.mode == MODE_EXEC

    def to_list(self) -> list[Any]:
        """The entry's canonical JSON form."""
        out: list[Any] = [self.path, self.digest, self.size, self.mode]
        if self.target is not None:
            out.append(self.target)
        return out


@dataclass(frozen=True, slots=True)
class TreeDiff:
    """What changed between two trees (paths, sorted)."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.modified)


def _bad(msg: str) -> InvalidArgumentError:
    return InvalidArgumentError(f"tree manifest: {msg}")


class Tree:
    """An immutable directory manifest; iterate for its entries (sorted by path)."""

    __slots__ = ("_by_path", "_bytes", "_digest", "algo", "entries")

    def __init__(
        self,
        entries: Iterable[TreeEntry],
        *,
        algo: str = DEFAULT_ALGO,
        check: bool | Literal["walked"] = True,
    ) -> None:
        """Sort ``entries`` by path; ``check`` validates every path (refusing unsafe ones).

        ``check="walked"`` is for entries read from a real directory (no path can be both a
        file and a directory there): paths and symlinks are still checked.
        """
        items = sorted(entries, key=lambda e: e.path)
        if check:
            _check_entries(items, nesting=check != "walked")
        self.entries: tuple[TreeEntry, ...] = tuple(items)
        self.algo = algo
        self._bytes: bytes | None = None
        self._digest: str | None = None
        self._by_path: dict[str, TreeEntry] | None = None

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[TreeEntry]:
        return iter(self.entries)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tree) and self.entries == other.entries

    def __hash__(self) -> int:
        return hash(self.entries)

    def __repr__(self) -> str:
        return f"Tree({len(self)} entries, {self.size} bytes)"

    @property
    def size(self) -> int:
        """Total bytes of the files (symlinks count their target's length)."""
        return sum(e.size for e in self.entries)

    @property
    def digest(self) -> str:
        """``"<algo>:<hex>.tree"``: the digest of :meth:`to_bytes`."""
        if self._digest is None:
            self._digest = hash_bytes(self.to_bytes(), self.algo, tree=True)
        return self._digest

    def get(self, path: str) -> TreeEntry | None:
        """The entry at ``path``, if any."""
        if self._by_path is None:
            self._by_path = {e.path: e for e in self.entries}
        return self._by_path.get(path)

    def digests(self) -> set[str]:
        """The distinct object digests the files reference (symlinks store no object)."""
        return {e.digest for e in self.entries if not e.is_link}

    def to_bytes(self) -> bytes:
        """Canonical bytes: compact JSON, keys sorted, entries sorted by path, UTF-8."""
        if self._bytes is None:
            rows = [
                [e.path, e.digest, e.size, e.mode]
                if e.target is None
                else [e.path, e.digest, e.size, e.mode, e.target]
                for e in self.entries
            ]
            doc = {"entries": rows, "format": FORMAT}
            self._bytes = json.dumps(
                doc, separators=(",", ":"), ensure_ascii=False, sort_keys=True
            ).encode("utf-8")
        return self._bytes

    @classmethod
    def from_bytes(cls, data: bytes, *, algo: str = DEFAULT_ALGO) -> Tree:
        """Parse an untrusted manifest; refuse anything malformed or unsafe.

        Raises:
            UnsafePathError: a path or symlink that would leave the root (names it).
            InvalidArgumentError: anything else malformed.
        """
        try:
            doc = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise _bad(f"not valid JSON ({exc})") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise _bad(f"expected an object with format {FORMAT!r}")
        raw = doc.get("entries")
        if not isinstance(raw, list):
            raise _bad("'entries' must be a list")
        entries: list[TreeEntry] = []
        fast_path, fast_digest = _FAST_PATH.fullmatch, _FAST_DIGEST.fullmatch
        for i, item in enumerate(raw):
            # The common entry (a plain file with a plain ASCII path) in one quick test;
            # anything else goes through the full checks (and their messages).
            if (
                type(item) is list
                and len(item) == 4
                and type(path := item[0]) is str
                and fast_path(path)
                and "/." not in "/" + path
                and type(digest := item[1]) is str
                and fast_digest(digest)
                and type(size := item[2]) is int
                and size >= 0
                and ((mode := item[3]) == MODE_FILE or mode == MODE_EXEC)
                and type(mode) is int
                and len(path) <= MAX_PATH
            ):
                entries.append(TreeEntry(path, digest, size, mode))
            else:
                entries.append(_parse_entry(i, item))
        for prev, cur in zip(entries, entries[1:], strict=False):
            if cur.path == prev.path:
                raise UnsafePathError(f"tree manifest: duplicate path {cur.path!r}")
            if cur.path < prev.path:
                raise _bad(f"entries not sorted by path ({prev.path!r} before {cur.path!r})")
        tree = cls(entries, algo=algo, check=False)
        _check_entries(list(tree.entries), paths_checked=True)
        return tree

    def diff(self, other: Tree) -> TreeDiff:
        """What changed from ``self`` (old) to ``other`` (new)."""
        old = {e.path: e for e in self.entries}
        new = {e.path: e for e in other.entries}
        return TreeDiff(
            added=sorted(new.keys() - old.keys()),
            removed=sorted(old.keys() - new.keys()),
            modified=sorted(
                p
                for p in old.keys() & new.keys()
                if (old[p].digest, old[p].mode) != (new[p].digest, new[p].mode)
            ),
        )


# A path of plain ASCII names (no component starting with "." is let through: see from_bytes)
# and a file digest (not a tree), for the quick test in Tree.from_bytes.
_NAME = r"[A-Za-z0-9_.+=,@%~-]{1,255}"
_FAST_PATH = re.compile(rf"{_NAME}(?:/{_NAME})*")
_FAST_DIGEST = re.compile(r"(?:blake3|sha256):[0-9a-f]{64}|md5:[0-9a-f]{32}")


def _parse_entry(i: int, item: object) -> TreeEntry:
    if not isinstance(item, list) or len(item) not in (4, 5):
        raise _bad(f"entry {i} must be [path, digest, size, mode] (+ target for a symlink)")
    path, digest, size, mode = item[:4]
    validate_relpath(path, what=f"tree manifest: entry {i} path")
    if not isinstance(digest, str):
        raise _bad(f"entry {path!r}: digest must be a string")
    parse_digest(digest)
    if is_tree(digest):
        raise _bad(f"entry {path!r}: nested trees are not allowed")
    if type(size) is not int or size < 0:
        raise _bad(f"entry {path!r}: size must be an integer >= 0")
    if type(mode) is not int or mode not in MODES:
        raise _bad(f"entry {path!r}: mode must be one of 0o100644, 0o100755, 0o120000")
    target = item[4] if len(item) == 5 else None
    if (mode == MODE_LINK) != (target is not None):
        raise _bad(f"entry {path!r}: a target is given for symlinks and only for symlinks")
    if target is not None and not isinstance(target, str):
        raise _bad(f"entry {path!r}: symlink target must be a string")
    return TreeEntry(path, digest, size, mode, target)


def _plain_name(path: str) -> bool:
    """A quick pass for paths read from a real directory: ASCII, no backslash, short names.

    (``scandir`` names never contain ``/`` or NUL and are never ``.`` or ``..``.)
    """
    return path.isascii() and "\\" not in path and len(path) <= 255


def check_walked(paths: Iterable[str], links: Mapping[str, str]) -> None:
    """Refuse what a tree could not hold, for a listing read from a real directory: file and
    link ``paths`` that are unsafe in a manifest (backslash, ...) and symlinks (``links``:
    path -> target) that leave the root. The same checks as ``Tree(..., check="walked")``,
    made *before* anything is hashed or stored, so a refused add has no side effect.

    Raises:
        UnsafePathError: naming the path or the link.
        InvalidArgumentError: a path a manifest cannot hold.
    """
    for path in itertools.chain(paths, links):
        if not _plain_name(path):
            validate_relpath(path, what="tree entry path")
    for path, target in links.items():
        resolve_link(path, target, links)


def _check_entries(
    entries: list[TreeEntry], *, paths_checked: bool = False, nesting: bool = True
) -> None:
    """Refuse unsafe paths, duplicates, entries under another entry, and escaping links."""
    seen: set[str] = set()
    links: dict[str, str] = {}
    for e in entries:
        if not paths_checked and (nesting or not _plain_name(e.path)):
            validate_relpath(e.path, what="tree entry path")
            if e.mode not in MODES:
                raise _bad(f"entry {e.path!r}: mode {oct(e.mode)} is not a file, exec or link")
            if e.is_link and e.target is None:
                raise _bad(f"entry {e.path!r}: a symlink needs a target")
        if e.path in seen:
            raise UnsafePathError(f"tree manifest: duplicate path {e.path!r}")
        seen.add(e.path)
        if e.is_link:
            links[e.path] = e.target or ""
    for e in entries if nesting else ():
        parent = e.path
        while (cut := parent.rfind("/")) > 0:
            parent = parent[:cut]
            if parent in seen:
                raise UnsafePathError(
                    f"tree manifest: {e.path!r} lies under the entry {parent!r}, which is not "
                    "a directory"
                )
    for path, target in links.items():
        resolve_link(path, target, links)
