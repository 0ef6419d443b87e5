"""The ``.gitignore`` mltrail keeps in its ``.mltrail/`` folder (no imports: the data CLI's
fast path and the store registry both use it)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["GITIGNORE_TEXT", "ignore_folder_in_git"]

#: What mltrail writes into ``.mltrail/.gitignore``: everything is ignored (runs, caches) but
#: ``config.toml``, the data remotes committed with the code (mltrail.data.config).
GITIGNORE_TEXT = (
    "# created by mltrail: runs and caches are not source code; config.toml is\n*\n!config.toml\n"
)
# An empty file is what an interrupted write of an older mltrail left: ours to rewrite.
_OLD_GITIGNORE_TEXTS = ("# created by mltrail: runs are not source code\n*\n", "")


def ignore_folder_in_git(folder: Path) -> None:
    """Write ``folder/.gitignore`` (:data:`GITIGNORE_TEXT`), or upgrade one an older mltrail
    wrote; a file the user changed is left alone."""
    marker = folder / ".gitignore"
    try:
        if marker.exists() and marker.read_text() not in _OLD_GITIGNORE_TEXTS:
            return
        folder.mkdir(parents=True, exist_ok=True)
        # atomic: an interrupted write must never leave an empty file that would then be
        # taken for the user's own (and git would see the store)
        tmp = folder / f".gitignore.{os.getpid()}.tmp"
        try:
            tmp.write_text(GITIGNORE_TEXT)
            os.replace(tmp, marker)
        finally:
            tmp.unlink(missing_ok=True)
    except (OSError, UnicodeDecodeError):
        pass  # a read-only location: the store open reports the real problem
