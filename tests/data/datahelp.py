"""Helpers the data tests share: write files, commit, the S3 endpoint."""

from __future__ import annotations

import os
from pathlib import Path

from mltrail.testing.repos import git


def write_files(root: Path, files: dict[str, str | bytes]) -> None:
    """Create ``files`` (relative path -> content) under ``root``."""
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


def commit_all(root: Path, message: str = "data") -> str:
    """``git add -A && git commit``; returns the new HEAD sha."""
    git(root, "add", "-A")
    git(root, "commit", "-q", "--allow-empty", "-m", message)
    return git(root, "rev-parse", "HEAD").strip()


def s3_endpoint() -> str | None:
    """The S3-compatible server the tests may use (``MLTRAIL_S3_ENDPOINT``), if any."""
    return os.environ.get("MLTRAIL_S3_ENDPOINT") or None
