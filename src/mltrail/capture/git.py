"""Code capture: the state of every git repository a run depends on.

Uses the git CLI (``git -C ROOT ...``) with ``GIT_OPTIONAL_LOCKS=0`` so a capture never takes
the index lock a user's own git command may need. One ``git status --porcelain=v2`` gives the
HEAD sha, branch, changed and untracked files; ``git diff HEAD --binary`` runs only when tracked
files changed. Every failure is recorded as data, never raised.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from mltrail._git import run_git
from mltrail.capture.base import Captured, blob_digest
from mltrail.capture.untracked import Untracked, classify_untracked, read_sources
from mltrail.errors import GitError
from mltrail.settings import DEFAULT_STORE_DIRNAME, settings

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "CODE_REPOS_ENV",
    "CodeCapturer",
    "capture_code",
    "capture_repo",
    "code_changes",
    "dirty_files",
    "find_repo",
    "strip_credentials",
]

CODE_REPOS_ENV = "MLTRAIL_CODE_REPOS"
UNTRACKED_CAP = 1000
DIFF_MAX_BYTES = 256 * 1024 * 1024
_TIMEOUT_S = 20.0
_DIFF_TIMEOUT_S = 120.0
_SSH_SCHEMES = frozenset({"ssh", "git+ssh", "ssh+git"})


def _git(root: Path, *args: str, timeout_s: float = _TIMEOUT_S) -> bytes:
    return run_git(root, *args, timeout_s=timeout_s)


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


# Per-process caches: a run started in a loop (a sweep) must not pay git subprocesses for
# what cannot change between runs of one process, or what was read a moment ago.
_toplevels: dict[Path, tuple[Path | None, str | None]] = {}
_remote_cache: dict[Path, tuple[int, dict[str, str]]] = {}
_recent_status: dict[Path, tuple[float, dict[str, Any]]] = {}
_STATUS_REUSE_S = 2.0  # a status this fresh (the guard's, during the same init) is reused


def _toplevel(path: Path) -> tuple[Path | None, str | None]:
    """The work-tree root, or None and why, unless the why is merely "not a repository"."""
    start = path.resolve()
    while not start.is_dir() and start != start.parent:
        start = start.parent
    cached = _toplevels.get(start)
    if cached is not None:
        return cached
    try:
        top = _text(_git(start, "rev-parse", "--show-toplevel")).strip()
    except GitError as exc:
        ordinary = "not a git repository" in str(exc) or "in a work tree" in str(exc)
        if not ordinary:
            return None, str(exc)  # git missing or refusing: ask again next time
        found: tuple[Path | None, str | None] = (None, None)
    else:
        found = (Path(top), None) if top else (None, None)
    _toplevels[start] = found
    return found


def find_repo(path: Path) -> Path | None:
    """The work-tree root of the git repository containing ``path``.

    Args:
        path: A file or directory (it need not exist; its nearest existing parent is used).

    Returns:
        The absolute work-tree root, or None outside git, in a bare repository, in a
        repository git refuses to read (``safe.directory``), or when git is missing.
    """
    return _toplevel(path)[0]


def strip_credentials(url: str) -> str:
    """A remote URL without secrets.

    ``https://user:token@host/x.git`` becomes ``https://host/x.git``. SSH URLs keep their
    user name (``git@host``), since it is not a secret, but lose any password; scp-like
    ``git@host:path`` URLs and local paths are returned unchanged.

    Args:
        url: A remote URL as configured.

    Returns:
        The URL with credentials removed.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.scheme or "@" not in parts.netloc:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    if parts.scheme.lower() in _SSH_SCHEMES:
        user = userinfo.partition(":")[0]
        netloc = f"{user}@{hostport}" if user else hostport
    else:
        netloc = hostport
    return urlunsplit(parts._replace(netloc=netloc))


