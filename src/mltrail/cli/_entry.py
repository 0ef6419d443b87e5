"""The ``mltrail`` console script: a fast path for the hot commands, else Typer.

(``runs list``, ``runs show`` and ``metrics`` take theirs in :mod:`mltrail.cli._fast`.)

Building the Typer app costs more than a no-op ``mltrail data status`` over 10,000 files
should take in total (Typer, pydantic — Typer coerces parameters through pydantic
``TypeAdapter`` — and Rich alone import in ~0.2 s on a small machine). So the console script
first tries :func:`run_fast`: ``mltrail data add|status|checkout|push|pull`` with only the
plain options below are parsed here and run with plain-text output (ANSI colours on a
terminal). Anything else — ``--help``, an unknown or malformed option, another command —
returns None and the full Typer app handles it, so every message and error of the CLI stays
Typer's. Both paths print through :mod:`mltrail.cli._data_out`, so their output is the same.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ["main", "run_fast"]

# command -> {option spelling: (parameter, takes a value, value if a flag)}
_COMMON: dict[str, tuple[str, bool, Any]] = {"--json": ("as_json", False, True)}
_QUIET: dict[str, tuple[str, bool, Any]] = {
    "-q": ("quiet", False, True),
    "--quiet": ("quiet", False, True),
}
_FORCE: dict[str, tuple[str, bool, Any]] = {
    "-f": ("force", False, True),
    "--force": ("force", False, True),
}
_REMOTE: dict[str, tuple[str, bool, Any]] = {
    "-r": ("remote", True, None),
    "--remote": ("remote", True, None),
    "-j": ("jobs", True, None),
    "--jobs": ("jobs", True, None),
}
_OPTIONS: dict[str, dict[str, tuple[str, bool, Any]]] = {
    "add": {**_COMMON, **_QUIET},
    "status": {**_COMMON, "--dvc": ("dvc", False, True), "--no-dvc": ("dvc", False, False)},
    "checkout": {**_COMMON, **_QUIET, **_FORCE},
    "push": {**_COMMON, **_QUIET, **_REMOTE},
    "pull": {**_COMMON, **_QUIET, **_FORCE, **_REMOTE},
}
_MAX_JOBS = 256


def _parse(command: str, args: Sequence[str]) -> tuple[list[Path], dict[str, Any]] | None:
    """Paths and options, or None when Typer must handle the command line."""
    spec = _OPTIONS[command]
    paths: list[Path] = []
    opts: dict[str, Any] = {}
    it = iter(args)
    for arg in it:
        if not arg.startswith("-") or arg == "-":
            if not arg:
                return None
            paths.append(Path(arg))
            continue
        name, eq, inline = arg.partition("=")
        if name not in spec or (eq and not name.startswith("--")):
            return None  # --help, --, combined short flags, unknown: Typer's messages
        key, takes_value, flag_value = spec[name]
        if takes_value:
            value = inline if eq else next(it, None)
            if value is None or (not eq and value.startswith("-")):
                return None
            opts[key] = value
        elif eq:
            return None
        else:
            opts[key] = flag_value
    if "jobs" in opts:
        text = opts["jobs"]
        if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= _MAX_JOBS:
            return None  # Typer names the option and the range
        opts["jobs"] = int(text)
    if command == "add" and not paths:
        return None
    return paths, opts


def _error(message: str) -> int:
    from mltrail.cli._data_out import PlainConsole

    PlainConsole(sys.stderr).print(f"error: {' '.join(message.split())}", style="red")
    return 1


def run_fast(argv: Sequence[str]) -> int | None:
    """Run ``mltrail ARGV`` if it is a fast-path data command; its exit status, else None."""
    if len(argv) < 2 or argv[0] != "data" or argv[1] not in _OPTIONS:
        return None
    command = argv[1]
    parsed = _parse(command, argv[2:])
    if parsed is None:
        return None
    paths, opts = parsed
    from mltrail.errors import MltrailError

    try:
        _COMMANDS[command](paths, opts)
    except (MltrailError, ValueError) as exc:
        sys.stdout.flush()
        return _error(str(exc) or type(exc).__name__)
    except KeyboardInterrupt:
        sys.stderr.write("\nAborted!\n")  # as click says it
        return 1
    sys.stdout.flush()
    return 0


def _json(obj: Any) -> None:
    import json

    from mltrail.entities import json_safe

    sys.stdout.write(json.dumps(json_safe(obj), allow_nan=False, indent=2) + "\n")


def _out() -> Any:
    from mltrail.cli._data_out import PlainConsole

    return PlainConsole(sys.stdout)


def _progress(opts: dict[str, Any]) -> bool:
    return not opts.get("quiet", False) and not opts.get("as_json", False)


def _add(paths: list[Path], opts: dict[str, Any]) -> None:
    from mltrail.cli._data_out import print_add
    from mltrail.data import ops
    from mltrail.data.repo import DataRepo

    results = ops.add(DataRepo.discover(), paths, progress=_progress(opts))
    if opts.get("as_json"):
        _json([r.to_dict() for r in results])
    else:
        print_add(_out(), results)


def _status(paths: list[Path], opts: dict[str, Any]) -> None:
    from mltrail.cli._data_out import print_status
    from mltrail.data import status as data_status
    from mltrail.data.repo import DataRepo

    report = data_status.status(DataRepo.discover(), paths or None, dvc=opts.get("dvc", True))
    if opts.get("as_json"):
        _json(report.to_dict())
    else:
        print_status(_out(), report)


def _checkout(paths: list[Path], opts: dict[str, Any]) -> None:
    from mltrail.cli._data_out import print_checkout
    from mltrail.data import ops
    from mltrail.data.repo import DataRepo

    result = ops.checkout(
        DataRepo.discover(),
        paths or None,
        force=opts.get("force", False),
        progress=_progress(opts),
    )
    if opts.get("as_json"):
        _json(result.to_dict())
    else:
        print_checkout(_out(), result)


def _push(paths: list[Path], opts: dict[str, Any]) -> None:
    from mltrail.cli._data_out import print_push
    from mltrail.data import remotes
    from mltrail.data.repo import DataRepo

    result = remotes.push(
        DataRepo.discover(),
        paths or None,
        remote=opts.get("remote"),
        jobs=opts.get("jobs", 8),
        progress=_progress(opts),
    )
    if opts.get("as_json"):
        _json(result.to_dict())
    else:
        print_push(_out(), result)


def _pull(paths: list[Path], opts: dict[str, Any]) -> None:
    from mltrail.cli._data_out import print_pull
    from mltrail.data import remotes
    from mltrail.data.repo import DataRepo

    result = remotes.pull(
        DataRepo.discover(),
        paths or None,
        remote=opts.get("remote"),
        jobs=opts.get("jobs", 8),
        force=opts.get("force", False),
        progress=_progress(opts),
    )
    if opts.get("as_json"):
        _json(result.to_dict())
    else:
        print_pull(_out(), result)


_COMMANDS: dict[str, Callable[[list[Path], dict[str, Any]], None]] = {
    "add": _add,
    "status": _status,
    "checkout": _checkout,
    "push": _push,
    "pull": _pull,
}


def main() -> None:
    """The console script: the fast path when it applies, else the Typer app."""
    argv = sys.argv[1:]
    if argv[:1] in (["runs"], ["metrics"]):
        from mltrail.cli._fast import run_fast as run_fast_runs

        code = run_fast_runs(argv)
    else:
        code = run_fast(argv)
    if code is not None:
        sys.exit(code)
    from mltrail.cli.main import main as typer_main

    typer_main()
