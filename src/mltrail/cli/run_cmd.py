"""``mltrail run -- CMD`` and ``mltrail preflight -- CMD``: track any command as a run.

The wrapper creates the run (capturing code, environment, hardware), samples system metrics
over the whole process tree, tees the command's output into the run's console log, and ends
the run with the command's exit status. The command gets ``MLTRAIL_RUN_ID`` (and
``MLTRAIL_STORE``), so ``mltrail.init()`` inside it logs into the same run.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, BinaryIO

import typer

from mltrail import _strict_json as strict_json
from mltrail.cli._common import StoreOption, cli_errors, fail

if TYPE_CHECKING:
    from mltrail.run import Run

__all__ = ["preflight", "run_command"]

_STDERR_TAIL = 200  # stderr lines kept to find a failed command's traceback

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
    bool, typer.Option("--allow-dirty", help="Run uncommitted code, recording the diff.")
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


def _store_name(run: Run) -> str:
    """What names the run's store so that it resolves to the same spool folder."""
    return run.location.display if run.location.embedded else run.location.uri


def _status_for(code: int) -> str:
    if code == 0:
        return "finished"
    return "killed" if code < 0 else "failed"


def _launch(
    run: Run,
    command: list[str],
    extra_env: dict[str, str],
    *,
    cwd: Path | None = None,
    stdout: BinaryIO | None = None,
) -> int:
    """Run ``command`` attached to ``run``, teeing its output; its exit code (-N: signal N).

    ``cwd`` is the command's working directory (default ours); ``stdout`` is where its
    standard output is echoed (default ours: ``--json`` commands pass stderr).
    """
    from mltrail.capture.console import ConsoleTee, tee_subprocess_output

    env = {
        **os.environ,
        "MLTRAIL_RUN_ID": run.run_id,
        "MLTRAIL_STORE": _store_name(run),
        **extra_env,
    }
    try:
        child = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd
        )
    except OSError as exc:
        run.finish("failed")
        fail(f"cannot start {command[0]!r}: {exc.strerror or exc}", code=127)
    assert child.stdout is not None and child.stderr is not None
    tee = ConsoleTee(run._log_console)  # batches the child's lines into the run
    tee.start(patch_sys=False)
    stderr_tail: collections.deque[str] = collections.deque(maxlen=_STDERR_TAIL)

    def stderr_sink(lines: list[Any]) -> None:
        stderr_tail.extend(line[2] for line in lines)
        tee.submit(lines)

    pumps = [
        tee_subprocess_output(child.stdout, stdout or sys.stdout.buffer, "stdout", tee.submit),
        tee_subprocess_output(child.stderr, sys.stderr.buffer, "stderr", stderr_sink),
    ]
    forwarded = {
        s: signal.signal(s, lambda n, _f: child.send_signal(n))
        for s in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        code = child.wait()
    finally:
        for s, old in forwarded.items():
            signal.signal(s, old)
        for pump in pumps:
            pump.join(timeout=10)
        tee.stop()
    if code != 0:
        _record_child_error(run, list(stderr_tail))
    if code < 0:  # the command died by a signal: apply what it logged now, not at next open
        from mltrail.events.recovery import recover_spools
        from mltrail.store.registry import open_store

        with cli_errors():
            recover_spools(open_store(run.location), run.location.spool_dir)
    return code


def _record_child_error(run: Run, stderr_tail: list[str]) -> None:
    """Keep the Python traceback a failed command printed last, as the run's ``error``."""
    from mltrail.capture.errors import parse_traceback

    doc = parse_traceback(stderr_tail)
    if doc is not None:
        run._note_error(doc)


def _start(
    project: str,
    name: str | None,
    tags: dict[str, str],
    config: dict[str, Any] | None,
    store: str | None,
    allow_dirty: bool,
    command: list[str] | None = None,
) -> Run:
    import mltrail
    from mltrail import _session

    with _session.wrapping(command or []):
        run = mltrail.init(
            project=project,
            name=name,
            config=config,
            tags=tags,
            store=store,
            allow_dirty=allow_dirty or None,
            console=False,
        )
    run.set_tags({"mltrail.command": "wrapped"})
    if run._session is not None:  # the command's own captures must land after ours
        run._session.wait_captured(timeout=30)
    run.flush(timeout=30)  # the child's batches need the run to exist in the store
    return run


def run_command(
    command: CommandArg,
    project: ProjectOpt = "default",
    name: NameOpt = None,
    tag: TagOpt = None,
    config: ConfigOpt = None,
    allow_dirty: DirtyOpt = False,
    store: StoreOption = None,
) -> None:
    """Run a command as a tracked run: capture, console, system metrics, exit status."""
    with cli_errors():
        run = _start(
            project, name, _parse_tags(tag), _load_config(config), store, allow_dirty, command
        )
    print(f"mltrail: run {run.run_id} ({run.location.display})", file=sys.stderr)
    code = _launch(run, command, {})
    with cli_errors():
        run.finish(_status_for(code))
    raise typer.Exit(code if code >= 0 else 128 - code)


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
    started = time.time()
    with cli_errors():
        run = _start(
            project,
            None,
            {"preflight": "true"},
            _load_config(config),
            store,
            allow_dirty,
            command,
        )
    code = _launch(run, command, {"MLTRAIL_PREFLIGHT_STEPS": str(steps)})
    with cli_errors():
        run.finish(_status_for(code))
        checks = _preflight_checks(run, code, expect or [], started)
    _print_checks(run.run_id, checks)
    raise typer.Exit(0 if all(ok for _, ok, _ in checks) else 1)


def _preflight_checks(
    run: Run, code: int, expect: list[Path], started: float
) -> list[tuple[str, bool, str]]:
    import numpy as np

    from mltrail.api import Api

    api = Api(_store_name(run))
    record = api.run(run.run_id)
    state = api.state(run.run_id)
    user_keys = [k for k in record.metrics if not k.startswith("system/")]
    bad = [k for k in user_keys if not np.all(np.isfinite(api.history(run.run_id, k).values))]
    code_state = state.get("code", {})
    dirty = [r.get("root") for r in code_state.get("repos", []) if r.get("dirty")]
    checks = [
        ("command exited cleanly", code == 0, f"exit status {code}"),
        ("metrics logged", bool(user_keys), ", ".join(sorted(user_keys)) or "none"),
        (
            "metrics finite",
            bool(user_keys) and not bad,
            f"non-finite: {', '.join(bad)}" if bad else "all finite",
        ),
        (
            "config captured",
            bool(record.params or record.config),
            f"{len(record.params)} params" if record.params else "no config or params",
        ),
        (
            "code committed",
            bool(code_state.get("versioned")) and not dirty,
            "uncommitted changes in " + ", ".join(map(str, dirty))
            if dirty
            else ("clean" if code_state.get("versioned") else "no code version"),
        ),
    ]
    for path in expect:
        ok = path.exists() and path.stat().st_mtime >= started - 1
        checks.append((f"wrote {path}", ok, "written" if ok else "missing or not updated"))
    return checks


def _print_checks(run_id: str, checks: list[tuple[str, bool, str]]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"pre-flight of run {run_id}", title_justify="left")
    table.add_column("check")
    table.add_column("result")
    table.add_column("detail")
    for what, ok, detail in checks:
        table.add_row(
            Text(what),
            Text("pass" if ok else "FAIL", style="green" if ok else "bold red"),
            Text(detail),
        )
    Console(stderr=True).print(table)
