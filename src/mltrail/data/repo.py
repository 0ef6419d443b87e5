"""The git repository that holds pointer files: its root, cache, config and pointers.

Layout at the git root::

    .mltrail/.gitignore         ignores everything here but config.toml
    .mltrail/config.toml        remotes (committed)
    .mltrail/config.local.toml  personal overrides (never committed)
    .mltrail/cache/             the content-addressed cache (mltrail.objects.Cache) and its
                                hash index: unchanged files are never re-hashed
    .mltrail/dvc-index.db       md5s of DVC-tracked files (status of DVC outputs)

Pointer files are found with one ``git ls-files`` (tracked and untracked-but-not-ignored), so
a repository with thousands of source files costs one subprocess, never a directory walk.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from mltrail.data.pointer import POINTER_SUFFIX, Pointer, parse_bytes
from mltrail.errors import (
    GitError,
    InvalidArgumentError,
    NotFoundError,
    UnsafePathError,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mltrail.data.config import DataConfig
    from mltrail.data.dvc import DvcOut

__all__ = ["DataRepo", "GitError", "PointerEntry", "git_bytes"]

META_DIR = ".mltrail"
CACHE_DIR = "cache"
_GIT_TIMEOUT_S = 60.0


def git_bytes(root: Path, *args: str, ok_codes: Sequence[int] = (0,)) -> bytes:
    """Run ``git -C root ARGS`` and return its stdout.

    Raises:
        GitError: git is missing, timed out, or exited with a code not in ``ok_codes``.
    """
    from mltrail._git import run_git
    from mltrail.errors import GitError

    try:
        return run_git(root, *args, timeout_s=_GIT_TIMEOUT_S, ok_codes=ok_codes)
    except GitError as exc:
        raise GitError(exc.message) from None


@dataclass(frozen=True, slots=True)
class PointerEntry:
    """A pointer file and what it names.

    Attributes:
        pointer_file: The pointer's path relative to the git root (posix).
        pointer: Its parsed content.
        data_path: The data's path relative to the git root (posix).
    """

    pointer_file: str
    pointer: Pointer
    data_path: str


def data_path_of(pointer_file: str, pointer: Pointer) -> str:
    """The data's path relative to the git root for a pointer at ``pointer_file``."""
    return str(PurePosixPath(pointer_file).parent / pointer.path)


