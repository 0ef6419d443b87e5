"""Every setting and environment variable mltrail reads, typed, in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from mltrail.errors import InvalidArgumentError

__all__ = [
    "DEFAULT_STORE_DIRNAME",
    "DURABILITY_MODES",
    "SERVER_CONFIG_ENV",
    "Settings",
    "default_store_location",
    "settings",
]

DEFAULT_STORE_DIRNAME = ".mltrail"
#: Where ``mltrail server --workers N`` passes its config to the worker processes.
SERVER_CONFIG_ENV = "MLTRAIL_SERVER_CONFIG"
#: What an acknowledged ``log()`` survives, by ``MLTRAIL_DURABILITY`` (docs/durability.md):
#: ``process``: the death of the process (one ``write()`` to the spool per call);
#: ``batch``: also an OS crash or power loss, but for a live run's last flush interval (the
#: writer syncs the spool and the embedded store's log each interval and at each run's end);
#: ``call``: everything acknowledged (each call syncs the spool, as MLflow commits each call).
DURABILITY_MODES = ("process", "batch", "call")


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InvalidArgumentError(f"{name}={raw!r} is not a number") from None
    if not value > 0:
        raise InvalidArgumentError(f"{name}={raw!r} must be > 0")
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
        allow_dirty: ``MLTRAIL_ALLOW_DIRTY``: start runs from uncommitted code (recording
            the diff) even where ``require_clean`` asks to refuse.
        require_clean: ``MLTRAIL_REQUIRE_CLEAN``: refuse runs from uncommitted code
            (modified tracked files or untracked source files); also ``require_clean =
            true`` in ``.mltrail/config.toml``. Off by default: the code is recorded instead.
        capture: ``MLTRAIL_CAPTURE`` (default on): capture code, environment, hardware,
            config and seeds at init.
        system_metrics_s: ``MLTRAIL_SYSTEM_METRICS_S``: seconds between system-metrics
            samples (default 10; 0 turns sampling off).
        console: ``MLTRAIL_CONSOLE`` (default on): keep stdout/stderr with the run.
        code_repos: ``MLTRAIL_CODE_REPOS``: more git repositories to record
            (``os.pathsep``-separated).
        run_id: ``MLTRAIL_RUN_ID``: set by ``mltrail run``; ``init()`` attaches to that run.
        preflight_steps: ``MLTRAIL_PREFLIGHT_STEPS``: set by ``mltrail preflight``; the
            process ends cleanly once a run has logged that many steps.
        artifacts: ``MLTRAIL_ARTIFACTS``: where artifact bytes are kept for ``sqlite:///`` and
            ``postgresql://`` stores: a directory or an fsspec URL (``s3://bucket/prefix``);
            empty: ``<cache_dir>/objects`` (an embedded store keeps its own ``objects/``).
        pin_inputs: ``MLTRAIL_PIN_INPUTS``: set by ``mltrail reproduce``: JSON
            ``{"project/name": version}`` of the artifact versions the original run used, so
            ``use_artifact("name:latest")`` gets those even if the alias has moved.
        spool_max_bytes: ``MLTRAIL_SPOOL_MAX_MB`` (in MiB, default 4096): unsent events a run
            may hold while its store is unreachable; past it metric points are dropped and
            counted (the tag ``mltrail.dropped_points``).
        finish_timeout_s: ``MLTRAIL_FINISH_TIMEOUT_S``: how long ``finish()`` waits for the
            store to take the rest of a run before leaving it in the spool for
            ``mltrail sync`` (default 60; 0: do not wait). A store already known to be
            unreachable is waited for 5 s at most.
        durability: ``MLTRAIL_DURABILITY``: ``process``, ``batch`` (default) or ``call``;
            see :data:`DURABILITY_MODES`.
        finish_wait: ``MLTRAIL_FINISH_WAIT`` (default on): ``finish()`` returns once the
            run is in the store, so another process reads it at once. Off (``0``), it
            returns once the run's end is in its spool and the drain goes on in the
            background: every open of the store in this process, and its exit, wait for
            it, but another process may read the run a moment before it lands. A server
            store and ``MLTRAIL_DURABILITY=call`` always wait.
        s3_endpoint: ``MLTRAIL_S3_ENDPOINT``: the endpoint URL of an S3-compatible server
            (SeaweedFS, MinIO, ...) that ``s3://`` object stores talk to (empty: AWS).
        token: ``MLTRAIL_TOKEN``: the API token sent to a server store (``Authorization:
            Bearer``) when none is passed in code.
        ca_bundle: ``MLTRAIL_CA_BUNDLE``, else ``REQUESTS_CA_BUNDLE``: a PEM file (or a
            directory of hashed certificates) of the CAs trusted for ``https://`` servers,
            instead of the system's trust store (which OpenSSL finds through
            ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``). Proxies come from ``HTTPS_PROXY``,
            ``HTTP_PROXY``, ``ALL_PROXY`` and ``NO_PROXY`` (:mod:`mltrail._http`).
        seed: ``MLTRAIL_SEED`` as written: the seed ``seed_everything()`` uses when called
            without one (it says so when the value is not an integer in range).
        image_digest: ``MLTRAIL_IMAGE_DIGEST``: the container image digest to record with
            the environment (the process cannot see it from inside the container).
        server_config: ``MLTRAIL_SERVER_CONFIG`` (:data:`SERVER_CONFIG_ENV`), internal: the
            JSON config ``mltrail server --workers N`` hands to its worker processes.
        audit_key: ``MLTRAIL_AUDIT_KEY``: the Ed25519 private key (PEM) that signs audit
            checkpoints (default ``$XDG_CONFIG_HOME/mltrail/audit/ed25519.pem`` or
            ``~/.config/mltrail/audit/ed25519.pem``: outside any store); its public key is
            ``<path>.pub``.
        audit_checkpoints: ``MLTRAIL_AUDIT_CHECKPOINTS``: where signed audit checkpoints are
            also written, off the database's host: a directory or an fsspec URL
            (``s3://bucket/prefix``); empty: kept in the store only.
        audit_checkpoint_every: ``MLTRAIL_AUDIT_CHECKPOINT_EVERY``: a signed checkpoint every
            this many audit entries (default 1000); registry alias moves always checkpoint.
        openlineage_url: ``MLTRAIL_OPENLINEAGE_URL``: where runs send OpenLineage events
            (START, COMPLETE, FAIL, ABORT): ``http(s)://host[:port][/path]``,
            ``file:///path/events.jsonl`` or ``console``; empty (default): none are sent.
        openlineage_namespace: ``MLTRAIL_OPENLINEAGE_NAMESPACE``: the OpenLineage namespace
            of mltrail's jobs and stored artifacts (default ``mltrail``).
        openlineage_timeout_s: ``MLTRAIL_OPENLINEAGE_TIMEOUT_S``: the timeout of one HTTP
            request to the lineage server, and how long a process's exit waits for unsent
            events (default 5).
        openlineage_api_key: ``MLTRAIL_OPENLINEAGE_API_KEY``: a bearer token for the lineage
            server (empty: none).
    """

    store: str
    heartbeat_s: float
    flush_interval_s: float
    cache_dir: Path
    allow_dirty: bool = False
    require_clean: bool = False
    capture: bool = True
    system_metrics_s: float = 10.0
    console: bool = True
    code_repos: tuple[str, ...] = ()
    run_id: str = ""
    preflight_steps: int | None = None
    artifacts: str = ""
    finish_timeout_s: float = 60.0
    durability: str = "batch"
    finish_wait: bool = True
    token: str = ""
    ca_bundle: str = ""
    seed: str = ""
    image_digest: str = ""
    server_config: str = ""
    s3_endpoint: str = ""
    spool_max_bytes: int = 4096 << 20
    pin_inputs: str = ""
    audit_key: Path | None = None
    audit_checkpoints: str = ""
    audit_checkpoint_every: int = 1000
    openlineage_url: str = ""
    openlineage_namespace: str = "mltrail"
    openlineage_timeout_s: float = 5.0
    openlineage_api_key: str = ""


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise InvalidArgumentError(f"{name}={raw!r} is not a boolean (use 1/0, true/false)")


