"""Track any command as a run: ``mltrail run``, ``mltrail preflight``, and every run that
:func:`~mltrail.repro.reproduce` and :func:`~mltrail.repro.verify_determinism` start.

Three steps, each usable on its own:

1. :func:`start_wrapped` creates the run through the SDK's explicit entry point
   (:func:`mltrail.sdk.init.start_run`), recording the command, its working directory and
   the code of that folder's repository, and waits until the capture is in the store.
2. :func:`run_attached` runs the command with ``MLTRAIL_RUN_ID`` and ``MLTRAIL_STORE`` (so
   ``mltrail.init()`` inside it logs into the same run), tees its output into the run's
   console log, forwards SIGINT/SIGTERM, and returns its exit code.
3. The caller ends the run with :func:`status_for` of that code; :func:`launch` does all
   three.

The environment and the working directory are passed explicitly (``env=``, ``cwd=``): this
process's ``os.environ`` and current directory are never changed.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from mltrail.errors import InvalidArgumentError, LaunchError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from mltrail.repro.wrap import Observer
    from mltrail.sdk.run import Run
    from mltrail.store.registry import StoreLocation

__all__ = [
    "LaunchError",
    "Launched",
    "command_env",
    "launch",
    "location_name",
    "resolve_store",
    "run_attached",
    "start_wrapped",
    "status_for",
    "store_name",
]

#: stderr lines kept to find a failed command's traceback
STDERR_TAIL = 200
#: tags every wrapped run carries
WRAPPED_TAGS = {"mltrail.command": "wrapped"}


@dataclass(frozen=True, slots=True)
class Launched:
    """A command that ran as a tracked run and ended.

    Attributes:
        run_id: The run.
        store: What names its store (a folder or a URI), for :class:`mltrail.Api`.
        exit_code: The command's exit code; ``-N`` when signal N ended it.
    """

    run_id: str
    store: str
    exit_code: int

    @property
    def status(self) -> str:
        """The run's final status: ``finished``, ``failed`` or ``killed``."""
        return status_for(self.exit_code)

    @property
    def process_exit_code(self) -> int:
        """The exit status a shell reports for the command (``128 + N`` for signal N)."""
        return self.exit_code if self.exit_code >= 0 else 128 - self.exit_code


def status_for(code: int) -> str:
    """The run status for a command's exit code (``-N``: killed by signal N)."""
    if code == 0:
        return "finished"
    return "killed" if code < 0 else "failed"


def location_name(location: StoreLocation) -> str:
    """What names a store so that it resolves to the same spool folder (folder or URI)."""
    return location.display if location.embedded else location.uri


def store_name(run: Run) -> str:
    """What names ``run``'s store so that it resolves to the same spool folder."""
    return location_name(run.location)


