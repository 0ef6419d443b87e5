"""``mltrail reproduce RUN`` and ``mltrail verify-determinism -- CMD``.

The work is done by :func:`mltrail.repro.reproduce` and :func:`mltrail.repro.verify_determinism`;
this module parses the arguments and prints: the plan, each step as it happens, the verdict
(``identical``, ``within-tolerance``, ``diverged``; ``failed`` when the command fails) and the
``mltrail diff`` of the runs, or the same as JSON.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mltrail.cli._common import JsonOption, StoreOption, fail, print_json
from mltrail.cli.run_cmd import launch_errors

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from rich.console import Console

    from mltrail.diff import RunDiff
    from mltrail.repro.compare import Outcome
    from mltrail.repro.plan import Plan
    from mltrail.repro.verdict import Verdict

__all__ = ["reproduce", "verify_determinism"]

RtolOpt = Annotated[
    float,
    typer.Option("--rtol", help="Relative tolerance (of the original's value).", show_default=True),
]
AtolOpt = Annotated[float, typer.Option("--atol", help="Absolute tolerance.", show_default=True)]
WorkdirOpt = Annotated[
    Path | None,
    typer.Option(
        "--workdir",
        metavar="DIR",
        help="Where to check out the code (and build the environment); kept afterwards. "
        "Default: a scratch folder, removed afterwards.",
    ),
]
_STATUS_STYLE = {"restore": "green", "missing": "bold red", "differs": "yellow", "note": "dim"}
_STATUS_LABEL = {"restore": "restored", "missing": "NOT restored", "differs": "differs"}
_VERDICT_STYLE = {
    "identical": "bold green",
    "within-tolerance": "bold yellow",
    "diverged": "bold red",
    "failed": "bold red",
    "failure-reproduced": "bold yellow",
    "nothing-to-compare": "bold yellow",
}


def _err_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def _out_console(as_json: bool) -> Console:
    from mltrail.cli._common import stdout_console

    return _err_console() if as_json else stdout_console()


class _ConsoleProgress:
    """Prints a reproduction's progress (:class:`mltrail.repro.Progress`) on a Rich console."""

    def __init__(self, console: Console, *, show_plan: bool = True) -> None:
        self.console = console
        self.show_plan = show_plan

    def planned(self, plan: Plan) -> None:
        if self.show_plan:
            _print_plan(self.console, plan)

    def note(self, message: str, *, warning: bool = False) -> None:
        from rich.text import Text

        self.console.print(Text(message, style="yellow" if warning else ""))

    def busy(self, message: str) -> AbstractContextManager[object]:
        return self.console.status(message)


# -- printing --------------------------------------------------------------------------


def _print_plan(console: Console, plan: Plan) -> None:
    from rich.table import Table
    from rich.text import Text

    r = plan.run
    head = Text("plan to reproduce run ", style="bold")
    head.append(r.run_id, style="cyan").append(f"  {r.name}  ").append(r.project, "dim")
    console.print(head)
    table = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("kind", "what", "status", "how / why"):
        table.add_column(col, overflow="fold")
    for item in plan.items:
        style = _STATUS_STYLE.get(item.status, "")
        label = _STATUS_LABEL.get(item.status, "note")
        table.add_row(Text(item.kind), Text(item.subject), Text(label, style), Text(item.detail))
    console.print(table)
    missing = plan.missing
    if missing:
        console.print(
            Text(f"{len(missing)} thing(s) cannot be restored: ", style="bold red").append(
                "; ".join(f"{i.subject}: {i.detail}" for i in missing), style="red"
            )
        )
    else:
        console.print(Text("everything recorded can be restored", style="green"))


def _print_outcome(
    console: Console, outcome: Outcome, causes: tuple[str, ...], title: str | None = None
) -> None:
    from rich.text import Text

    line = Text(f"{title}: " if title else "verdict: ", style="bold")
    line.append(outcome.summary(), style=_VERDICT_STYLE.get(outcome.verdict, "bold"))
    console.print(line)
    _print_keys(console, outcome)
    for art in outcome.artifacts:
        if not art.equal:
            console.print(
                Text(f"  artifact {art.name}: {art.a or '(absent)'} → {art.b or '(absent)'}")
            )
    for f in [f for f in outcome.files if not f.equal][:20]:
        a, b = (f.a or "(not written)")[:19], (f.b or "(not written)")[:19]
        console.print(Text(f"  file {f.name}: {a} → {b}" + (" (document/log)" * f.volatile)))
    if outcome.verdict in ("identical", "within-tolerance") and outcome.reasons:
        for reason in outcome.reasons:
            console.print(Text(f"  note: {reason}", style="dim"))
    for cause in causes:
        console.print(Text(f"  cause: {cause}", style="yellow"))


