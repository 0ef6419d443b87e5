"""What a run records about itself beyond what the user logs.

At ``init()``: the commit-before-train guard (synchronous: it may refuse the run), then, on a
background thread so that ``init()`` returns at once, the capture of code, environment,
hardware, config and seeds; a system-metrics sampler; the console tee. At ``finish()`` the
session stops in the reverse order and flushes, before the run's status is written.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltrail._serial import SerialWorker
from mltrail.errors import DirtyWorkingTreeError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from mltrail._serial import Job
    from mltrail.capture.base import Captured
    from mltrail.capture.console import ConsoleTee
    from mltrail.capture.system import SharedSampler
    from mltrail.sdk.recorder import Recorder

__all__ = [
    "ALL_KINDS",
    "ATTACHED_KINDS",
    "CaptureSession",
    "check_code",
    "entry_dir",
    "own_invocation",
    "wrapped_invocation",
]

ALL_KINDS = ("code", "data", "environment", "hardware", "config", "seeds", "invocation")
#: what a process started by ``mltrail run`` adds to the wrapper's capture
#: (its environment and hardware too: its interpreter may not be the wrapper's, and only it
#: knows which frameworks it imported)
ATTACHED_KINDS = ("config", "seeds", "environment", "hardware")

log = logging.getLogger("mltrail")
_MAX_LISTED = 20
_console_owner: ConsoleTee | None = None
_console_lock = threading.Lock()


def own_invocation() -> dict[str, Any]:
    """How this run's program was started, for ``mltrail reproduce`` (kind ``invocation``).

    ``{"argv": [...], "cwd", "executable", "wrapped": false}``: the interpreter's full command
    line (``sys.orig_argv``, values of secret-looking options redacted) and working directory.
    ``mltrail run`` records the command it wraps instead (:func:`wrapped_invocation`).
    """
    from mltrail.capture.config import redact_args

    argv = list(getattr(sys, "orig_argv", None) or [sys.executable, *sys.argv])
    try:
        cwd: str | None = os.getcwd()
    except OSError:  # the folder was removed under the process
        cwd = None
    return {"argv": redact_args(argv), "cwd": cwd, "executable": sys.executable, "wrapped": False}


def wrapped_invocation(command: Sequence[str], cwd: str | os.PathLike[str]) -> dict[str, Any]:
    """The invocation of a command ``mltrail run`` starts (``wrapped: true``)."""
    from mltrail.capture.config import redact_args

    return {
        "argv": redact_args(list(command)),
        "cwd": os.fspath(cwd),
        "executable": sys.executable,
        "wrapped": True,
    }


def entry_dir() -> Path:
    """The folder of the entry-point script, else the current directory.

    Console scripts installed in the Python environment (``mltrail run``, ``pytest``) and
    ``python -m mltrail`` are not the user's code: for them the current directory names it.
    """
    argv0 = sys.argv[0] if sys.argv else ""
    if argv0 and argv0 not in ("-c", "-m"):
        path = Path(argv0)
        if path.is_file():
            resolved = path.resolve()
            prefixes = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix)}
            prefixes.add(Path(__file__).resolve().parent.parent)  # python -m mltrail
            if not any(resolved.is_relative_to(p) for p in prefixes):
                return resolved.parent
    return Path.cwd()


def _git_root(path: Path) -> Path | None:
    """The nearest folder holding ``.git`` (a directory, or a file in worktrees/submodules).

    A walk of ``stat`` calls instead of ``git rev-parse``: it keeps a subprocess off the
    ``init()`` path. The full capture later asks git itself.
    """
    for folder in (path, *path.parents):
        if (folder / ".git").exists():
            return folder
    return None


def check_code(
    entry: Path, allow_dirty: bool, require_clean: bool = False, *, quiet: bool = False
) -> tuple[Path | None, list[str]]:
    """The code check at the start of a run.

    By default it never refuses: uncommitted code (the diff of tracked files, untracked
    source files) is recorded with the run, and one line on stderr says so. Outputs
    (framework output folders, files tracked runs wrote, large files and binaries) are not
    code and never make a run dirty. With ``require_clean`` (``MLTRAIL_REQUIRE_CLEAN=1``,
    ``require_clean = true`` in ``.mltrail/config.toml``, ``mltrail run --require-clean``)
    uncommitted code refuses the run unless ``allow_dirty`` overrides it.

    Args:
        entry: The folder whose repository is the run's code.
        allow_dirty: Start anyway where ``require_clean`` would refuse.
        require_clean: Refuse uncommitted code.
        quiet: Print nothing.

    Returns:
        ``(repository root or None outside git, uncommitted code files)``.

    Raises:
        DirtyWorkingTreeError: uncommitted code, ``require_clean`` set and ``allow_dirty``
            off (the message names the files and the two ways out).
    """
    from mltrail.capture import git
    from mltrail.capture.policy import run_policy

    root = _git_root(entry)
    if root is None:
        return None, []
    root = git.find_repo(root) or root  # the form git reports (symlinks resolved), cached
    changed, untracked = git.code_changes(root)
    dirty = [*changed, *untracked.sources]
    policy = run_policy(root)
    if policy.error is not None and not quiet:
        print(f"mltrail: {policy.error} cannot be read: no run policy applied", file=sys.stderr)
    if dirty and (require_clean or policy.require_clean) and not allow_dirty:
        source = "MLTRAIL_REQUIRE_CLEAN / --require-clean"
        if policy.require_clean:
            source = f"require_clean = true in {root / '.mltrail' / 'config.toml'}"
        listed = "\n".join(f"  {f}" for f in dirty[:_MAX_LISTED])
        more = f"\n  ... and {len(dirty) - _MAX_LISTED} more" if len(dirty) > _MAX_LISTED else ""
        raise DirtyWorkingTreeError(
            f"the code in {root} has uncommitted changes and this project requires "
            f"committed code ({source}):\n{listed}{more}\n"
            "Either commit them (or add them to .gitignore), or run this once anyway with "
            "the code recorded: `mltrail run --allow-dirty`, mltrail.init(allow_dirty=True) "
            "or MLTRAIL_ALLOW_DIRTY=1.",
            dirty,
        )
    if not quiet and (dirty or untracked.outputs):
        print(_recorded_line(changed, untracked), file=sys.stderr)
    return root, dirty


def _recorded_line(changed: list[str], untracked: Any) -> str:
    """One line: what of the uncommitted code is recorded, and which outputs are left out."""
    parts: list[str] = []
    if changed:
        parts.append(f"the diff of {len(changed)} modified file(s)")
    if untracked.sources:
        parts.append(f"{len(untracked.sources)} untracked source file(s)")
    line = "mltrail: uncommitted code recorded with the run: " + " and ".join(parts)
    if not parts:
        line = "mltrail: the code is committed"
    if untracked.outputs:
        shown = ", ".join(untracked.outputs[:3]) + (" ..." if len(untracked.outputs) > 3 else "")
        from mltrail.capture.untracked import OUTPUT_HINT

        line += f"; {len(untracked.outputs)} output(s) not counted as code ({shown}): {OUTPUT_HINT}"
    return line


#: the state capture of each new run, in turn, on one thread per process
_worker = SerialWorker("mltrail-capture", "state capture failed")


class CaptureSession:
    """Captures state for one run and samples while it lives.

    Args:
        recorder: the run to record into.
        config: the user's config object as given to ``init()``.
        entry: folder of the entry point (its repository is the code of the run).
        code_repos: more repositories to record.
        capture_state: capture code/environment/hardware/config/seeds.
        system_metrics_s: sampling interval; 0 turns the sampler off.
        console: tee stdout/stderr into the run's console log.
        kinds: the state kinds to capture (default all); a process attached to a
            ``mltrail run`` wrapper captures only what the wrapper cannot see.
        invocation: the command to record (kind ``invocation``); default this process's.
        environ: the environment the run's program executes with (``mltrail run`` and
            ``reproduce`` give the command's); default this process's.
    """

    def __init__(
        self,
        recorder: Recorder,
        *,
        config: Any,
        entry: Path,
        code_repos: Sequence[str],
        capture_state: bool,
        system_metrics_s: float,
        console: bool,
        kinds: Sequence[str] = ALL_KINDS,
        invocation: dict[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._environ = environ
        self.recorder = recorder
        self._kinds = set(kinds)
        self._config = config
        self._entry = entry
        self._code_repos = [Path(p) for p in code_repos]
        self._capture_state = capture_state
        self._system_s = system_metrics_s
        self._console = console
        self._job: Job | None = None
        self._late = False  # the run ended without waiting for the capture any longer
        self._snapshot = threading.Event()  # code, data, seeds, config captured
        self._sampler: tuple[SharedSampler, int] | None = None
        self._tee: ConsoleTee | None = None
        # taken now, in the caller's thread (the working directory may change later)
        wants = "invocation" in self._kinds
        self._invocation = (invocation or own_invocation()) if wants else None

    def start(self) -> None:
        """Start capturing in the background; returns at once."""
        if self._capture_state:
            self._job = _worker.submit(self._capture_all)
        if self._system_s > 0:
            from mltrail.capture.system import shared_sampler

            shared = shared_sampler(self._system_s)  # one thread for every run of the process
            self._sampler = (shared, shared.subscribe(self.recorder.system))
        if self._console:
            self._start_console()

    def _start_console(self) -> None:
        global _console_owner
        from mltrail.capture.console import ConsoleTee

        with _console_lock:
            if _console_owner is not None:
                return  # another live run of this process already keeps the console
            self._tee = _console_owner = ConsoleTee(self.recorder.console)
        self._tee.start()

    def wait_captured(self, timeout: float = 30.0) -> bool:
        """Wait until the state capture has been handed to the run (True), or time out.

        ``mltrail run`` waits before starting its command, so that what the command's own
        process records of the same kinds lands later and wins.
        """
        job = self._job
        return job is None or job.done.wait(timeout)

    def finish_snapshot(self, timeout: float = 30.0) -> None:
        """Wait for the part of the capture a later change could falsify (code, data,
        seeds, config: the next run's edit or seeding must not land in this run); the
        environment and hardware may complete after the run's end."""
        job = self._job
        if job is not None and not self._snapshot.wait(timeout):
            log.warning(
                "mltrail: code and data capture of run %s did not finish in %.0f s",
                self.recorder.run_id,
                timeout,
            )

    def stop(self, timeout: float = 30.0) -> None:
        """Stop sampling and teeing and wait for the capture, flushing into the run."""
        self.stop_live()
        self.finish_capture(timeout)

    def stop_live(self) -> None:
        """Stop sampling and teeing (what they hold goes into the run); returns at once."""
        global _console_owner
        if self._tee is not None:
            self._tee.stop()
            with _console_lock:
                if _console_owner is self._tee:
                    _console_owner = None
            self._tee = None
        if self._sampler is not None:
            shared, sub = self._sampler
            shared.unsubscribe(sub)  # at once: the shared thread is never joined
            self._sampler = None

    def finish_capture(self, timeout: float = 30.0) -> None:
        """Wait (up to ``timeout`` s) for the state capture to be handed to the run."""
        job, self._job = self._job, None
        if job is not None and not job.done.wait(timeout):
            job.cancelled = True  # not begun yet: never begins; begun: writes nothing more
            self._late = True
            log.warning(
                "mltrail: state capture of run %s did not finish in %.0f s",
                self.recorder.run_id,
                timeout,
            )

    def _capture_config(self) -> Captured:
        """The config; a wrapper (``mltrail run``) records the command it wraps as the argv,
        never its own command line."""
        from mltrail.capture import config

        got = config.capture_config(self._config)
        if self._invocation and self._invocation.get("wrapped"):
            got.data["argv"] = list(self._invocation.get("argv") or [])
        return got

    def _capture_all(self) -> None:
        from mltrail.capture import data, environment, git, hardware, seeds
        from mltrail.capture.base import Captured

        steps: list[tuple[str, Callable[[], Captured]]] = [
            # what the process or its files may change once the run has ended (the next
            # run's edit, its seed_everything) first: finish() waits for these
            ("code", lambda: git.capture_code(self._entry, self._code_repos, reuse_status=True)),
            ("data", lambda: data.capture_data(git.find_repo(self._entry))),
            ("seeds", lambda: seeds.capture_seeds(self._environ)),
            ("config", self._capture_config),
            ("invocation", lambda: Captured("invocation", self._invocation or {})),
            # then what stays put, completing after finish() has returned
            (
                "environment",
                lambda: environment.capture_environment(git.find_repo(self._entry), self._environ),
            ),
            ("hardware", hardware.capture_hardware),
        ]
        try:
            self._capture_steps(steps)
        finally:
            self._snapshot.set()

    def _capture_steps(self, steps: list[tuple[str, Callable[[], Captured]]]) -> None:
        for kind, fn in steps:
            if kind == "environment":
                self._snapshot.set()
            if kind not in self._kinds:
                continue
            if self._late:
                return
            try:
                got = fn()
            except Exception as exc:  # capture must never break a run
                log.warning("mltrail: capturing %s failed: %s", kind, exc)
                self.recorder.state(kind, {"error": f"{type(exc).__name__}: {exc}"})
                continue
            self.recorder.state(got.kind, got.data, got.blobs)