class DataRepo:
    """One git work tree with its data cache and configuration.

    Use :meth:`discover` to find the repository around a folder.
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.meta_dir = self.root / META_DIR
        self.cache_dir = self.meta_dir / CACHE_DIR

    @classmethod
    def discover(cls, start: Path | None = None) -> DataRepo:
        """The repository containing ``start`` (default: the current directory).

        Raises:
            NotFoundError: not inside a git work tree.
        """
        where = (start or Path.cwd()).resolve()
        try:
            out = git_bytes(where, "rev-parse", "--show-toplevel")
        except GitError as exc:
            raise NotFoundError(
                f"{where} is not inside a git work tree (mltrail data versions data in git: "
                f"run `git init` first): {exc.message}"
            ) from None
        return cls(Path(os.fsdecode(out.strip())))

    # -- layout -----------------------------------------------------------------------

    def ensure_meta(self) -> None:
        """Create ``.mltrail/`` with its ``.gitignore`` (everything but config.toml ignored).

        The file is written whole or not at all (temp + rename): an empty one, left by a
        write that failed (a full disk), would otherwise read as the user's and stay, and git
        would then see the cache. A location that cannot be written is left for the cache to
        report.
        """
        from mltrail._gitignore import ignore_folder_in_git

        ignore_folder_in_git(self.meta_dir)

    def config(self) -> DataConfig:
        """The repository's data configuration (remotes)."""
        from mltrail.data.config import load_config

        return load_config(self.meta_dir)

    def rel(self, path: Path | str) -> str:
        """``path`` (absolute or relative to the current directory) relative to the root.

        Raises:
            UnsafePathError: the path is outside the repository, or inside ``.git``/``.mltrail``.
        """
        absolute = Path(os.path.abspath(path))
        parent = absolute.parent.resolve()  # resolve symlinked folders, not the leaf itself
        try:
            rel = (parent / absolute.name).relative_to(self.root)
        except ValueError:
            raise UnsafePathError(f"{path}: outside the repository at {self.root}") from None
        posix = rel.as_posix()
        if posix in ("", ".") or rel.parts[0] in (".git", META_DIR):
            raise UnsafePathError(f"{path}: not a path mltrail data can track")
        return posix

    def abspath(self, rel: str) -> Path:
        """The absolute path of a root-relative posix path (checked to stay inside)."""
        path = self.root.joinpath(*PurePosixPath(rel).parts)
        if ".." in PurePosixPath(rel).parts or PurePosixPath(rel).is_absolute():
            raise UnsafePathError(f"{rel}: leaves the repository")
        return path

    # -- pointers ---------------------------------------------------------------------

    def ls_files(self, *patterns: str, rev: str | None = None) -> list[str]:
        """Files whose paths match the glob ``patterns`` (``*`` crosses ``/``, as in git
        pathspecs): tracked and untracked-not-ignored files of the workspace, or the files of
        revision ``rev``."""
        if rev is None:
            args = ["ls-files", "-z", "--cached", "--others", "--exclude-standard", "--"]
            raw = git_bytes(self.root, *args, *patterns)
        else:
            raw = git_bytes(self.root, "ls-tree", "-r", "-z", "--name-only", "--full-tree", rev)
        import fnmatch

        seen: dict[str, None] = {}
        for item in raw.split(b"\0"):
            if item:
                seen.setdefault(os.fsdecode(item), None)
        if rev is not None:
            return [p for p in seen if any(fnmatch.fnmatchcase(p, pat) for pat in patterns)]
        return [p for p in seen if self.abspath(p).is_file()]

    def read_file(self, rel: str, rev: str | None = None) -> bytes:
        """The bytes of ``rel`` in the workspace or in revision ``rev`` (``git show``)."""
        if rev is None:
            return self.abspath(rel).read_bytes()
        return git_bytes(self.root, "show", f"{rev}:{rel}")

    def pointer_files(self) -> list[str]:
        """The workspace's pointer files and DVC files (``*.mltrail``, ``*.dvc``,
        ``dvc.lock``) in one ``git ls-files``: pass it as ``files=`` to :meth:`pointers` and
        :meth:`dvc_outs` to list the workspace once."""
        return self.ls_files(f"*{POINTER_SUFFIX}", "*.dvc", "*dvc.lock")

    def pointers(
        self,
        rev: str | None = None,
        errors: list[str] | None = None,
        *,
        files: Sequence[str] | None = None,
    ) -> list[PointerEntry]:
        """Every ``*.mltrail`` pointer (workspace, or revision ``rev``), sorted by path.

        Args:
            rev: A git revision; None reads the workspace.
            errors: When given, invalid pointer files are reported here instead of raising.
            files: The workspace listing from :meth:`pointer_files` (saves a ``git`` call).

        Raises:
            InvalidArgumentError: an invalid pointer file (when ``errors`` is None).
        """
        found: list[PointerEntry] = []
        if files is not None and rev is None:
            listed = [f for f in files if f.endswith(POINTER_SUFFIX)]
        else:
            listed = self.ls_files(f"*{POINTER_SUFFIX}", rev=rev)
        for rel in sorted(listed):
            try:
                pointer = parse_bytes(self.read_file(rel, rev), rel, PurePosixPath(rel).name)
            except (InvalidArgumentError, OSError, GitError) as exc:
                if errors is None:
                    raise
                errors.append(str(exc))
                continue
            found.append(PointerEntry(rel, pointer, data_path_of(rel, pointer)))
        return found

    def ignored_pointers(self) -> list[PointerEntry]:
        """Pointer files in git-ignored places (``git ls-files`` leaves them out of
        :meth:`pointers`): gc keeps their data too. Unreadable ones are skipped."""
        raw = git_bytes(
            self.root,
            "ls-files",
            "-z",
            "--others",
            "--ignored",
            "--exclude-standard",
            "--",
            f"*{POINTER_SUFFIX}",
            f":(exclude){META_DIR}",
        )
        found: list[PointerEntry] = []
        for item in sorted({os.fsdecode(i) for i in raw.split(b"\0") if i}):
            try:
                data = self.abspath(item).read_bytes()
                pointer = parse_bytes(data, item, PurePosixPath(item).name)
            except (InvalidArgumentError, OSError):
                continue
            found.append(PointerEntry(item, pointer, data_path_of(item, pointer)))
        return found

    def dvc_outs(
        self,
        rev: str | None = None,
        errors: list[str] | None = None,
        *,
        files: Sequence[str] | None = None,
    ) -> list[DvcOut]:
        """The outputs DVC tracks: ``.dvc`` files and ``dvc.lock`` outs (read only).

        ``files``: the workspace listing from :meth:`pointer_files` (saves a ``git`` call).
        """
        outs: list[DvcOut] = []
        if files is not None and rev is None:
            listed = [f for f in files if f.endswith((".dvc", "dvc.lock"))]
        else:
            listed = self.ls_files("*.dvc", "*dvc.lock", rev=rev)
        for rel in sorted(listed):
            from mltrail.data.dvc import parse_dvc_file, parse_dvc_lock

            name = PurePosixPath(rel).name
            if not (name.endswith(".dvc") or name == "dvc.lock"):
                continue
            try:
                raw = self.read_file(rel, rev)
                parse = parse_dvc_lock if name == "dvc.lock" else parse_dvc_file
                outs.extend(parse(raw, rel))
            except (InvalidArgumentError, OSError, GitError) as exc:
                if errors is None:
                    raise
                errors.append(str(exc))
        return outs

    def find_pointer(self, path: Path | str) -> tuple[str, Pointer]:
        """The pointer for ``path`` (the data or the ``.mltrail`` file itself).

        Raises:
            NotFoundError: no pointer file for it.
        """
        from mltrail.data.pointer import read_pointer

        rel = self.rel(path)
        pointer_rel = rel if rel.endswith(POINTER_SUFFIX) else rel + POINTER_SUFFIX
        pointer = read_pointer(self.abspath(pointer_rel), pointer_rel)
        return pointer_rel, pointer

    def resolve_rev(self, rev: str) -> str:
        """The commit id of ``rev``.

        Raises:
            NotFoundError: no such revision.
        """
        if rev.startswith("-"):
            raise InvalidArgumentError(f"revision {rev!r}: must not start with '-'")
        try:
            out = git_bytes(self.root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
        except GitError:
            raise NotFoundError(f"no git revision {rev!r} in {self.root}") from None
        return out.decode().strip()