def _env_seconds(name: str, default: float) -> float:
    """A duration in seconds that may be 0."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InvalidArgumentError(f"{name}={raw!r} is not a number of seconds") from None
    if not 0 <= value < float("inf"):
        raise InvalidArgumentError(f"{name}={raw!r} must be >= 0 and finite")
    return value


def _env_choice(name: str, choices: tuple[str, ...], default: str) -> str:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in choices:
        raise InvalidArgumentError(f"{name}={raw!r} must be one of: {', '.join(choices)}")
    return raw


def _env_steps(name: str) -> int | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise InvalidArgumentError(f"{name}={raw!r} must be a positive integer")
    return int(raw)


def _openlineage_url() -> str:
    """``MLTRAIL_OPENLINEAGE_URL``: http(s)://host..., file:///path, console, or empty."""
    raw = os.environ.get("MLTRAIL_OPENLINEAGE_URL", "").strip()
    if not raw or raw == "console":
        return raw
    parts = urlsplit(raw)
    if (parts.scheme in ("http", "https") and parts.hostname) or (
        parts.scheme == "file" and parts.path and not parts.netloc
    ):
        return raw
    raise InvalidArgumentError(
        f"MLTRAIL_OPENLINEAGE_URL={raw!r}: use http(s)://host[:port][/path], "
        "file:///path/events.jsonl or console"
    )