def _remotes(root: Path) -> dict[str, str]:
    """Remote URLs without credentials; cached while ``.git/config`` is unchanged."""
    try:
        stamp = (root / ".git" / "config").stat().st_mtime_ns
    except OSError:
        stamp = -1  # a worktree or submodule (.git is a file): not cached
    cached = _remote_cache.get(root)
    if cached is not None and stamp >= 0 and cached[0] == stamp:
        return dict(cached[1])
    remotes = _read_remotes(root)
    if stamp >= 0:
        _remote_cache[root] = (stamp, remotes)
    return dict(remotes)


def _read_remotes(root: Path) -> dict[str, str]:
    try:
        out = _git(root, "config", "-z", "--get-regexp", r"^remote\..*\.url$")
    except GitError:
        return {}  # exit status 1 also means "no remote configured"
    remotes: dict[str, str] = {}
    for entry in _text(out).split("\0"):
        key, _, url = entry.partition("\n")
        if key.startswith("remote.") and key.endswith(".url"):
            remotes.setdefault(key[len("remote.") : -len(".url")], strip_credentials(url))
    return remotes


def _parse_status(raw: bytes) -> dict[str, Any]:
    """Parse ``git status --porcelain=v2 --branch -z`` output."""
    sha: str | None = None
    branch: str | None = None
    changed: list[str] = []
    untracked: list[str] = []
    ignored: list[str] = []
    entries = _text(raw).split("\0")
    i = 0
    while i < len(entries):
        entry = entries[i]
        i += 1
        if entry.startswith("# branch.oid "):
            oid = entry[len("# branch.oid ") :]
            sha = None if oid == "(initial)" else oid
        elif entry.startswith("# branch.head "):
            head = entry[len("# branch.head ") :]
            branch = None if head == "(detached)" else head
        elif entry.startswith("1 "):
            changed.append(entry.split(" ", 8)[8])
        elif entry.startswith("2 "):
            changed.append(entry.split(" ", 9)[9])
            if i < len(entries):  # a rename's original path is the next NUL-separated entry
                changed.append(entries[i])
                i += 1
        elif entry.startswith("u "):
            changed.append(entry.split(" ", 10)[10])
        elif entry.startswith("? "):
            untracked.append(entry[2:])
        elif entry.startswith("! "):
            ignored.append(entry[2:])
    return {
        "sha": sha,
        "branch": branch,
        "changed": changed,
        "untracked": untracked,
        "ignored": ignored,
    }


# -- the working-tree stamp: an unchanged tree skips `git status` --------------------------
#
# A stamp is the stat (mtime, ctime, size, inode) of every file git would look at, the names
# in every folder (ignored paths pruned, as the last status listed them) and the repository's
# HEAD, index, refs and exclude file. Taken *before* a `git status`, it stands for that
# status: any change after the walk, even one racing the status, makes the next stamp differ
# and git runs again. A stamp holding a time stamp within _RACY_NS of its walk is not trusted
# (file times are coarse: a second write in the same tick would keep the stamp), nor is one
# of a tree with submodules or a linked worktree (their state lives outside this walk), nor
# one of more than _STAMP_MAX_ENTRIES paths (git is faster than Python at stat-ing a big
# tree). Not covered: a change to the user's global excludes file (core.excludesFile).

_STAMP_MAX_ENTRIES = 4096
_RACY_NS = 50_000_000


@dataclass(frozen=True)
class _Stamped:
    stamp: tuple[Any, ...]
    ignored: frozenset[str]
    status: dict[str, Any]


_stamped: dict[Path, _Stamped] = {}
_last_ignored: dict[Path, frozenset[str]] = {}


