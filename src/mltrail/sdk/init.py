"""``init()``: start, resume or attach to a run, as named steps.

1. **Resolve options** (:class:`RunOptions`): arguments first, then settings
   (``MLTRAIL_*``), then defaults; every value checked here.
2. **Guard**: the commit-before-train check (the one synchronous probe; it may refuse).
3. **Open the spool** and append the creation event.
4. **Start the writer**, which opens the store (and imports its driver) in the background.
5. **Start capture**: state, system sampler and console tee, off the calling thread.

``init()`` stays off the store; only ``resume=`` opens it synchronously, to read the run it
continues. Components that start runs themselves (``mltrail run``, ``mltrail reproduce``)
build a :class:`RunOptions` and call :func:`start_run`, passing everything explicitly (the
command to record, the code's folder, console and capture choices) instead of through
globals or the environment.
"""

from __future__ import annotations

import dataclasses
import functools
import getpass
import os
import secrets
import socket
import sys
import time
from typing import TYPE_CHECKING, Any

from mltrail import _validation as v
from mltrail.errors import InvalidArgumentError
from mltrail.events import codec
from mltrail.events.spool import SPOOL_SUFFIX, SpoolAppender
from mltrail.ids import new_run_id
from mltrail.lineage_export import live as lineage
from mltrail.sdk import active, hooks, session
from mltrail.sdk.run import Run, _check_params
from mltrail.settings import settings
from mltrail.store.registry import StoreLocation, ignore_in_git, resolve_location

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

    from mltrail.store.base import TrackingStore

__all__ = ["RunOptions", "init", "start_run"]


@dataclasses.dataclass(frozen=True, slots=True)
class RunOptions:
    """Everything that decides how a run starts, resolved (see :func:`init` for meanings).

    Attributes:
        attach_to: the id of a run a ``mltrail run`` wrapper created: log into it.
        invocation: what the run records as its command (``None``: this process's).
        entry: the folder whose repository is the run's code.
        preflight_steps: end the process cleanly after this many steps.
        environ: the environment the run's program executes with, as captured (``None``:
            this process's).
    """

    location: StoreLocation
    project: str | None
    name: str | None
    config: Any
    config_dict: dict[str, Any]
    params: dict[str, Any]
    tags: dict[str, str]
    resume: str | None
    attach_to: str | None
    allow_dirty: bool
    code_repos: tuple[str, ...]
    capture: bool
    system_metrics_s: float
    console: bool
    heartbeat_s: float
    flush_interval_s: float
    artifacts: str | None
    preflight_steps: int | None
    invocation: dict[str, Any] | None
    entry: Path
    environ: Mapping[str, str] | None = None
    durability: str = "batch"
    require_clean: bool = False