#: the variables besides ``MLTRAIL_*`` that the settings depend on
_OTHER_VARS = ("HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "REQUESTS_CA_BUNDLE")
_cached: tuple[object, Settings] | None = None


def _environment_key() -> object:
    """What the settings are a function of: every ``MLTRAIL_*`` variable and a few others."""
    data = getattr(os.environ, "_data", None)  # CPython's raw mapping: 6x faster to scan
    if isinstance(data, dict):
        return tuple(kv for kv in data.items() if kv[0][:8] == b"MLTRAIL_"), tuple(
            data.get(os.fsencode(n)) for n in _OTHER_VARS
        )
    env = os.environ
    return tuple(kv for kv in env.items() if kv[0].startswith("MLTRAIL_")), tuple(
        env.get(n) for n in _OTHER_VARS
    )


def settings() -> Settings:
    """The settings, as the environment says now (read again whenever it has changed).

    Raises:
        ValueError: a variable holds a value of the wrong kind (the message names it).
    """
    global _cached
    key = _environment_key()
    hit = _cached
    if hit is not None and hit[0] == key:
        return hit[1]
    value = _read_settings()
    _cached = (key, value)
    return value


def _read_settings() -> Settings:
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    sys_s = os.environ.get("MLTRAIL_SYSTEM_METRICS_S", "").strip()
    return Settings(
        store=os.environ.get("MLTRAIL_STORE", ""),
        heartbeat_s=_env_float("MLTRAIL_HEARTBEAT_S", 5.0),
        flush_interval_s=_env_float("MLTRAIL_FLUSH_INTERVAL_S", 0.2),
        cache_dir=Path(os.environ.get("MLTRAIL_CACHE_DIR") or Path(xdg) / "mltrail"),
        allow_dirty=_env_bool("MLTRAIL_ALLOW_DIRTY", False),
        require_clean=_env_bool("MLTRAIL_REQUIRE_CLEAN", False),
        capture=_env_bool("MLTRAIL_CAPTURE", True),
        system_metrics_s=0.0
        if sys_s in ("0", "0.0")
        else _env_float("MLTRAIL_SYSTEM_METRICS_S", 10.0),
        console=_env_bool("MLTRAIL_CONSOLE", True),
        code_repos=tuple(
            p.strip()
            for p in os.environ.get("MLTRAIL_CODE_REPOS", "").split(os.pathsep)
            if p.strip()
        ),
        run_id=os.environ.get("MLTRAIL_RUN_ID", "").strip(),
        preflight_steps=_env_steps("MLTRAIL_PREFLIGHT_STEPS"),
        artifacts=os.environ.get("MLTRAIL_ARTIFACTS", "").strip(),
        finish_timeout_s=_env_seconds("MLTRAIL_FINISH_TIMEOUT_S", 60.0),
        durability=_env_choice("MLTRAIL_DURABILITY", DURABILITY_MODES, "batch"),
        finish_wait=_env_bool("MLTRAIL_FINISH_WAIT", True),
        s3_endpoint=os.environ.get("MLTRAIL_S3_ENDPOINT", "").strip(),
        pin_inputs=os.environ.get("MLTRAIL_PIN_INPUTS", "").strip(),
        spool_max_bytes=int(_env_float("MLTRAIL_SPOOL_MAX_MB", 4096.0) * (1 << 20)),
        token=os.environ.get("MLTRAIL_TOKEN", ""),
        ca_bundle=(
            os.environ.get("MLTRAIL_CA_BUNDLE") or os.environ.get("REQUESTS_CA_BUNDLE") or ""
        ).strip(),
        seed=os.environ.get("MLTRAIL_SEED", "").strip(),
        image_digest=os.environ.get("MLTRAIL_IMAGE_DIGEST", ""),
        server_config=os.environ.get(SERVER_CONFIG_ENV, ""),
        audit_key=Path(
            os.environ.get("MLTRAIL_AUDIT_KEY", "").strip()
            or Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
            / "mltrail"
            / "audit"
            / "ed25519.pem"
        ),
        audit_checkpoints=os.environ.get("MLTRAIL_AUDIT_CHECKPOINTS", "").strip(),
        audit_checkpoint_every=_env_steps("MLTRAIL_AUDIT_CHECKPOINT_EVERY") or 1000,
        openlineage_url=_openlineage_url(),
        openlineage_namespace=os.environ.get("MLTRAIL_OPENLINEAGE_NAMESPACE", "").strip()
        or "mltrail",
        openlineage_timeout_s=_env_float("MLTRAIL_OPENLINEAGE_TIMEOUT_S", 5.0),
        openlineage_api_key=os.environ.get("MLTRAIL_OPENLINEAGE_API_KEY", "").strip(),
    )


def default_store_location(cwd: Path | None = None) -> Path:
    """The embedded default: ``.mltrail/`` at the git repository root, else in ``cwd``."""
    start = (cwd or Path.cwd()).resolve()
    for parent in (start, *start.parents):
        if (parent / ".git").exists():
            return parent / DEFAULT_STORE_DIRNAME
    return start / DEFAULT_STORE_DIRNAME