def _stat_key(path: str) -> tuple[int, int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (max(st.st_mtime_ns, st.st_ctime_ns), st.st_size, st.st_ino, st.st_mode)


def _own_folder(path: str) -> bool:
    """An mltrail folder whose ``.gitignore`` is still ours: all but config.toml ignored."""
    from mltrail._gitignore import GITIGNORE_TEXT

    try:
        with open(os.path.join(path, ".gitignore"), encoding="utf-8") as f:
            return f.read(4096) == GITIGNORE_TEXT
    except (OSError, UnicodeDecodeError):
        return False


def _tree_stamp(root: Path, ignored: frozenset[str]) -> tuple[Any, ...] | None:
    """The stamp of ``root``'s working tree, or None where a stamp cannot be trusted."""
    top = str(root)
    git_dir = os.path.join(top, ".git")
    if not os.path.isdir(git_dir) or os.path.exists(os.path.join(top, ".gitmodules")):
        return None
    start_ns = time.time_ns()
    try:
        with open(os.path.join(git_dir, "HEAD"), "rb") as f:
            head = f.read(4096)
    except OSError:
        return None
    meta: list[Any] = [head]
    for name in ("index", "packed-refs", os.path.join("info", "exclude")):
        meta.append(_stat_key(os.path.join(git_dir, name)))
    if head.startswith(b"ref: "):
        ref = head[5:].strip().decode("utf-8", "replace")
        meta.append(_stat_key(os.path.join(git_dir, ref)))
    # folders are stamped by the names they hold (not their mtime: an ignored file that
    # comes and goes, such as a database's -wal file, must not count), files by their stat
    entries: list[tuple[Any, ...]] = []
    stack = [""]
    while stack:
        rel = stack.pop()
        here = os.path.join(top, rel) if rel else top
        try:
            with os.scandir(here) as it:
                children = sorted(it, key=lambda e: e.name)
        except OSError:
            return None
        names: list[str] = []
        for child in children:
            if child.name == ".git":
                continue
            sub = f"{rel}/{child.name}" if rel else child.name
            try:
                is_dir = child.is_dir(follow_symlinks=False)
            except OSError:
                return None
            if (sub + "/" if is_dir else sub) in ignored or sub in ignored:
                continue
            names.append(child.name)
            if is_dir:
                if child.name == DEFAULT_STORE_DIRNAME and _own_folder(child.path):
                    for kept in (".gitignore", "config.toml"):
                        entries.append((f"{sub}/{kept}", _stat_key(f"{child.path}/{kept}")))
                else:
                    stack.append(sub)
                continue
            try:
                cst = child.stat(follow_symlinks=False)
            except OSError:
                return None
            entries.append((sub, cst.st_mtime_ns, cst.st_ctime_ns, cst.st_size, cst.st_ino))
        entries.append((rel, tuple(names)))
        if len(entries) > _STAMP_MAX_ENTRIES:
            return None
    stamps = [max(e[1], e[2]) for e in entries if len(e) == 5]
    stamps += [m[0] for m in meta[1:] if m is not None]
    if any(t >= start_ns - _RACY_NS for t in stamps):
        return None  # touched a moment ago: the same tick may hold another write
    return (tuple(meta), tuple(entries))


def tree_stamp(root: Path) -> tuple[Any, ...] | None:
    """A stamp of ``root``'s working tree that changes whenever anything git would list
    changes (None where there is none to trust, e.g. before a first ``git status``)."""
    ignored = _last_ignored.get(root)
    return _tree_stamp(root, ignored) if ignored is not None else None


def _git_status(root: Path) -> dict[str, Any]:
    """``git status`` of ``root``, skipped when the tree's stamp shows nothing changed."""
    known = _stamped.get(root)
    ignored = known.ignored if known is not None else _last_ignored.get(root)
    stamp = _tree_stamp(root, ignored) if ignored is not None else None
    if known is not None and stamp is not None and stamp == known.stamp:
        return known.status
    out = _git(
        root,
        "status",
        "--porcelain=v2",
        "--branch",
        "-z",
        "--untracked-files=normal",
        "--ignored=matching",
    )
    status = _parse_status(out)
    now_ignored = frozenset(status.pop("ignored"))
    _last_ignored[root] = now_ignored
    _stamped.pop(root, None)
    if stamp is not None and now_ignored == ignored:
        _stamped[root] = _Stamped(stamp, now_ignored, status)
    return status


def _status(root: Path, reuse: bool = False) -> dict[str, Any]:
    """``git status`` of ``root``; with ``reuse``, one taken in the last two seconds."""
    if reuse:
        recent = _recent_status.get(root)
        if recent is not None and time.monotonic() - recent[0] < _STATUS_REUSE_S:
            return recent[1]
    status = _git_status(root)
    _recent_status[root] = (time.monotonic(), status)
    return status


def _diff_stats(diff: bytes) -> dict[str, int]:
    files = insertions = deletions = 0
    in_hunk = False
    for line in diff.split(b"\n"):
        if line.startswith(b"diff --git "):
            files += 1
            in_hunk = False
        elif line.startswith(b"@@"):
            in_hunk = True
        elif in_hunk and line.startswith(b"+"):
            insertions += 1
        elif in_hunk and line.startswith(b"-"):
            deletions += 1
    return {"files": files, "insertions": insertions, "deletions": deletions}


def _diff(root: Path, has_head: bool) -> bytes:
    base = "HEAD"
    if not has_head:  # no commit yet: compare with the empty tree
        base = _text(_git(root, "hash-object", "-t", "tree", "/dev/null")).strip()
    args = ["diff", base, "--binary", "--no-color", "--no-ext-diff", "--no-textconv"]
    args += ["--src-prefix=a/", "--dst-prefix=b/", "--"]  # "--": a file may be named HEAD
    # No pathspec of the changed files: measured, it made git diff twice as slow here.
    return _git(root, *args, timeout_s=_DIFF_TIMEOUT_S)


def _empty_repo(root: Path) -> dict[str, Any]:
    return {
        "root": str(root),
        "sha": None,
        "branch": None,
        "remotes": {},
        "dirty": False,
        "changed_files": [],
        "untracked": [],
        "diff": None,
        "diff_stats": {"files": 0, "insertions": 0, "deletions": 0},
    }


def capture_repo(root: Path, reuse_status: bool = False) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Capture one repository's code version.

    ``dirty`` is true when tracked files changed (staged or not) or untracked *source* files
    exist (:mod:`mltrail.capture.untracked`). The diff covers tracked changes; untracked
    source files are kept as blobs (``untracked_sources``: path, size, digest); every
    untracked path is listed by name (``untracked``; directories as ``name/``) and the
    outputs among them under ``outputs``.

    Args:
        root: The repository's work-tree root (see :func:`find_repo`).
        reuse_status: use a ``git status`` taken in the last two seconds (by the
            commit-before-train guard of the same ``init()``) instead of running it again.

    Returns:
        ``(data, blobs)``: the repository dict (root, sha, branch, remotes, dirty,
        changed_files, untracked, diff digest, diff_stats; plus ``error`` when git failed)
        and the diff blob keyed by its digest. Never raises.
    """
    data = _empty_repo(root)
    blobs: dict[str, bytes] = {}
    try:
        status = _status(root, reuse=reuse_status)
    except GitError as exc:
        data["error"] = str(exc)
        return data, blobs
    untracked: list[str] = status["untracked"]
    sorted_out = classify_untracked(root, untracked)
    files, source_blobs = read_sources(root, sorted_out.sources)
    blobs.update(source_blobs)
    data.update(
        sha=status["sha"],
        branch=status["branch"],
        remotes=_remotes(root),
        dirty=bool(status["changed"] or sorted_out.sources),
        changed_files=status["changed"],
        untracked=untracked[:UNTRACKED_CAP],
        untracked_sources=files,
        outputs=sorted_out.outputs[:UNTRACKED_CAP],
    )
    if sorted_out.skipped:
        data["untracked_skipped"] = sorted_out.skipped[:UNTRACKED_CAP]
    if len(untracked) > UNTRACKED_CAP:
        data["untracked_truncated"] = True
    if status["changed"]:
        try:
            diff = _diff(root, has_head=status["sha"] is not None)
        except GitError as exc:
            data["diff_error"] = str(exc)
            return data, blobs
        data["diff_stats"] = _diff_stats(diff)
        if len(diff) > DIFF_MAX_BYTES:
            data["diff_error"] = f"diff of {len(diff)} bytes exceeds {DIFF_MAX_BYTES} bytes"
        elif diff:
            digest = blob_digest(diff)
            data["diff"] = digest
            blobs[digest] = diff
    return data, blobs


def code_changes(root: Path) -> tuple[list[str], Untracked]:
    """What of a working tree is uncommitted code, and what is output.

    Args:
        root: The repository's work-tree root.

    Returns:
        ``(changed tracked files, untracked files sorted into sources and outputs)``;
        nothing when git cannot run (the capture records why).
    """
    try:
        status = _status(root)
    except GitError:
        return [], Untracked()
    return list(status["changed"]), classify_untracked(root, status["untracked"])


def dirty_files(root: Path) -> list[str]:
    """What makes a working tree dirty, for the commit-before-train guard.

    Args:
        root: The repository's work-tree root.

    Returns:
        Tracked files with changes (staged or not) followed by untracked files (ignored files
        excluded; an untracked directory appears once as ``name/``). Empty when clean or when
        git cannot run (the capture records why).
    """
    try:
        status = _status(root)
    except GitError:
        return []
    return [*status["changed"], *status["untracked"]]


def _entry_path() -> Path:
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    return Path(main_file) if main_file else Path.cwd()


def _extra_paths(extra_repos: Sequence[Path]) -> list[Path]:
    paths = [Path(p) for p in extra_repos]
    paths.extend(Path(item).expanduser() for item in settings().code_repos)
    return paths


def capture_code(
    entry: Path | None = None, extra_repos: Sequence[Path] = (), reuse_status: bool = False
) -> Captured:
    """Capture the code version of the entry point's repository and any others.

    Args:
        entry: The entry point (script or directory); None means the ``__main__`` module's
            file, or the current directory when there is none (a REPL, ``python -c``).
        extra_repos: More repositories (any path inside them). Paths listed in
            ``MLTRAIL_CODE_REPOS`` (``os.pathsep``-separated) are added.
        reuse_status: see :func:`capture_repo`.

    Returns:
        Kind ``"code"``: ``{"repos": [...], "entry_repo": root or None, "versioned": bool}``,
        plus ``"note": "no code version"`` when the entry point is outside git (and
        ``"reason"`` when git is missing or refused the repository, e.g. for
        ``safe.directory``), and ``"errors": [{"path", "reason"}]`` for extra paths that are
        not repositories.
    """
    entry_root, entry_reason = _toplevel(entry if entry is not None else _entry_path())
    roots: list[Path] = [] if entry_root is None else [entry_root]
    errors: list[dict[str, str]] = []
    for path in _extra_paths(extra_repos):
        root, reason = _toplevel(path)
        if root is None:
            errors.append({"path": str(path), "reason": reason or "not inside a git work tree"})
        elif root not in roots:
            roots.append(root)
    repos: list[dict[str, Any]] = []
    blobs: dict[str, bytes] = {}
    for root in roots:
        repo, repo_blobs = capture_repo(root, reuse_status)
        repos.append(repo)
        blobs.update(repo_blobs)
    data: dict[str, Any] = {
        "repos": repos,
        "entry_repo": None if entry_root is None else str(entry_root),
        "versioned": entry_root is not None,
    }
    if entry_root is None:
        data["note"] = "no code version"
        if entry_reason is not None:  # git is missing, or refused the repository
            data["reason"] = entry_reason
    if errors:
        data["errors"] = errors
    return Captured(kind="code", data=data, blobs=blobs)


class CodeCapturer:
    """:class:`~mltrail.capture.base.Capturer` for code (see :func:`capture_code`)."""

    kind = "code"

    def __init__(self, entry: Path | None = None, extra_repos: Sequence[Path] = ()) -> None:
        """Remember what to capture.

        Args:
            entry: As for :func:`capture_code`.
            extra_repos: As for :func:`capture_code`.
        """
        self._entry = entry
        self._extra_repos = tuple(extra_repos)

    def available(self) -> bool:
        """Always true: outside git the capture records "no code version"."""
        return True

    def capture(self) -> Captured:
        """Capture now; see :func:`capture_code`."""
        return capture_code(self._entry, self._extra_repos)
