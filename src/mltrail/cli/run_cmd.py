"""``mltrail run -- CMD`` and ``mltrail preflight -- CMD``: track any command as a run.

The wrapper creates the run (capturing code, environment, hardware), samples system metrics
over the whole process tree, tees the command's output into the run's console log, and ends
the run with the command's exit status. The command gets ``MLTRAIL_RUN_ID`` (and
``MLTRAIL_STORE``), so ``mltrail.init()`` inside it logs into the same run.

The work is done by :mod:`mltrail.repro.launcher` and :mod:`mltrail.repro.preflight`; this
module parses the arguments and prints.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mltrail import _strict_json as strict_json
from mltrail.cli._common import StoreOption, cli_errors, fail

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mltrail.repro.preflight import Check
    from mltrail.sdk.run import Run

__all__ = ["launch_errors", "preflight", "run_command"]

CommandArg = Annotated[list[str], typer.Argument(help="The command to run, after `--`.")]
ProjectOpt = Annotated[str, typer.Option("--project", "-p", help="Project of the run.")]
NameOpt = Annotated[str | None, typer.Option("--name", help="Display name of the run.")]
TagOpt = Annotated[
    list[str] | None, typer.Option("--tag", "-t", metavar="K=V", help="A tag (repeatable).")
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", metavar="FILE", help="Config recorded as params (JSON/TOML/YAML)."),
]
DirtyOpt = Annotated[
    bool,
    typer.Option("--allow-dirty", help="Run uncommitted code even where require_clean is set."),
]
MetricOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--metric",
        "-m",
        metavar="NAME=REGEX",
        help="Turn numbers the command prints into a series (repeatable): the regex's group "
        "is the value, e.g. 'loss=loss ([0-9.e+-]+)'. Default: [run] metrics in "
        ".mltrail/config.toml.",
    ),
]
CleanOpt = Annotated[
    bool,
    typer.Option(
        "--require-clean",
        help="Refuse uncommitted code (modified tracked files, untracked source files); "
        "also MLTRAIL_REQUIRE_CLEAN=1 or require_clean = true in .mltrail/config.toml.",
    ),
]


def _parse_tags(raw: list[str] | None) -> dict[str, str]:
    tags: dict[str, str] = {}
    for item in raw or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            fail(f"--tag {item!r}: expected KEY=VALUE")
        tags[key] = value
    return tags


def _load_config(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"--config {path}: {exc.strerror or exc}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":  # strict: a repeated key or 1e999 is an error, not a guess
            data = strict_json.loads(text, "config", nonfinite=True)
        elif suffix == ".toml":
            import tomllib

            data = tomllib.loads(text)
        elif suffix in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError:
                fail(f"--config {path}: reading YAML needs PyYAML (pip install pyyaml)")
            data = yaml.safe_load(text)
        else:
            fail(f"--config {path}: use a .json, .toml or .yaml file")
    except ValueError as exc:  # JSON and TOML decode errors
        fail(f"--config {path}: {exc}")
    except Exception as exc:  # YAML errors
        fail(f"--config {path}: {type(exc).__name__}: {exc}")
    if not isinstance(data, dict):
        fail(f"--config {path}: the top level must be a mapping")
    return data


@contextlib.contextmanager
def launch_errors() -> Iterator[None]:
    """:func:`~mltrail.cli._common.cli_errors`, and a command that cannot start exits 127
    (as in a shell)."""
    from mltrail.repro.launcher import LaunchError

    with cli_errors():
        try:
            yield
        except LaunchError as exc:
            fail(str(exc), code=LaunchError.exit_code)


def _announce(run: Run) -> None:
    print(f"mltrail: run {run.run_id} ({run.location.display})", file=sys.stderr)


def run_command(
    command: CommandArg,
    project: ProjectOpt = "default",
    name: NameOpt = None,
    tag: TagOpt = None,
    config: ConfigOpt = None,
    allow_dirty: DirtyOpt = False,
    store: StoreOption = None,
    require_clean: CleanOpt = False,
    metric: MetricOpt = None,
) -> None:
    """Run a command as a tracked run: capture, console, system metrics, exit status.

    Uncommitted code is recorded with the run (the diff, untracked source files), never
    refused unless the project requires committed code.
    """
    from mltrail.repro.launcher import launch

    with launch_errors():
        done = launch(
            command,
            project=project,
            name=name,
            tags=_parse_tags(tag),
            config=_load_config(config),
            store=store,
            allow_dirty=allow_dirty,
            on_start=_announce,
            require_clean=require_clean or None,
            metrics=metric or (),
        )
    raise typer.Exit(done.process_exit_code)


def preflight(
    command: CommandArg,
    steps: Annotated[int, typer.Option("--steps", min=1, help="Logged steps to run.")] = 2,
    expect: Annotated[
        list[Path] | None,
        typer.Option("--expect", metavar="PATH", help="A file the command must write."),
    ] = None,
    project: ProjectOpt = "default",
    config: ConfigOpt = None,
    allow_dirty: DirtyOpt = False,
    store: StoreOption = None,
) -> None:
    """Run a command for a few logged steps and check it is fit to train for real."""
    from mltrail.repro.preflight import preflight as run_preflight

    with launch_errors():
        result = run_preflight(
            command,
            steps=steps,
            expect=expect or [],
            project=project,
            config=_load_config(config),
            store=store,
            allow_dirty=allow_dirty,
        )
    _print_checks(result.launched.run_id, result.checks)
    raise typer.Exit(0 if result.ok else 1)


def _print_checks(run_id: str, checks: tuple[Check, ...]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"pre-flight of run {run_id}", title_justify="left")
    table.add_column("check")
    table.add_column("result")
    table.add_column("detail")
    for check in checks:
        table.add_row(
            Text(check.name),
            Text("pass" if check.ok else "FAIL", style="green" if check.ok else "bold red"),
            Text(check.detail),
        )
    Console(stderr=True).print(table)
