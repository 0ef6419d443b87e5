"""How a process ends its runs: at exit, on an uncaught exception, on SIGTERM.

- ``sys.excepthook`` (chained): an uncaught exception is kept with every live run (state kind
  ``error``) before Python prints it; the runs then end ``failed`` at exit (``killed`` for
  KeyboardInterrupt).
- ``threading.excepthook`` (chained): an uncaught exception in a thread ends the runs that
  thread started, ``failed``, with the error; the process and its other runs go on.
- ``atexit``: every run still live ends ``finished``, unless an uncaught exception or a
  ``sys.exit`` with a failing code said otherwise.
- SIGTERM (when no handler is installed): live runs end ``killed``, then the default action.

The exit code of ``sys.exit(n)`` reaches no hook (Python runs ``atexit`` after it has consumed
the ``SystemExit``), so ``sys.exit`` is wrapped to remember its argument; the wrapper calls
the original at once and changes nothing else. ``raise SystemExit(n)`` without ``sys.exit``
ends a forgotten run ``finished``; ``with mltrail.init():`` sees every exit exactly.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING, NoReturn

from mltrail.entities import RunStatus
from mltrail.errors import MltrailError
from mltrail.sdk import active

if TYPE_CHECKING:
    from types import FrameType, TracebackType

__all__ = ["install"]

_installed = False
_uncaught: list[type[BaseException]] = []  # the kind of the uncaught exception, if any
_exit_code: list[object] = []  # the argument of the last sys.exit()
_original_exit = sys.exit
_previous_excepthook = sys.excepthook
_previous_thread_hook = threading.excepthook


def _finish_all(status: RunStatus, timeout: float | None) -> None:
    for run in active.live_runs():
        try:
            run.finish(status, timeout=timeout)
        except MltrailError as exc:
            print(f"mltrail: {exc}", file=sys.stderr)
    finisher = sys.modules.get("mltrail.events.finisher")
    if finisher is not None:  # runs that finished earlier and are still draining
        finisher.wait(timeout=timeout)


def _recording_exit(code: object = None) -> NoReturn:
    """``sys.exit`` that remembers its argument (see the module docstring)."""
    _exit_code[:] = [code]
    _original_exit(code)  # type: ignore[arg-type]


def _at_exit() -> None:
    code = _exit_code[0] if _exit_code else None
    kind = _uncaught[0] if _uncaught else None
    if kind is not None and issubclass(kind, KeyboardInterrupt):
        status = RunStatus.KILLED
    elif kind is not None or code not in (None, 0):
        status = RunStatus.FAILED
    else:
        status = RunStatus.FINISHED
    _finish_all(status, timeout=None)  # MLTRAIL_FINISH_TIMEOUT_S


def _excepthook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    _uncaught[:] = [kind]
    if not issubclass(kind, KeyboardInterrupt | SystemExit):
        for run in active.live_runs():
            run._record_error(exc, tb)
    _previous_excepthook(kind, exc, tb)


def _thread_excepthook(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is not None and not issubclass(args.exc_type, SystemExit):
        for run in active.thread_runs():
            run._record_error(args.exc_value, args.exc_traceback)
            try:
                run.finish(RunStatus.FAILED)
            except MltrailError as exc:
                print(f"mltrail: {exc}", file=sys.stderr)
    _previous_thread_hook(args)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    _finish_all(RunStatus.KILLED, timeout=10.0)
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def install() -> None:
    """Install the hooks (once per process; each chains to what was there before)."""
    global _installed, _previous_excepthook, _previous_thread_hook
    if _installed:
        return
    _installed = True
    atexit.register(_at_exit)
    if sys.excepthook is not _excepthook:
        _previous_excepthook = sys.excepthook
        sys.excepthook = _excepthook
    if threading.excepthook is not _thread_excepthook:
        _previous_thread_hook = threading.excepthook
        threading.excepthook = _thread_excepthook
    if sys.exit is _original_exit:
        sys.exit = _recording_exit
    if threading.current_thread() is threading.main_thread():
        try:
            if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
                signal.signal(signal.SIGTERM, _on_sigterm)
        except (ValueError, OSError):  # pragma: no cover - embedded interpreters
            pass
