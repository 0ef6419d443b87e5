"""The console script's fast path for ``mltrail runs list``, ``runs show`` and ``metrics``.

Importing Typer (with Click and pydantic, which Typer coerces parameters through) costs more
than these commands' own work on a small store. So :func:`run_fast` parses their plain
command lines here and calls the same functions as the Typer commands
(:mod:`mltrail.cli.runs_view`, :mod:`mltrail.cli.metrics_export`), which import Rich only to
draw a table. Anything this parser does not fully understand -- ``--help``, ``--``, an
unknown option, a missing or malformed value, a number out of range, an extra argument --
returns None, and the Typer app handles the command line with all its usual messages.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ["run_fast"]

# option spelling -> (parameter, kind); kinds: "flag", "str", "int>=0", "int>=1", "format", "file"
_Spec = dict[str, tuple[str, str]]
_STORE: _Spec = {"--store": ("store", "str"), "--json": ("as_json", "flag")}
_LIST: _Spec = {
    **_STORE,
    "--project": ("project", "str"),
    "-p": ("project", "str"),
    "--filter": ("filter", "str"),
    "-f": ("filter", "str"),
    "--order-by": ("order_by", "str"),
    "-o": ("order_by", "str"),
    "--limit": ("limit", "int>=1"),
    "-n": ("limit", "int>=1"),
    "--columns": ("columns", "str"),
    "-c": ("columns", "str"),
}
_SHOW: _Spec = {
    **_STORE,
    "--keys": ("keys", "str"),
    "-k": ("keys", "str"),
    "--max-keys": ("max_keys", "int>=0"),
    "--page": ("page", "int>=1"),
}
_METRICS: _Spec = {
    "--store": ("store", "str"),
    "--format": ("fmt", "format"),
    "--output": ("output", "file"),
    "-o": ("output", "file"),
}
_MIN = {"int>=0": 0, "int>=1": 1}
_MAX_INT = 2**63 - 1


def _value(kind: str, text: str) -> Any:
    """The option's value, or None when Typer must judge it (and word the error)."""
    if kind == "str":
        return text
    if kind in _MIN:
        if not text.isascii() or not text.isdigit() or not _MIN[kind] <= int(text) <= _MAX_INT:
            return None
        return int(text)
    if kind == "format":
        from mltrail.cli.metrics_export import ExportFormat

        lowered = text.lower()
        return ExportFormat(lowered) if lowered in ("csv", "json") else None
    import os
    from pathlib import Path

    return None if not text or os.path.isdir(text) else Path(text)  # kind == "file"


def _parse(
    spec: _Spec, args: Sequence[str], positionals: tuple[int, int | None]
) -> tuple[list[str], dict[str, Any]] | None:
    """Positional arguments and options, or None when Typer must handle the command line."""
    found: list[str] = []
    opts: dict[str, Any] = {}
    it = iter(args)
    for arg in it:
        if not arg.startswith("-") or arg == "-":
            found.append(arg)
            continue
        name, eq, inline = arg.partition("=")
        if name not in spec or (eq and not name.startswith("--")):
            return None  # --help, --, combined short flags, unknown: Typer's messages
        key, kind = spec[name]
        if kind == "flag":
            if eq:
                return None
            opts[key] = True
            continue
        text = inline if eq else next(it, None)
        if text is None or (not eq and text.startswith("-") and text != "-"):
            return None
        value = _value(kind, text)
        if value is None:
            return None
        opts[key] = value
    least, most = positionals
    if len(found) < least or (most is not None and len(found) > most):
        return None
    return found, opts


def _list(args: Sequence[str]) -> Callable[[], None] | None:
    parsed = _parse(_LIST, args, (0, 0))
    if parsed is None:
        return None
    _, o = parsed

    def go() -> None:
        from mltrail.cli.runs_view import list_runs

        list_runs(
            o.get("project"),
            o.get("filter"),
            o.get("order_by"),
            o.get("limit", 50),
            o.get("as_json", False),
            o.get("store"),
            o.get("columns"),
        )

    return go


def _show(args: Sequence[str]) -> Callable[[], None] | None:
    parsed = _parse(_SHOW, args, (1, 1))
    if parsed is None:
        return None
    (run,), o = parsed

    def go() -> None:
        from mltrail.cli.runs_view import DEFAULT_MAX_KEYS, show_run

        show_run(
            run,
            o.get("as_json", False),
            o.get("store"),
            keys=o.get("keys"),
            max_keys=o.get("max_keys", DEFAULT_MAX_KEYS),
            page=o.get("page", 1),
        )

    return go


def _metrics(args: Sequence[str]) -> Callable[[], None] | None:
    parsed = _parse(_METRICS, args, (1, None))
    if parsed is None:
        return None
    (run, *keys), o = parsed

    def go() -> None:
        from mltrail.cli.metrics_export import ExportFormat, export

        export(run, keys or None, o.get("fmt", ExportFormat.CSV), o.get("output"), o.get("store"))

    return go


def _command(argv: Sequence[str]) -> Callable[[], None] | None:
    if argv[:1] == ["metrics"]:
        return _metrics(argv[1:])
    if argv[:2] == ["runs", "list"]:
        return _list(argv[2:])
    if argv[:2] == ["runs", "show"]:
        return _show(argv[2:])
    return None


def _error(message: str) -> int:
    from mltrail.cli._data_out import PlainConsole

    PlainConsole(sys.stderr).print(f"error: {' '.join(message.split())}", style="red")
    return 1


def run_fast(argv: Sequence[str]) -> int | None:
    """Run ``mltrail ARGV`` if it is a fast-path command; its exit status, else None."""
    command = _command(list(argv))
    if command is None:
        return None
    from mltrail.cli._light import CommandError
    from mltrail.errors import MltrailError

    try:
        try:
            command()
        except (MltrailError, CommandError, ValueError) as exc:
            sys.stdout.flush()
            return _error(str(exc) or type(exc).__name__)
        sys.stdout.flush()
    except KeyboardInterrupt:
        sys.stderr.write("\nAborted!\n")  # as click says it
        return 1
    except BrokenPipeError:  # the reader left (| head): exit 1 quietly, as click does
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 0
