"""Module-level functions over the active run, and ``init()`` itself.

``init()`` stays off the store: it creates the spool, writes the header and the creation
event, and starts the writer thread, which opens the store (and imports its driver) in the
background. Only ``resume=`` opens the store synchronously, to read the run it continues.
"""

from __future__ import annotations

import atexit
import dataclasses
import functools
import getpass
import os
import secrets
import signal
import socket
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, NoReturn

from mltrail import _session
from mltrail import _validation as v
from mltrail.entities import RunStatus
from mltrail.errors import InvalidArgumentError, MltrailError
from mltrail.events import codec
from mltrail.events.spool import SPOOL_SUFFIX, SpoolAppender
from mltrail.run import Run, _check_params
from mltrail.settings import settings
from mltrail.store.registry import StoreLocation, ignore_in_git, resolve_location

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path
    from types import FrameType, TracebackType

    from mltrail.store.artifacts import ArtifactVersion

__all__ = [
    "active_run",
    "finish",
    "init",
    "log",
    "log_artifact",
    "log_params",
    "log_reference",
    "seed_everything",
    "set_tags",
    "use_artifact",
]

_active: list[Run] = []
_state_lock = threading.Lock()
_hooks_installed = False
_ID_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def new_run_id() -> str:
    """A short (12 characters), URL-safe, random run id (62 bits)."""
    n = secrets.randbits(62)
    out = []
    for _ in range(12):
        n, r = divmod(n, 36)
        out.append(_ID_ALPHABET[r])
    return "".join(out)


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
    """Start (or resume) a tracked run and make it the active run.

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
        allow_dirty: start from uncommitted code, recording the diff and tagging the run
            ``mltrail.dirty``; default ``MLTRAIL_ALLOW_DIRTY``, else refuse.
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
        DirtyWorkingTreeError: the code has uncommitted changes and ``allow_dirty`` is off.
        InvalidArgumentError: a bad argument (the message names it).

    Returns:
        The :class:`Run`; use it as a context manager or call ``finish()``.

    Example:
        >>> import mltrail
        >>> with mltrail.init(project="demo", config={"lr": 0.01}) as run:  # doctest: +SKIP
        ...     for step in range(10):
        ...         mltrail.log({"loss": 1 / (step + 1)})
    """
    _preload()
    cfg = settings()
    beat = cfg.heartbeat_s if heartbeat_s is None else float(heartbeat_s)
    if not beat > 0:
        raise InvalidArgumentError(f"heartbeat_s must be > 0, got {heartbeat_s!r}")
    location = resolve_location(store)
    config_dict = _config_to_dict(config)
    params = _check_params(config_dict)
    tag_values = {} if tags is None else v.check_tags(tags)
    opts = _Options(
        config=config,
        allow_dirty=cfg.allow_dirty if allow_dirty is None else bool(allow_dirty),
        code_repos=tuple(os.fspath(p) for p in code_repos) if code_repos else cfg.code_repos,
        capture=cfg.capture if capture is None else bool(capture),
        system_metrics_s=cfg.system_metrics_s if system_metrics_s is None else system_metrics_s,
        console=cfg.console if console is None else bool(console),
        preflight_steps=cfg.preflight_steps,
        artifacts=os.fspath(artifacts) if artifacts is not None else None,
    )
    if resume is None and cfg.run_id:
        return _attach(location, cfg.run_id, params, tag_values, beat, cfg.flush_interval_s, opts)
    if resume is not None:
        run = _resume(location, resume, project, params, tag_values, beat, cfg.flush_interval_s)
        return _begin_session(run, opts, dirty=None)
    entry = _session.entry_dir()
    repo, dirty = _session.check_code(entry, opts.allow_dirty) if opts.capture else (None, [])
    if dirty:
        tag_values.setdefault("mltrail.dirty", "true")
    project = v.check_key("default" if project is None else project, "project")
    now_ms = time.time_ns() // 1_000_000
    run_name = name if name is not None else time.strftime("run-%Y%m%d-%H%M%S", time.localtime())
    run_name = v.check_key(run_name, "run name")
    run_id = new_run_id()
    spool = _open_spool(location, run_id)
    body = {
        "project": project,
        "name": run_name,
        "created_ms": now_ms,
        "heartbeat_s": beat,
        "user": _user(),
        "host": _host(),
        "command": " ".join([sys.executable, *sys.argv]),
        "config": config_dict,
        "params": params,
        "tags": tag_values,
    }
    spool.append(codec.frame(codec.encode_json(codec.KIND_RUN, body)))
    run = Run(
        run_id=run_id,
        project=project,
        name=run_name,
        location=location,
        spool=spool,
        config=config_dict,
        params=params,
    )
    return _begin_session(_start(run, location, beat, cfg.flush_interval_s), opts, dirty)