def init(
    project: str | None = None,
    name: str | None = None,
    config: Any = None,
    tags: Mapping[str, Any] | None = None,
    store: str | os.PathLike[str] | None = None,
    resume: str | None = None,
    *,
    allow_dirty: bool | None = None,
    code_repos: Sequence[str | os.PathLike[str]] | None = None,
    capture: bool | None = None,
    system_metrics_s: float | None = None,
    console: bool | None = None,
    heartbeat_s: float | None = None,
    artifacts: str | os.PathLike[str] | None = None,
) -> Run:
    """Start (or resume) a tracked run and make it the calling thread's active run.

    Args:
        project: project name (created on first use); default ``"default"``. With
            ``resume``, the resumed run's project (another project is an error).
        name: a display name; default ``run-YYYYmmdd-HHMMSS``.
        config: hyperparameters: a mapping (nested is fine), a dataclass or an
            ``argparse.Namespace``. Stored as given and flattened into params (``a.b``).
        tags: initial tags.
        store: a directory, ``sqlite:///file.db`` or ``postgresql://...``; default
            ``MLTRAIL_STORE``, else ``.mltrail/`` at the git root (or the current directory).
        resume: the id (or unambiguous prefix) of a run to continue; it must belong to
            ``project`` when that is given.
        allow_dirty: start from uncommitted code even where ``require_clean`` is set
            (``MLTRAIL_REQUIRE_CLEAN``, ``.mltrail/config.toml``); default
            ``MLTRAIL_ALLOW_DIRTY``. Uncommitted code is always recorded (the diff and the
            untracked source files) and the run tagged ``mltrail.dirty``.
        code_repos: more git repositories to record besides the entry point's
            (default ``MLTRAIL_CODE_REPOS``).
        capture: capture code, environment, hardware, config and seeds (default on,
            ``MLTRAIL_CAPTURE``); the capture runs off the calling thread.
        system_metrics_s: seconds between ``system/...`` samples; 0 turns them off
            (default ``MLTRAIL_SYSTEM_METRICS_S`` or 10).
        console: keep stdout/stderr with the run (default on, ``MLTRAIL_CONSOLE``).
        heartbeat_s: seconds between heartbeats (default ``MLTRAIL_HEARTBEAT_S`` or 5).
        artifacts: where artifact bytes are kept: a directory or an fsspec URL
            (``s3://bucket/prefix``); default ``MLTRAIL_ARTIFACTS``, else the embedded store's
            ``objects/`` or ``$MLTRAIL_CACHE_DIR/objects``.

    Raises:
        DirtyWorkingTreeError: the code has uncommitted changes, ``require_clean`` is set
            and ``allow_dirty`` is off.
        InvalidArgumentError: a bad argument (the message names it).

    Returns:
        The :class:`Run`; use it as a context manager or call ``finish()``.

    Example:
        >>> import mltrail
        >>> with mltrail.init(project="demo", config={"lr": 0.01}) as run:  # doctest: +SKIP
        ...     for step in range(10):
        ...         mltrail.log({"loss": 1 / (step + 1)})
    """
    opts = resolve_options(
        project=project,
        name=name,
        config=config,
        tags=tags,
        store=store,
        resume=resume,
        allow_dirty=allow_dirty,
        code_repos=code_repos,
        capture=capture,
        system_metrics_s=system_metrics_s,
        console=console,
        heartbeat_s=heartbeat_s,
        artifacts=artifacts,
    )
    return start_run(opts)


def resolve_options(
    *,
    project: str | None = None,
    name: str | None = None,
    config: Any = None,
    tags: Mapping[str, Any] | None = None,
    store: str | os.PathLike[str] | None = None,
    resume: str | None = None,
    allow_dirty: bool | None = None,
    code_repos: Sequence[str | os.PathLike[str]] | None = None,
    capture: bool | None = None,
    system_metrics_s: float | None = None,
    console: bool | None = None,
    heartbeat_s: float | None = None,
    artifacts: str | os.PathLike[str] | None = None,
    invocation: dict[str, Any] | None = None,
    entry: Path | None = None,
    attach: bool = True,
    environ: Mapping[str, str] | None = None,
    require_clean: bool | None = None,
) -> RunOptions:
    """Step 1: arguments, else settings, else defaults; every value checked.

    ``attach=False`` ignores ``MLTRAIL_RUN_ID`` (a wrapper creating its own run).

    Raises:
        InvalidArgumentError: a bad argument or setting (the message names it).
    """
    cfg = settings()
    beat = cfg.heartbeat_s if heartbeat_s is None else float(heartbeat_s)
    if not beat > 0:
        raise InvalidArgumentError(f"heartbeat_s must be > 0, got {heartbeat_s!r}")
    sys_s = cfg.system_metrics_s if system_metrics_s is None else float(system_metrics_s)
    if sys_s < 0:
        raise InvalidArgumentError(f"system_metrics_s must be >= 0, got {system_metrics_s}")
    config_dict = _config_to_dict(config)
    return RunOptions(
        location=resolve_location(store),
        project=project,
        name=name,
        config=config,
        config_dict=config_dict,
        params=_check_params(config_dict),
        tags={} if tags is None else v.check_tags(tags),
        resume=resume,
        attach_to=(cfg.run_id or None) if attach and resume is None else None,
        allow_dirty=cfg.allow_dirty if allow_dirty is None else bool(allow_dirty),
        require_clean=cfg.require_clean if require_clean is None else bool(require_clean),
        code_repos=tuple(os.fspath(p) for p in code_repos) if code_repos else cfg.code_repos,
        capture=cfg.capture if capture is None else bool(capture),
        system_metrics_s=sys_s,
        console=cfg.console if console is None else bool(console),
        heartbeat_s=beat,
        flush_interval_s=cfg.flush_interval_s,
        durability=cfg.durability,
        artifacts=os.fspath(artifacts) if artifacts is not None else None,
        preflight_steps=cfg.preflight_steps,
        invocation=invocation,
        entry=entry if entry is not None else session.entry_dir(),
        environ=dict(environ) if environ is not None else None,
    )


