"""The repository's data configuration: remotes, kept in git.

Where: ``.mltrail/config.toml`` at the git root, committed with the code (the ``.gitignore``
mltrail writes into ``.mltrail/`` ignores everything there except ``config.toml``), plus an
optional ``.mltrail/config.local.toml`` that is never committed and overrides it (a personal
remote, a remote's credentials-free URL on this machine). The same layout as DVC's
``.dvc/config`` and ``.dvc/config.local``::

    [core]
    remote = "storage"

    [remotes.storage]
    url = "s3://bucket/datasets"

``[gc] grace_minutes`` (default 60) is gc's grace window: objects younger than that are never
collected, from the cache or a remote, whatever references them (a safety net for writers that
do not hold the cache lock, and for pushes from other machines to a remote)::

    [gc]
    grace_minutes = 60

Credentials never go in these files: S3 remotes take them from the environment
(``AWS_ACCESS_KEY_ID`` ..., and ``MLTRAIL_S3_ENDPOINT`` for an S3-compatible server).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mltrail.errors import InvalidArgumentError, NotFoundError

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "CONFIG_FILE",
    "DEFAULT_GC_GRACE_MINUTES",
    "LOCAL_CONFIG_FILE",
    "DataConfig",
    "Remote",
    "add_remote",
    "load_config",
    "remove_remote",
    "resolve_remote",
]

CONFIG_FILE = "config.toml"
LOCAL_CONFIG_FILE = "config.local.toml"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_URL_MAX = 2048
#: gc never collects objects younger than this (``[gc] grace_minutes`` overrides it).
DEFAULT_GC_GRACE_MINUTES = 60.0


@dataclass(frozen=True, slots=True)
class Remote:
    """A named remote: ``url`` is a local path or any fsspec URL; ``local`` if from the
    uncommitted ``config.local.toml``."""

    name: str
    url: str
    local: bool = False


@dataclass(slots=True)
class DataConfig:
    """The merged configuration (``config.local.toml`` over ``config.toml``)."""

    remotes: dict[str, Remote] = field(default_factory=dict)
    default_remote: str | None = None
    gc_grace_minutes: float = DEFAULT_GC_GRACE_MINUTES


def _check_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise InvalidArgumentError(
            f"remote name {name!r}: use 1-64 letters, digits, '_', '.', '-' "
            "(starting with a letter or digit)"
        )
    return name


def _check_url(url: str) -> str:
    if not url or len(url) > _URL_MAX or any(ord(c) < 32 for c in url):
        raise InvalidArgumentError(
            f"remote url: must be 1-{_URL_MAX} printable characters (a path or an fsspec URL)"
        )
    return url


def _read(path: Path) -> dict[str, Any]:
    import tomllib

    try:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidArgumentError(f"{path}: not a valid TOML file ({exc})") from None
    return doc


def _merge(doc: dict[str, Any], cfg: DataConfig, where: Path, local: bool) -> None:
    remotes = doc.get("remotes", {})
    if not isinstance(remotes, dict):
        raise InvalidArgumentError(f"{where}: [remotes] must be a table")
    for name, body in remotes.items():
        if not isinstance(body, dict) or not isinstance(body.get("url"), str):
            raise InvalidArgumentError(f'{where}: [remotes.{name}] needs url = "..."')
        cfg.remotes[name] = Remote(_check_name(name), _check_url(body["url"]), local)
    core = doc.get("core", {})
    if isinstance(core, dict) and isinstance(core.get("remote"), str):
        cfg.default_remote = core["remote"]
    gc = doc.get("gc", {})
    if isinstance(gc, dict) and "grace_minutes" in gc:
        grace = gc["grace_minutes"]
        if isinstance(grace, bool) or not isinstance(grace, (int, float)) or not grace >= 0:
            raise InvalidArgumentError(f"{where}: [gc] grace_minutes must be a number >= 0")
        cfg.gc_grace_minutes = float(grace)


def load_config(config_dir: Path) -> DataConfig:
    """Read ``config.toml`` and ``config.local.toml`` in ``config_dir`` (either may be absent).

    Raises:
        InvalidArgumentError: a file is not valid TOML or names a remote badly.
    """
    cfg = DataConfig()
    for name, local in ((CONFIG_FILE, False), (LOCAL_CONFIG_FILE, True)):
        path = config_dir / name
        _merge(_read(path), cfg, path, local)
    return cfg


_HEADER = "# mltrail data configuration (see `mltrail data remote --help`)\n"


def _dump(doc: dict[str, Any]) -> str:
    """``doc`` as TOML (tomli-w): ``[core]``, ``[remotes.*]``, then any other table kept as
    read; keys sorted, None values (TOML has no null) left out."""
    import tomli_w

    body = _without_none(doc)
    ordered = {k: body[k] for k in ("core", "remotes") if body.get(k)}
    ordered.update((k, v) for k, v in body.items() if k not in ("core", "remotes"))
    return _HEADER + "\n" + tomli_w.dumps(ordered)


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in sorted(value.items()) if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value if v is not None]
    return value


def _write(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(_dump(doc), encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def add_remote(
    config_dir: Path, name: str, url: str, *, default: bool = False, local: bool = False
) -> Path:
    """Add or replace remote ``name``; with ``default`` make it the default remote.

    Args:
        config_dir: The ``.mltrail`` folder at the git root.
        name: The remote's name.
        url: A local path (kept as given; relative paths are relative to the git root) or an
            fsspec URL.
        default: Also set ``core.remote``.
        local: Write ``config.local.toml`` (not committed) instead of ``config.toml``.

    Returns:
        The file written.
    """
    _check_name(name)
    _check_url(url)
    path = config_dir / (LOCAL_CONFIG_FILE if local else CONFIG_FILE)
    doc = _read(path)
    remotes = doc.setdefault("remotes", {})
    remotes[name] = {**remotes.get(name, {}), "url": url}
    if default:
        doc.setdefault("core", {})["remote"] = name
    _write(path, doc)
    return path


def remove_remote(config_dir: Path, name: str) -> list[Path]:
    """Remove remote ``name`` from both files (and as the default); returns the files changed.

    Raises:
        NotFoundError: no remote has that name.
    """
    changed: list[Path] = []
    for fname in (CONFIG_FILE, LOCAL_CONFIG_FILE):
        path = config_dir / fname
        doc = _read(path)
        remotes = doc.get("remotes") or {}
        if name not in remotes:
            continue
        del remotes[name]
        core = doc.get("core") or {}
        if core.get("remote") == name:
            del core["remote"]
        _write(path, doc)
        changed.append(path)
    if not changed:
        raise NotFoundError(f"no remote named {name!r}")
    return changed


def resolve_remote(cfg: DataConfig, name: str | None) -> Remote:
    """The remote named ``name``, else the default, else the only one.

    Raises:
        NotFoundError: no such remote, or none configured, or several and no default.
    """
    if name:
        remote = cfg.remotes.get(name)
        if remote is None:
            known = ", ".join(sorted(cfg.remotes)) or "none"
            raise NotFoundError(f"no remote named {name!r} (configured: {known})")
        return remote
    if cfg.default_remote:
        remote = cfg.remotes.get(cfg.default_remote)
        if remote is None:
            raise NotFoundError(
                f"the default remote {cfg.default_remote!r} (core.remote) is not configured"
            )
        return remote
    if len(cfg.remotes) == 1:
        return next(iter(cfg.remotes.values()))
    if not cfg.remotes:
        raise NotFoundError(
            "no remote configured: add one with `mltrail data remote add NAME URL --default`"
        )
    raise NotFoundError(
        f"several remotes ({', '.join(sorted(cfg.remotes))}) and no default: pass --remote NAME "
        "or set one with `mltrail data remote add NAME URL --default`"
    )