@dataclasses.dataclass(frozen=True, slots=True)
class _Options:
    config: Any
    allow_dirty: bool
    code_repos: tuple[str, ...]
    capture: bool
    system_metrics_s: float
    console: bool
    preflight_steps: int | None
    artifacts: str | None = None


def _begin_session(run: Run, opts: _Options, dirty: list[str] | None) -> Run:
    """Start capture, sampling and the console tee for ``run``."""
    from mltrail._session import CaptureSession

    if opts.system_metrics_s < 0:
        raise InvalidArgumentError(f"system_metrics_s must be >= 0, got {opts.system_metrics_s}")
    run._stop_after = opts.preflight_steps
    run.artifacts_location = opts.artifacts
    session = CaptureSession(
        run,
        config=opts.config,
        entry=_session.entry_dir(),
        code_repos=opts.code_repos,
        capture_state=opts.capture,
        system_metrics_s=opts.system_metrics_s,
        console=opts.console and not run.attached,
        kinds=_session.ATTACHED_KINDS if run.attached else _session.ALL_KINDS,
    )
    run._session = session
    session.start()
    return run


def _attach(
    location: StoreLocation,
    run_id: str,
    params: dict[str, Any],
    tags: dict[str, str],
    beat: float,
    flush_s: float,
    opts: _Options,
) -> Run:
    """Log into the run a ``mltrail run`` wrapper created (``MLTRAIL_RUN_ID``).

    The wrapper captured the environment and tees the console; this process adds its config
    and metrics, and leaves the final status to the wrapper.
    """
    spool = _open_spool(location, run_id, attached=True)
    run = Run(
        run_id=run_id,
        project="",
        name="",
        location=location,
        spool=spool,
        config=_config_to_dict(opts.config),
        params={},
    )
    run.attached = True
    _start(run, location, beat, flush_s)
    if params:
        run.log_params(params)
    if tags:
        run.set_tags(tags)
    attached_opts = dataclasses.replace(opts, system_metrics_s=0.0, console=False)
    return _begin_session(run, attached_opts, dirty=None)


def _preload() -> None:
    """Import the light modules a run needs before its threads start importing heavy ones.

    Threads that import SQLAlchemy and NumPy hold the import lock and the GIL for tens of
    milliseconds; a module the caller's thread imports meanwhile waits for them.
    """
    import mltrail._session
    import mltrail.capture.console
    import mltrail.capture.system
    import mltrail.events.writer  # noqa: F401