def _print_keys(console: Console, outcome: Outcome) -> None:
    """The keys that are not bit-identical (20 at most), with the first difference."""
    from rich.table import Table
    from rich.text import Text

    from mltrail.cli._common import fmt_float

    shown = [k for k in outcome.keys if not k.identical][:20]
    if not shown:
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("key", "points", "max gap", "first difference"):
        table.add_column(col, overflow="fold")
    for k in shown:
        first = k.first_divergence or k.first_difference
        table.add_row(
            Text(k.key),
            f"{k.points[0]} / {k.points[1]}",
            "lengths differ" if k.points[0] != k.points[1] else fmt_float(k.max_gap),
            Text(first.describe() if first else "", style="red" if not k.within else ""),
        )
    console.print(table)


def _print_diff(console: Console, diff: RunDiff) -> None:
    from rich.text import Text

    from mltrail.cli.diff_cmd import print_diff

    console.print()
    console.print(Text("mltrail diff of the two runs' captured state:", style="bold magenta"))
    print_diff(console, diff)


# -- reproduce ---------------------------------------------------------------------------


def reproduce(
    run: Annotated[str, typer.Argument(metavar="RUN", help="The run to reproduce (id or prefix).")],
    workdir: WorkdirOpt = None,
    env: Annotated[
        str,
        typer.Option(
            "--env",
            metavar="current|rebuild",
            help="current: this interpreter, reporting package differences; rebuild: a fresh "
            "virtual environment from the recorded frozen requirements (uv when available).",
        ),
    ] = "current",
    rtol: RtolOpt = 1e-5,
    atol: AtolOpt = 1e-8,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan only: what can be restored.")
    ] = False,
    as_json: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """Re-run a recorded run from its record and say whether the result came out the same.

    Restores the code (commit + uncommitted diff), the environment, the data (by digest,
    verified), the config, seeds and numerics variables, runs the recorded command as a new
    run tagged reproduction-of, and compares every metric point and output artifact:
    identical / within-tolerance (exit 0), diverged (exit 1, with the first divergent key
    and step and the diff of the two runs' captured state). A run that logged nothing is
    judged by the files it wrote, else by its console; nothing-to-compare exits 3; a failure
    reproduced the same way (same exception and line) says so and exits 0.
    """
    from mltrail.repro import reproduce as run_reproduction

    console = _out_console(as_json)
    with launch_errors():
        verdict = run_reproduction(
            run,
            store=store,
            workdir=workdir,
            env_mode=env,
            rtol=rtol,
            atol=atol,
            dry_run=dry_run,
            progress=_ConsoleProgress(console, show_plan=not (dry_run and as_json)),
            stdout=sys.stderr.buffer if as_json else None,
        )
    assert verdict.plan is not None
    if verdict.dry_run:
        if as_json:
            print_json({"plan": verdict.plan.to_dict(), "dry_run": True})
        return
    if as_json:
        print_json(_reproduce_json(verdict))
    else:
        _print_reproduction(console, verdict)
    raise typer.Exit(verdict.exit_code)


def _reproduce_json(verdict: Verdict) -> dict[str, Any]:
    worst = verdict.worst
    assert verdict.plan is not None and worst is not None
    return {
        "plan": verdict.plan.to_dict(),
        "run_id": verdict.run_id,
        "workdir": str(verdict.workdir) if verdict.workdir is not None else None,
        "outcome": worst.outcome.to_dict(),
        "causes": list(worst.causes),
        "environment": verdict.environment,
        "diff": worst.diff.to_dict(),
    }


def _print_reproduction(console: Console, verdict: Verdict) -> None:
    worst = verdict.worst
    assert worst is not None
    console.print()
    _print_outcome(console, worst.outcome, worst.causes)
    changes = verdict.environment.get("package_changes")
    if changes:
        listed = ", ".join(
            f"{c['name']} {c['recorded']} → {c['here']} ({c['change']})" for c in changes[:10]
        )
        console.print(f"[yellow]  environment differs from the record: {listed}[/yellow]")
    _print_diff(console, worst.diff)


# -- verify-determinism ---------------------------------------------------------------


