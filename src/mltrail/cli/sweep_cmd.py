"""``mltrail sweep create|show|stop|resume`` and ``mltrail agent SWEEP``.

The work is done by :mod:`mltrail.sweeps`; this module parses the arguments and prints.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from pathlib import Path  # noqa: TC003 (Typer reads annotations at runtime)
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mltrail.cli._common import JsonOption, StoreOption, cli_errors, fail

if TYPE_CHECKING:
    from mltrail.sweeps.trials import TrialResult

__all__ = ["agent", "app"]

app = typer.Typer(help="Hyperparameter sweeps on Optuna: every trial a tracked run.")

SweepArg = Annotated[str, typer.Argument(help="The sweep id (`mltrail sweep create` prints it).")]


@app.command("create")
def create(
    spec_file: Annotated[Path, typer.Argument(metavar="SWEEP.YAML", help="The sweep spec.")],
    smoke: Annotated[
        bool,
        typer.Option(
            "--smoke",
            help="Run a tiny budget now (a few trials of a few steps); exit 1 if a trial "
            "fails or its metric is NaN.",
        ),
    ] = False,
    smoke_trials: Annotated[int, typer.Option(min=1, help="Trials of a smoke sweep.")] = 2,
    smoke_steps: Annotated[int, typer.Option(min=1, help="Steps per smoke trial.")] = 3,
    store: StoreOption = None,
) -> None:
    """Create a sweep from SWEEP.YAML and print its id (the spec, git SHA and seed are
    stored with it)."""
    from mltrail.sweeps.spec import load_spec
    from mltrail.sweeps.storage import create_sweep

    with cli_errors():
        spec = load_spec(spec_file)
        if smoke:
            cap = smoke_trials if spec.run_cap is None else min(spec.run_cap, smoke_trials)
            spec = dataclasses.replace(spec, run_cap=cap, name=spec.name or "smoke")
        record = create_sweep(spec, store=store, cwd=spec_file.resolve().parent)
        print(record.sweep_id)
        if smoke:
            _smoke(record.sweep_id, store, smoke_steps)


def _smoke(sweep_id: str, store: str | None, steps: int) -> None:
    from mltrail.sweeps.agent import AgentOptions, run_agent

    env = {"MLTRAIL_PREFLIGHT_STEPS": str(steps)}
    results = run_agent(
        sweep_id,
        store=store,
        options=AgentOptions(env=env, stdout=sys.stderr.buffer, on_trial=_announce),
    )
    bad = [r for r in results if r.state == "failed"]
    nan = [r for r in results if r.values and any(math.isnan(v) for v in r.values)]
    if not results:
        fail(f"smoke sweep {sweep_id}: no trial ran")
    if bad or nan:
        first = (bad or nan)[0]
        fail(f"smoke sweep {sweep_id}: trial {first.number} failed: {first.reason}")
    print(f"smoke sweep {sweep_id}: {len(results)} trials passed", file=sys.stderr)


def _announce(result: TrialResult) -> None:
    value = "" if result.values is None else f" {', '.join(f'{v:.6g}' for v in result.values)}"
    reason = f" ({result.reason})" if result.reason else ""
    print(
        f"mltrail: trial {result.number} {result.state}{value}{reason}  run {result.run_id}",
        file=sys.stderr,
    )


def agent(
    sweep_id: SweepArg,
    count: Annotated[
        int | None, typer.Option("--count", min=1, help="Run at most N trials.")
    ] = None,
    store: StoreOption = None,
) -> None:
    """Run trials of a sweep, each as a tracked run, until it is complete or stopped."""
    from mltrail.sweeps.agent import AgentOptions, run_agent

    with cli_errors():
        results = run_agent(
            sweep_id, store=store, options=AgentOptions(count=count, on_trial=_announce)
        )
    print(f"mltrail: agent ran {len(results)} trials of {sweep_id}", file=sys.stderr)


@app.command("show")
def show(
    sweep_id: SweepArg,
    as_json: JsonOption = False,
    best: Annotated[
        bool, typer.Option("--best", help="Only the best trial and the command to rerun it.")
    ] = False,
    store: StoreOption = None,
) -> None:
    """Show a sweep: its state, trials and the best so far."""
    from mltrail.cli._light import print_json
    from mltrail.sweeps.report import describe_sweep

    with cli_errors():
        data = describe_sweep(sweep_id, store=store)
    if best:
        data = {"sweep_id": sweep_id, "best": data["best"]}
    if as_json:
        print_json(data)
    elif best:
        _print_best(data["best"])
    else:
        _print_sweep(data)


def _print_best(rows: list[dict[str, Any]]) -> None:
    if not rows:
        fail("no trial has finished yet")
    for row in rows:
        print(f"trial {row['number']}  values {row['values']}  run {row['run_id']}")
        print(f"  params  {row['params']}")
        print(f"  rerun   {row['rerun']}")


def _print_sweep(data: dict[str, Any]) -> None:
    from rich.table import Table

    from mltrail.cli._light import status_text, stdout_console

    rec = data["sweep"]
    spec = rec["spec"]
    console = stdout_console()
    console.print(
        f"[bold]{rec['sweep_id']}[/]  {data['state']}  method {spec['method']}  "
        f"seed {rec['seed']}  git {str(rec['git_sha'] or '-')[:12]}  cap {data['cap'] or '-'}"
    )
    console.print("  ".join(f"{k} {v}" for k, v in sorted(data["counts"].items())) or "no trials")
    table = Table(box=None)
    for col in ("#", "state", "value", "steps", "run", "params"):
        table.add_column(col)
    for row in data["trials"]:
        values = row["values"]
        table.add_row(
            str(row["number"]),
            status_text(row["state"]),
            "" if values is None else ", ".join(f"{v:.6g}" for v in values),
            str(row["steps"]),
            str(row["run_id"] or ""),
            " ".join(f"{k}={v}" for k, v in row["params"].items()),
        )
    console.print(table)
    if data["best"]:
        b = data["best"][0]
        console.print(f"best: trial {b['number']} {b['values']}  rerun: {b['rerun']}")


def _set_state(sweep_id: str, state: str, store: str | None) -> None:
    from mltrail.sweeps.storage import set_state

    with cli_errors():
        record = set_state(sweep_id, state, store=store)
    print(f"{record.sweep_id} {record.state}")


@app.command("stop")
def stop(sweep_id: SweepArg, store: StoreOption = None) -> None:
    """Stop a sweep: agents finish their trial and start no new one."""
    _set_state(sweep_id, "stopped", store)


@app.command("resume")
def resume(sweep_id: SweepArg, store: StoreOption = None) -> None:
    """Resume a stopped sweep (start agents again)."""
    _set_state(sweep_id, "running", store)