def _resume(
    location: StoreLocation,
    prefix: str,
    project: str | None,
    params: dict[str, Any],
    tags: dict[str, str],
    beat: float,
    flush_s: float,
) -> Run:
    from mltrail.store.registry import open_store

    store = open_store(location)
    record = store.get_run(store.resolve_run_id(prefix))
    if project is not None and v.check_key(project, "project") != record.project:
        raise InvalidArgumentError(
            f"resume: run {record.run_id} is in project {record.project!r}, not "
            f"{project!r}; pass project={record.project!r} or leave project out"
        )
    next_step = 1 + max((m.last_step for m in record.metrics.values()), default=-1)
    spool = _open_spool(location, record.run_id)
    run = Run(
        run_id=record.run_id,
        project=record.project,
        name=record.name,
        location=location,
        spool=spool,
        config=record.config,
        params=record.params,
        next_step=next_step,
    )
    body = {"timestamp_ms": time.time_ns() // 1_000_000}
    spool.append(codec.frame(codec.encode_json(codec.KIND_RESUME, body)))
    started = _start(run, location, beat, flush_s)
    if params:
        run.log_params(params)
    if tags:
        run.set_tags(tags)
    return started


def _open_spool(location: StoreLocation, run_id: str, attached: bool = False) -> SpoolAppender:
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
    return SpoolAppender(location.spool_dir / f"{source}{SPOOL_SUFFIX}", header=frame)


def _start(run: Run, location: StoreLocation, beat: float, flush_s: float) -> Run:
    from mltrail.events.writer import Writer

    writer = Writer(location, run.spool_path, run._spool_size, run._heartbeat, beat, flush_s)
    run._attach(writer)
    with _state_lock:
        _active.append(run)
    _install_hooks()
    return run


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


# -- the active run ------------------------------------------------------------------------


def active_run() -> Run | None:
    """The most recently started run that has not finished, if any."""
    with _state_lock:
        return _active[-1] if _active else None


def _require() -> Run:
    run = active_run()
    if run is None:
        raise MltrailError("no active run: call mltrail.init() first")
    return run


def _forget(run: Run) -> None:
    with _state_lock:
        if run in _active:
            _active.remove(run)


def log(data: Mapping[str, Any], step: int | None = None) -> None:
    """Log metrics to the active run (see :meth:`Run.log`)."""
    run = _active[-1] if _active else _require()
    run.log(data, step)


def log_params(params: Mapping[str, Any]) -> None:
    """Log params to the active run (see :meth:`Run.log_params`)."""
    _require().log_params(params)


def set_tags(tags: Mapping[str, Any]) -> None:
    """Set tags on the active run (see :meth:`Run.set_tags`)."""
    _require().set_tags(tags)


def log_artifact(
    path: str | os.PathLike[str],
    name: str | None = None,
    type: str = "dataset",
    aliases: Sequence[str] | str | None = None,
    metadata: Mapping[str, Any] | None = None,
    *,
    reference: bool = False,
) -> ArtifactVersion:
    """Log a file or directory as an artifact of the active run (see :meth:`Run.log_artifact`)."""
    return _require().log_artifact(path, name, type, aliases, metadata, reference=reference)


def log_reference(
    target: str | os.PathLike[str],
    name: str | None = None,
    type: str = "dataset",
    aliases: Sequence[str] | str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> ArtifactVersion:
    """Record data by digest without copying it (see :meth:`Run.log_reference`)."""
    return _require().log_reference(target, name, type, aliases, metadata)


def use_artifact(ref: str, root: str | os.PathLike[str] | None = None) -> Path:
    """Fetch an artifact and record it as an input of the active run (see
    :meth:`Run.use_artifact`)."""
    return _require().use_artifact(ref, root)


def seed_everything(seed: int | None = None, deterministic: bool = False) -> dict[str, Any]:
    """Seed ``random``, NumPy, torch (+CUDA), TensorFlow and JAX, and record what was set.

    Args:
        seed: the seed; default ``MLTRAIL_SEED`` (``mltrail verify-determinism --seed``),
            else a fresh random seed, which is recorded.
        deterministic: also switch on deterministic kernels (torch deterministic
            algorithms, cuDNN flags, ``CUBLAS_WORKSPACE_CONFIG``, ``TF_DETERMINISTIC_OPS``).

    Returns:
        Exactly what was set: ``{"seed", "seeded", "deterministic", "switches"}``.
    """
    from mltrail.capture import seeds

    result = seeds.seed_everything(seed, deterministic)
    run = active_run()
    if run is not None:
        got = seeds.capture_seeds()
        run._log_state(got.kind, got.data, got.blobs)
    return result


def finish(status: RunStatus | str = RunStatus.FINISHED) -> None:
    """Finish the active run (see :meth:`Run.finish`); no-op without one."""
    run = active_run()
    if run is not None:
        run.finish(status)


# -- process exit --------------------------------------------------------------------------


def _finish_all(status: RunStatus, timeout: float | None) -> None:
    with _state_lock:
        runs = list(reversed(_active))
    for run in runs:
        try:
            run.finish(status, timeout=timeout)
        except MltrailError as exc:
            print(f"mltrail: {exc}", file=sys.stderr)


#: the argument of the last ``sys.exit()`` call, for the atexit hook (it cannot see the code)
_exit_code: list[object] = []


def _recording_exit(code: object = None) -> NoReturn:
    """``sys.exit`` that remembers its argument, so a forgotten run ends with the right status."""
    _exit_code[:] = [code]
    _original_exit(code)  # type: ignore[arg-type]


_original_exit = sys.exit


def _at_exit() -> None:
    last = getattr(sys, "last_type", None)
    code = _exit_code[0] if _exit_code else None
    if last is not None and issubclass(last, KeyboardInterrupt):
        status = RunStatus.KILLED
    elif last is not None or code not in (None, 0):
        status = RunStatus.FAILED  # an uncaught exception, or sys.exit(non-zero or message)
    else:
        status = RunStatus.FINISHED
    _finish_all(status, timeout=None)  # MLTRAIL_FINISH_TIMEOUT_S


def _record_uncaught(
    kind: type[BaseException], exc: BaseException, tb: TracebackType | None
) -> None:
    """``sys.excepthook``: keep the uncaught exception with every active run, then chain."""
    if not issubclass(kind, KeyboardInterrupt | SystemExit):
        with _state_lock:
            runs = list(_active)
        for run in runs:
            run._record_error(exc, tb)
    _previous_excepthook(kind, exc, tb)


_previous_excepthook = sys.excepthook


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    _finish_all(RunStatus.KILLED, timeout=10.0)
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _install_hooks() -> None:
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    atexit.register(_at_exit)
    global _previous_excepthook
    if sys.excepthook is not _record_uncaught:
        _previous_excepthook = sys.excepthook
        sys.excepthook = _record_uncaught
    if sys.exit is _original_exit:
        sys.exit = _recording_exit
    if threading.current_thread() is threading.main_thread():
        try:
            if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
                signal.signal(signal.SIGTERM, _on_sigterm)
        except (ValueError, OSError):  # pragma: no cover - embedded interpreters
            pass