def verify_determinism(
    command: Annotated[list[str], typer.Argument(help="The command to run, after `--`.")],
    repeat: Annotated[
        int, typer.Option("--repeat", "-n", min=2, max=100, help="How many times to run it.")
    ] = 2,
    rtol: RtolOpt = 1e-5,
    atol: AtolOpt = 1e-8,
    seed: Annotated[
        int | None,
        typer.Option(
            "--seed",
            min=0,
            max=2**32 - 1,
            help="Export MLTRAIL_SEED=S: mltrail.seed_everything() without an argument uses it.",
        ),
    ] = None,
    project: Annotated[str, typer.Option("--project", "-p", help="Project of the runs.")] = (
        "default"
    ),
    allow_dirty: Annotated[
        bool, typer.Option("--allow-dirty", help="Run uncommitted code, recording the diff.")
    ] = False,
    as_json: JsonOption = False,
    store: StoreOption = None,
    metric: Annotated[
        list[str] | None,
        typer.Option(
            "--metric",
            "-m",
            metavar="NAME=REGEX",
            help="Console metrics, as for `mltrail run --metric` (repeatable).",
        ),
    ] = None,
) -> None:
    """Run a command several times under tracking and check the runs came out the same.

    Every run after the first is compared with the first, point by point and artifact by
    artifact. Exit 0 when all are identical or within tolerance; 1 on divergence (naming the
    first divergent key and step) or when a run fails.
    """
    from mltrail.repro import verify_determinism as run_check

    console = _out_console(as_json)
    with launch_errors():
        verdict = run_check(
            command,
            repeat=repeat,
            seed=seed,
            rtol=rtol,
            atol=atol,
            store=store,
            project=project,
            allow_dirty=allow_dirty,
            progress=_ConsoleProgress(console),
            stdout=sys.stderr.buffer if as_json else None,
            metrics=metric or (),
        )
    if not verdict.comparisons:  # the first run did not finish: nothing to compare
        fail("; ".join(verdict.reasons))
    if as_json:
        print_json(
            {
                "verdict": verdict.verdict,
                "runs": list(verdict.run_ids),
                "seed": seed,
                "comparisons": [c.to_dict() for c in verdict.comparisons],
            }
        )
    else:
        _print_comparisons(console, verdict)
    if not verdict.ok:
        _print_not_deterministic(verdict)
    raise typer.Exit(verdict.exit_code)


def _print_comparisons(console: Console, verdict: Verdict) -> None:
    console.print()
    for n, c in enumerate(verdict.comparisons, start=2):
        _print_outcome(console, c.outcome, c.causes, title=f"run {n} vs run 1")
    bad = next((c for c in verdict.comparisons if not c.outcome.ok), None)
    if bad is not None:
        _print_diff(console, bad.diff)


def _print_not_deterministic(verdict: Verdict) -> None:
    div = verdict.first_divergence
    where = f" at {div.key} step {div.step}" if div is not None else ""
    _err_console().print(
        f"[bold red]not deterministic: {verdict.verdict}{where}[/bold red]"
        if verdict.verdict == "diverged"
        else f"[bold red]{verdict.summary()}[/bold red]"
    )


# -- check -------------------------------------------------------------------------------


def check(
    run: Annotated[str | None, typer.Argument(help="The run (id or prefix).")] = None,
    last: Annotated[bool, typer.Option("--last", help="The latest run.")] = False,
    min_score: Annotated[
        float | None,
        typer.Option("--min-score", min=0.0, max=1.0, help="Fail below this score."),
    ] = None,
    require: Annotated[
        str | None,
        typer.Option("--require", metavar="ITEM,...", help="Items that must pass."),
    ] = None,
    markdown: Annotated[
        bool, typer.Option("--markdown", help="Print a block for a pull request.")
    ] = False,
    as_json: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """A run's reproducibility checklist; exit 1 when the policy is not met.

    The policy: --min-score and --require, else [check] min_score / require in
    .mltrail/config.toml. Items: code, untracked, data, environment, seed, determinism,
    hardware, config, outputs, verdict.
    """
    from mltrail.capture.git import find_repo
    from mltrail.capture.policy import run_policy
    from mltrail.cli._common import cli_errors
    from mltrail.repro.checklist import ITEMS, checklist
    from mltrail.repro.launcher import resolve_store

    if (run is None) == (not last):
        fail("give a run or --last (one of them)")
    items = tuple(i.strip() for i in (require or "").split(",") if i.strip())
    unknown = [i for i in items if i not in ITEMS]
    if unknown:
        fail(f"--require: unknown item(s) {', '.join(unknown)}; items: {', '.join(ITEMS)}")
    policy = run_policy(find_repo(Path.cwd()))
    with cli_errors():
        from mltrail.api import Api

        api = Api(resolve_store(store))
        run_id = run if run is not None else api.runs(limit=1)[0].run_id
        result = checklist(api, run_id)
    score = min_score if min_score is not None else policy.check_min_score
    problems = result.failures(score, items or policy.check_require)
    if as_json:
        print_json({**result.to_dict(), "ok": not problems, "problems": problems})
    elif markdown:
        print(result.markdown(), end="")
    else:
        _print_checklist(result, problems)
    raise typer.Exit(1 if problems else 0)


def _print_checklist(result: Any, problems: list[str]) -> None:
    from rich.text import Text

    from mltrail.cli._common import stdout_console

    console = stdout_console()
    style = {"pass": "green", "warn": "yellow", "fail": "bold red"}
    console.print(Text(f"checklist of run {result.run_id}: score {result.score:.2f}", "bold"))
    for c in result.checks:
        line = Text(f"  {c.result:<4} ", style=style[c.result])
        line.append(f"{c.name:<12} {c.reason}")
        console.print(line)
    for p in problems:
        console.print(Text(f"policy not met: {p}", style="bold red"))