def start_run(opts: RunOptions) -> Run:
    """Steps 2 to 5 for resolved options: a new, resumed or attached run, active and live."""
    _preload()
    if opts.attach_to is not None:
        return _attach(opts)
    if opts.resume is not None:
        return _start_capture(_resume(opts), opts)
    dirty = _guard(opts)
    run = _create(opts, dirty)
    _start_writer(run, opts)
    return _start_capture(run, opts)


# -- the steps ------------------------------------------------------------------------------


def _guard(opts: RunOptions) -> list[str]:
    """Step 2: the commit-before-train guard; the dirty files it allowed."""
    if not opts.capture:
        return []
    _, dirty = session.check_code(opts.entry, opts.allow_dirty, opts.require_clean)
    return dirty


def _create(opts: RunOptions, dirty: list[str]) -> Run:
    """Step 3: a new run's spool, with its creation event."""
    tags = dict(opts.tags)
    if dirty:
        tags.setdefault("mltrail.dirty", "true")
    project = v.check_key("default" if opts.project is None else opts.project, "project")
    name = opts.name or time.strftime("run-%Y%m%d-%H%M%S", time.localtime())
    name = v.check_key(name, "run name")
    from mltrail.sdk.conventions import check_run

    check_run(project, name, tags, opts.entry)  # the team's naming and tagging rules
    run_id = new_run_id()
    spool = _open_spool(opts.location, run_id, durability=opts.durability)
    created_ms = time.time_ns() // 1_000_000
    body = {
        "project": project,
        "name": name,
        "created_ms": created_ms,
        "heartbeat_s": opts.heartbeat_s,
        "user": _user(),
        "host": _host(),
        "command": " ".join([sys.executable, *sys.argv]),
        "config": opts.config_dict,
        "params": opts.params,
        "tags": tags,
    }
    spool.append(codec.frame(codec.encode_json(codec.KIND_RUN, body)))
    if lineage.enabled():  # OpenLineage START, sent in the background
        lineage.run_started(
            run_id=run_id,
            project=project,
            name=name,
            created_ms=created_ms,
            tags=tags,
            invocation=opts.invocation or session.own_invocation(),
            user=_user(),
            host=_host(),
        )
    return Run(
        run_id=run_id,
        project=project,
        name=name,
        location=opts.location,
        spool=spool,
        config=opts.config_dict,
        params=opts.params,
    )


def _start_writer(run: Run, opts: RunOptions) -> Run:
    """Step 4: the writer thread, and the run becomes active and live."""
    from mltrail.events.writer import Writer

    rec = run.recorder
    writer = Writer(
        functools.partial(_open_and_recover, opts.location, run.spool_path.name),
        opts.location.display,
        run.spool_path,
        rec.spool_size,
        rec.heartbeat,
        opts.heartbeat_s,
        opts.flush_interval_s,
        sync=rec.spool_sync if opts.durability == "batch" else None,
        release=rec.spool_release,
    )
    run._writer = writer
    # a server's refusal (a token, a conflict) must reach the caller of finish(), and `call`
    # promises the store on return: those finish in the foreground
    run.finish_waits = opts.durability == "call" or opts.location.scheme in ("http", "https")
    writer.start()
    active.push(run)
    hooks.install()
    return run


def _start_capture(run: Run, opts: RunOptions) -> Run:
    """Step 5: capture, sampling and the console tee, in the background."""
    run._stop_after = opts.preflight_steps
    run.artifacts_location = opts.artifacts
    capture = session.CaptureSession(
        run.recorder,
        config=opts.config,
        entry=opts.entry,
        code_repos=opts.code_repos,
        capture_state=opts.capture,
        system_metrics_s=opts.system_metrics_s,
        console=opts.console and not run.attached,
        kinds=session.ATTACHED_KINDS if run.attached else session.ALL_KINDS,
        invocation=opts.invocation,
        environ=opts.environ,
    )
    run._session = capture
    capture.start()
    return run


def _open_and_recover(location: StoreLocation, own_spool: str) -> TrackingStore:
    """The writer's store opener: open the store, apply spools orphaned by dead processes."""
    from mltrail.events.recovery import recover_spools, recovery_due
    from mltrail.store.registry import open_store

    store = open_store(location)
    if recovery_due(location.uri):
        recover_spools(store, location.spool_dir, exclude={own_spool})
    return store