def resolve_store(
    store: str | os.PathLike[str] | None,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> str:
    """The store a wrapper uses: ``store``, else ``MLTRAIL_STORE``, else ``.mltrail/`` at
    the git root of ``cwd`` (or in ``cwd``).

    Args:
        store: A folder or URI; relative folders are taken from ``cwd``.
        env: The environment whose ``MLTRAIL_STORE`` counts (None: this process's).
        cwd: The folder the command runs in (None: the current directory).

    Returns:
        A folder or URI for :func:`mltrail.store.registry.resolve_location`.
    """
    from mltrail.settings import default_store_location

    raw = os.fspath(store) if store is not None else ""
    if not raw:
        raw = (os.environ if env is None else env).get("MLTRAIL_STORE", "")
    if not raw:
        return str(default_store_location(None if cwd is None else Path(cwd)))
    if cwd is not None and "://" not in raw and not os.path.isabs(os.path.expanduser(raw)):
        return str(Path(cwd) / raw)
    return raw


def command_env(
    run: Run, env: Mapping[str, str] | None = None, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of a command attached to ``run``.

    Args:
        run: The wrapper's run.
        env: The base environment (None: a copy of this process's).
        extra: Set last (``MLTRAIL_PREFLIGHT_STEPS``, ...).

    Returns:
        ``env`` with ``MLTRAIL_RUN_ID`` and ``MLTRAIL_STORE`` naming ``run``, then ``extra``.
    """
    return {
        **(os.environ if env is None else env),
        "MLTRAIL_RUN_ID": run.run_id,
        "MLTRAIL_STORE": store_name(run),
        **(extra or {}),
    }


def start_wrapped(
    command: Sequence[str],
    *,
    project: str = "default",
    name: str | None = None,
    tags: Mapping[str, str] | None = None,
    config: Mapping[str, Any] | None = None,
    store: str | os.PathLike[str] | None = None,
    allow_dirty: bool | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    require_clean: bool | None = None,
) -> Run:
    """Step 1: create the run that ``command`` will log into, and wait for its capture.

    Args:
        command: The command it will run (recorded as the run's invocation).
        project: The run's project.
        name: Its display name (default ``run-YYYYmmdd-HHMMSS``).
        tags: Its tags (``mltrail.command: wrapped`` is added).
        config: Config recorded as params.
        store: Where the run goes (see :func:`resolve_store`).
        allow_dirty: Start from uncommitted code even where ``require_clean`` is set (None:
            ``MLTRAIL_ALLOW_DIRTY``).
        env: The command's environment (only its ``MLTRAIL_STORE`` is read here).
        cwd: The command's working directory; its repository is the run's code (None: the
            current directory).
        environ: The environment the command will run with, as the run's capture records it
            (numerics variables, seeds' switches; None: ``env``, else this process's).
        require_clean: Refuse uncommitted code (None: ``MLTRAIL_REQUIRE_CLEAN``, or
            ``require_clean`` in ``.mltrail/config.toml``).

    Returns:
        The live run, active in this process. Run the command with :func:`run_attached`,
        then ``run.finish(status_for(code))``.

    Raises:
        DirtyWorkingTreeError: Uncommitted code, ``require_clean`` and no ``allow_dirty``.
        InvalidArgumentError: A bad argument or setting.
    """
    from mltrail.sdk.init import resolve_options, start_run
    from mltrail.sdk.session import wrapped_invocation

    folder = Path.cwd() if cwd is None else Path(cwd).resolve()
    opts = resolve_options(
        project=project,
        name=name,
        config=dict(config) if config is not None else None,
        tags=dict(tags or {}),
        store=resolve_store(store, env, folder),
        allow_dirty=allow_dirty or None,
        require_clean=require_clean or None,
        console=False,
        invocation=wrapped_invocation(list(command), folder),
        entry=folder,
        attach=False,
        environ=environ if environ is not None else env,
    )
    run = start_run(opts)
    run.set_tags(WRAPPED_TAGS)
    run.recorder.wait_captured(timeout=30)  # the command's own captures must land after ours
    run.flush(timeout=30)  # the child's batches need the run to exist in the store
    return run


def run_attached(
    run: Run,
    command: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    extra_env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    stdout: BinaryIO | None = None,
    stderr: BinaryIO | None = None,
    on_spawn: Callable[[subprocess.Popen[bytes]], None] | None = None,
    die_with_parent: bool = False,
    on_output: Callable[[list[Any]], None] | None = None,
) -> int:
    """Step 2: run ``command`` attached to ``run``, teeing its output into the run.

    Args:
        run: The run from :func:`start_wrapped`.
        command: The program and its arguments.
        env: Its environment (None: this process's), see :func:`command_env`.
        extra_env: Variables set on top.
        cwd: Its working directory (None: ours).
        stdout: Where its standard output is echoed (None: our stdout).
        stderr: Where its standard error is echoed (None: our stderr).
        on_spawn: Called with the child process once it has started (a sweep agent watches
            and may stop it).
        die_with_parent: Linux: the child gets SIGKILL if this thread's process dies
            (``PR_SET_PDEATHSIG``), so a killed sweep agent leaves no trial running.
        on_output: Also given each batch of the command's output lines (console metrics).

    Returns:
        Its exit code; ``-N`` when signal N ended it. A failed Python command's last
        traceback is recorded as the run's ``error``.

    Raises:
        LaunchError: The command could not be started; the run was ended ``failed``.
    """
    if not command:
        raise InvalidArgumentError("no command to run")
    argv = [os.fspath(a) for a in command]
    try:
        child = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=command_env(run, env, extra_env),
            cwd=cwd,
            preexec_fn=_die_with_parent if die_with_parent and sys.platform == "linux" else None,
        )
    except OSError as exc:
        run.finish("failed")
        raise LaunchError(f"cannot start {argv[0]!r}: {exc.strerror or exc}") from None
    if on_spawn is not None:
        on_spawn(child)
    tail = _wait_teeing(run, child, stdout, stderr, on_output)
    code = child.returncode
    if code != 0:
        _record_child_error(run, tail)
    if code < 0:  # the command died by a signal: apply what it logged now, not at next open
        _recover(run)
    return code


def launch(
    command: Sequence[str],
    *,
    project: str = "default",
    name: str | None = None,
    tags: Mapping[str, str] | None = None,
    config: Mapping[str, Any] | None = None,
    store: str | os.PathLike[str] | None = None,
    allow_dirty: bool | None = None,
    env: Mapping[str, str] | None = None,
    extra_env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    stdout: BinaryIO | None = None,
    stderr: BinaryIO | None = None,
    on_start: Callable[[Run], None] | None = None,
    require_clean: bool | None = None,
    metrics: Sequence[str] = (),
) -> Launched:
    """Run ``command`` as a tracked run and end the run with its exit status.

    The arguments are those of :func:`start_wrapped` and :func:`run_attached`; ``on_start``
    is called with the live run before the command starts; ``require_clean`` refuses
    uncommitted code (see :func:`start_wrapped`). ``metrics`` are ``NAME=REGEX`` console
    metrics (default: ``[run] metrics`` of ``.mltrail/config.toml``). The files the command
    writes under ``cwd`` and the config a Python command parses (argparse, Hydra) are
    recorded too (:class:`~mltrail.repro.wrap.Observer`).

    Returns:
        The :class:`Launched` run.

    Raises:
        LaunchError: The command could not be started (its run ended ``failed``).
        DirtyWorkingTreeError: Uncommitted code, ``require_clean`` and no ``allow_dirty``.

    Example:
        >>> from mltrail.repro import launch
        >>> done = launch(["python", "train.py"], project="demo", cwd="repo")  # doctest: +SKIP
        >>> done.status, done.run_id  # doctest: +SKIP
        ('finished', '...')
    """
    _check_startable(command, {**(os.environ if env is None else env), **(extra_env or {})}, cwd)
    run = start_wrapped(
        command,
        project=project,
        name=name,
        tags=tags,
        config=config,
        store=store,
        allow_dirty=allow_dirty,
        env=env,
        cwd=cwd,
        environ={**(os.environ if env is None else env), **(extra_env or {})},
        require_clean=require_clean,
    )
    if on_start is not None:
        on_start(run)
    observer = _observer(run, command, cwd, metrics, {**(env or os.environ), **(extra_env or {})})
    code = run_attached(
        run,
        command,
        env=env,
        extra_env={**(extra_env or {}), **(observer.env if observer else {})},
        cwd=cwd,
        stdout=stdout,
        stderr=stderr,
        on_output=observer.on_output if observer else None,
    )
    finish_observer(observer)
    run.finish(status_for(code))
    return Launched(run.run_id, store_name(run), code)


def _check_startable(
    command: Sequence[str], env: Mapping[str, str], cwd: str | os.PathLike[str] | None
) -> None:
    """Refuse a command that cannot start before any run is recorded for it.

    Raises:
        LaunchError: No command, or its program is not on ``PATH`` (or not an executable
            file where a path is given).
    """
    import shutil

    if not command:
        raise InvalidArgumentError("no command to run")
    program = os.fspath(command[0])
    if os.sep in program or (os.altsep and os.altsep in program):
        path = Path(cwd or ".") / program
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise LaunchError(f"cannot start {program!r}: not an executable file")
    elif shutil.which(program, path=env.get("PATH")) is None:
        raise LaunchError(f"cannot start {program!r}: command not found")


def _observer(
    run: Run,
    command: Sequence[str],
    cwd: str | os.PathLike[str] | None,
    metrics: Sequence[str],
    env: Mapping[str, str],
) -> Observer | None:
    """The observer of a wrapped command (console metrics, files, config); None when it
    cannot start (it must never stop the command)."""
    from mltrail.capture.git import find_repo
    from mltrail.capture.policy import run_policy
    from mltrail.repro.wrap import Observer

    folder = Path.cwd() if cwd is None else Path(cwd)
    if not metrics:
        metrics = run_policy(find_repo(folder)).metrics
    return Observer(run, command, folder, metrics, env)


def finish_observer(observer: Observer | None) -> None:
    """Record what the observer saw; a failure is a warning, never the run's end."""
    if observer is None:
        return
    try:
        observer.finish()
    except Exception as exc:  # recording outputs must never fail a run
        print(f"mltrail: recording the command's outputs failed: {exc}", file=sys.stderr)


# -- the steps of run_attached ----------------------------------------------------------------


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def _wait_teeing(
    run: Run,
    child: subprocess.Popen[bytes],
    stdout: BinaryIO | None,
    stderr: BinaryIO | None,
    on_output: Callable[[list[Any]], None] | None = None,
) -> list[str]:
    """Echo and record the child's output until it exits; the last lines of its stderr."""
    from mltrail.capture.console import ConsoleTee, tee_subprocess_output

    assert child.stdout is not None and child.stderr is not None
    tee = ConsoleTee(run.recorder.console)  # batches the child's lines into the run
    tee.start(patch_sys=False)
    stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL)

    def stdout_sink(lines: list[Any]) -> None:
        tee.submit(lines)
        if on_output is not None:
            on_output(lines)

    def stderr_sink(lines: list[Any]) -> None:
        stderr_tail.extend(line[2] for line in lines)
        stdout_sink(lines)

    pumps = [
        tee_subprocess_output(child.stdout, stdout or sys.stdout.buffer, "stdout", stdout_sink),
        tee_subprocess_output(child.stderr, stderr or sys.stderr.buffer, "stderr", stderr_sink),
    ]
    forwarded = _forward_signals(child)
    try:
        child.wait()
    finally:
        for s, old in forwarded.items():
            signal.signal(s, old)
        for pump in pumps:
            pump.join(timeout=10)
        tee.stop()
        for pump, pipe in zip(pumps, (child.stdout, child.stderr), strict=True):
            if not pump.is_alive():  # a pipe a grandchild still holds stays with its pump
                pipe.close()
    return list(stderr_tail)


def _forward_signals(child: subprocess.Popen[bytes]) -> dict[int, Any]:
    """Pass SIGINT and SIGTERM on to the child (the main thread only can set handlers)."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {
        s: signal.signal(s, lambda n, _f: child.send_signal(n))
        for s in (signal.SIGINT, signal.SIGTERM)
    }


def _record_child_error(run: Run, stderr_tail: list[str]) -> None:
    """Keep the Python traceback a failed command printed last, as the run's ``error``."""
    from mltrail.capture.errors import parse_traceback

    doc = parse_traceback(stderr_tail)
    if doc is not None:
        run.recorder.error(doc)


def _recover(run: Run) -> None:
    """Apply the spools a killed command left, so its points are in the store now."""
    from mltrail.events.recovery import recover_spools
    from mltrail.store.registry import open_store

    recover_spools(open_store(run.location), run.location.spool_dir)
