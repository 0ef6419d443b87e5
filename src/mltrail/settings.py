"""Every setting and environment variable mltrail reads, typed, in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DEFAULT_STORE_DIRNAME",
    "Settings",
    "default_store_location",
    "settings",
]

DEFAULT_STORE_DIRNAME = ".mltrail"


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number") from None
    if not value > 0:
        raise ValueError(f"{name}={raw!r} must be > 0")
    return value


@dataclass(frozen=True, slots=True)
class Settings:
    """Settings resolved from the environment at call time.

    Attributes:
        store: ``MLTRAIL_STORE``: the store URI or directory (empty: embedded default).
        heartbeat_s: ``MLTRAIL_HEARTBEAT_S``: seconds between heartbeats (default 5).
        flush_interval_s: ``MLTRAIL_FLUSH_INTERVAL_S``: how often the writer applies the
            spool to the store when idle (default 0.2).
        cache_dir: ``MLTRAIL_CACHE_DIR``: where spools live for remote stores
            (default ``$XDG_CACHE_HOME/mltrail`` or ``~/.cache/mltrail``).
    """

    store: str
    heartbeat_s: float
    flush_interval_s: float
    cache_dir: Path


def settings() -> Settings:
    """Read the settings from the environment now."""
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Settings(
        store=os.environ.get("MLTRAIL_STORE", ""),
        heartbeat_s=_env_float("MLTRAIL_HEARTBEAT_S", 5.0),
        flush_interval_s=_env_float("MLTRAIL_FLUSH_INTERVAL_S", 0.2),
        cache_dir=Path(os.environ.get("MLTRAIL_CACHE_DIR") or Path(xdg) / "mltrail"),
    )


def default_store_location(cwd: Path | None = None) -> Path:
    """The embedded default: ``.mltrail/`` at the git repository root, else in ``cwd``."""
    start = (cwd or Path.cwd()).resolve()
    for parent in (start, *start.parents):
        if (parent / ".git").exists():
            return parent / DEFAULT_STORE_DIRNAME
    return start / DEFAULT_STORE_DIRNAME