# -- attach and resume ----------------------------------------------------------------------


def _attach(opts: RunOptions) -> Run:
    """Log into the run a ``mltrail run`` wrapper created (``MLTRAIL_RUN_ID``).

    The wrapper captured the environment and tees the console; this process adds its config
    and metrics, and leaves the final status to the wrapper.
    """
    assert opts.attach_to is not None
    spool = _open_spool(opts.location, opts.attach_to, attached=True, durability=opts.durability)
    run = Run(
        run_id=opts.attach_to,
        project=opts.project or "",
        name="",
        location=opts.location,
        spool=spool,
        config=opts.config_dict,
        params={},
    )
    run.attached = True
    if opts.project is not None:  # the wrapper made the run in its project: this one wins
        project = v.check_key(opts.project, "project")
        spool.append(codec.frame(codec.encode_json(codec.KIND_PROJECT, {"project": project})))
        run.project = project
    _start_writer(run, opts)
    if opts.params:
        run.log_params(opts.params)
    if opts.tags:
        run.set_tags(opts.tags)
    quiet = dataclasses.replace(opts, system_metrics_s=0.0, console=False)
    return _start_capture(run, quiet)


def _resume(opts: RunOptions) -> Run:
    from mltrail.store.registry import open_store

    assert opts.resume is not None
    store = open_store(opts.location)
    record = store.get_run(store.resolve_run_id(opts.resume))
    if opts.project is not None and v.check_key(opts.project, "project") != record.project:
        raise InvalidArgumentError(
            f"resume: run {record.run_id} is in project {record.project!r}, not "
            f"{opts.project!r}; pass project={record.project!r} or leave project out"
        )
    next_step = 1 + max((m.last_step for m in record.metrics.values()), default=-1)
    spool = _open_spool(opts.location, record.run_id, durability=opts.durability)
    run = Run(
        run_id=record.run_id,
        project=record.project,
        name=record.name,
        location=opts.location,
        spool=spool,
        config=record.config,
        params=record.params,
        next_step=next_step,
    )
    resumed_ms = time.time_ns() // 1_000_000
    spool.append(codec.frame(codec.encode_json(codec.KIND_RESUME, {"timestamp_ms": resumed_ms})))
    _start_writer(run, opts)
    if lineage.enabled():  # OpenLineage: the run starts again; its end follows at finish
        lineage.run_started(
            run_id=record.run_id,
            project=record.project,
            name=record.name,
            created_ms=record.created_ms,
            tags={**record.tags, **opts.tags},
            invocation=opts.invocation or session.own_invocation(),
            user=_user(),
            host=_host(),
            started_ms=resumed_ms,
        )
    if opts.params:
        run.log_params(opts.params)
    if opts.tags:
        run.set_tags(opts.tags)
    return run


# -- helpers -------------------------------------------------------------------------------


def _open_spool(
    location: StoreLocation, run_id: str, attached: bool = False, durability: str = "batch"
) -> SpoolAppender:
    ignore_in_git(location)  # before anything appears in an embedded store's folder
    source = f"{run_id}.{secrets.token_hex(4)}"
    header = {
        "run_id": run_id,
        # an attached process does not own the run's status: its death is not the run's
        "attached": attached,
        "pid": os.getpid(),
        "host": _host(),
        "proc_start": _process_start(os.getpid()),
        "store": location.display,
    }
    frame = codec.frame(codec.encode_json(codec.KIND_HEADER, header))
    # the header is in the file before it appears under its name (see SpoolAppender)
    return SpoolAppender(
        location.spool_dir / f"{source}{SPOOL_SUFFIX}",
        header=frame,
        sync_each_append=durability == "call",
    )


def _preload() -> None:
    """Import the light modules a run needs before its threads start importing heavy ones.

    Threads that import SQLAlchemy and NumPy hold the import lock and the GIL for tens of
    milliseconds; a module the caller's thread imports meanwhile waits for them.
    """
    import mltrail.capture.console
    import mltrail.capture.system
    import mltrail.events.writer  # noqa: F401


@functools.cache
def _host() -> str:
    return socket.gethostname()


@functools.cache
def _process_start(pid: int) -> str:
    """The kernel's start time of this process (with the pid, it names the process)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return ""


@functools.cache
def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""


def _config_to_dict(config: Any) -> dict[str, Any]:
    if config is None:
        return {}
    from mltrail.capture.config import config_to_dict

    return config_to_dict(config)
