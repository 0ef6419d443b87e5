"""``mltrail reproduce RUN`` and ``mltrail verify-determinism -- CMD``.

``reproduce`` follows the plan of :mod:`mltrail.repro.plan`: the code at the recorded commit
with the recorded diff (a git worktree in a scratch folder), the environment (this
interpreter, or a rebuilt virtual environment), the data by digest, then the recorded
command with the recorded config, seeds and numerics variables, run through ``mltrail run``'s
machinery as a new run tagged ``reproduction-of``. The verdict (``identical``,
``within-tolerance``, ``diverged``; ``failed`` when the command fails) is stored on the new
run and printed with the ``mltrail diff`` of the two runs. ``verify-determinism`` runs a
command several times in the same environment and compares the runs the same way.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mltrail.cli._common import JsonOption, StoreOption, cli_errors, fail, open_api, print_json

if TYPE_CHECKING:
    from collections.abc import Iterator

    from rich.console import Console

    from mltrail.api import Api
    from mltrail.diff import RunDiff
    from mltrail.repro.code import RestoredCode
    from mltrail.repro.compare import Outcome
    from mltrail.repro.environment import RebuiltEnv
    from mltrail.repro.plan import Plan
    from mltrail.run import Run

__all__ = ["reproduce", "verify_determinism"]

RtolOpt = Annotated[
    float,
    typer.Option("--rtol", help="Relative tolerance (of the original's value).", show_default=True),
]
AtolOpt = Annotated[float, typer.Option("--atol", help="Absolute tolerance.", show_default=True)]
_STATUS_STYLE = {"restore": "green", "missing": "bold red", "differs": "yellow", "note": "dim"}
_VERDICT_STYLE = {
    "identical": "bold green",
    "within-tolerance": "bold yellow",
    "diverged": "bold red",
    "failed": "bold red",
}


def _err_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def _out_console(as_json: bool) -> Console:
    from mltrail.cli._common import stdout_console

    return _err_console() if as_json else stdout_console()


@contextlib.contextmanager
def _environ(set_: dict[str, str], unset: list[str]) -> Iterator[None]:
    """``os.environ`` with ``set_`` applied and ``unset`` removed, restored afterwards."""
    saved = {k: os.environ.get(k) for k in [*set_, *unset]}
    try:
        for k in unset:
            os.environ.pop(k, None)
        os.environ.update(set_)
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def _cwd(path: Path) -> Iterator[None]:
    """Work in ``path`` (so that the new run records the restored code), then come back."""
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def _store_arg(api: Api) -> str:
    loc = api.location
    return loc.display if loc.embedded else loc.uri


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
        label = {"restore": "restored", "missing": "NOT restored", "differs": "differs"}.get(
            item.status, "note"
        )
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
    console: Console, outcome: Outcome, causes: list[str], title: str | None = None
) -> None:
    from rich.table import Table
    from rich.text import Text

    from mltrail.cli._common import fmt_float

    line = Text(f"{title}: " if title else "verdict: ", style="bold")
    line.append(outcome.summary(), style=_VERDICT_STYLE.get(outcome.verdict, "bold"))
    console.print(line)
    shown = [k for k in outcome.keys if not k.identical][:20]
    if shown:
        table = Table(box=None, header_style="bold", pad_edge=False)
        for col in ("key", "points", "max gap", "first difference"):
            table.add_column(col, overflow="fold")
        for k in shown:
            first = k.first_divergence or k.first_difference
            table.add_row(
                Text(k.key),
                f"{k.points[0]} / {k.points[1]}",
                fmt_float(k.max_gap),
                Text(first.describe() if first else "", style="red" if not k.within else ""),
            )
        console.print(table)
    for art in outcome.artifacts:
        if not art.equal:
            console.print(
                Text(f"  artifact {art.name}: {art.a or '(absent)'} → {art.b or '(absent)'}")
            )
    for cause in causes:
        console.print(Text(f"  cause: {cause}", style="yellow"))


def _print_diff(console: Console, diff: RunDiff) -> None:
    from rich.text import Text

    from mltrail.cli.diff_cmd import print_diff

    console.print()
    console.print(Text("mltrail diff of the two runs' captured state:", style="bold magenta"))
    print_diff(console, diff)


# -- running ------------------------------------------------------------------------------


def _rewrite(arg: str, orig_cwd: str | None, repo: str | None, checkout: Path | None) -> str:
    """An argument naming a path in the recorded repository, moved to the checkout."""
    if repo is None or checkout is None or "\x00" in arg:
        return arg
    candidate = arg if os.path.isabs(arg) else os.path.join(orig_cwd or "", arg)
    candidate = os.path.normpath(candidate)
    inside_cwd = orig_cwd is not None and _under(orig_cwd, repo)
    if not os.path.isabs(arg) and inside_cwd:
        return arg  # relative to a folder that maps into the checkout: unchanged
    if not os.path.isabs(candidate) or not _under(candidate, repo):
        return arg
    moved = checkout / os.path.relpath(candidate, repo)
    return str(moved) if os.path.isabs(arg) or moved.exists() else arg


def _same_file(a: str, b: str) -> bool:
    """The recorded interpreter path names this one (a venv's python and python3: the same
    file in the same folder, so the same environment)."""
    try:
        same_dir = os.path.dirname(a) == os.path.dirname(b)
        return os.path.isabs(a) and same_dir and os.path.samefile(a, b)
    except OSError:
        return False


def _under(path: str, root: str) -> bool:
    path, root = os.path.normpath(path), os.path.normpath(root)
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _command(plan: Plan, checkout: Path | None, python: str) -> tuple[list[str], Path]:
    """The command to run and its working directory."""
    assert plan.argv is not None
    argv = list(plan.argv)
    if plan.interpreter:
        argv[0] = python if not _same_file(argv[0], python) else argv[0]
    repo = plan.repo_root
    argv = [argv[0], *(_rewrite(a, plan.cwd, repo, checkout) for a in argv[1:])]
    if checkout is not None and repo is not None:
        if plan.cwd is not None and _under(plan.cwd, repo):
            return argv, checkout / os.path.relpath(plan.cwd, repo)
        if plan.cwd is not None and os.path.isdir(plan.cwd):
            return argv, Path(plan.cwd)
        return argv, checkout
    if plan.cwd is not None and os.path.isdir(plan.cwd):
        return argv, Path(plan.cwd)
    return argv, Path.cwd()


def _finish_and_judge(
    api: Api,
    run: Run,
    code: int,
    original: str,
    rtol: float,
    atol: float,
    extra: dict[str, Any],
    tags: dict[str, str],
) -> tuple[Outcome, list[str], RunDiff]:
    """Compare ``run`` with ``original``, store the verdict on ``run``, finish it."""
    from mltrail.cli.run_cmd import _status_for
    from mltrail.diff import diff_runs
    from mltrail.repro.compare import compare_runs
    from mltrail.repro.verdict import VERDICT_KIND, VERDICT_TAG, explain, verdict_document

    status = _status_for(code)
    if run._session is not None:
        run._session.stop()  # the capture is in the spool: the diff sees all of it
    run.flush(timeout=60)
    outcome = compare_runs(api, original, run.run_id, rtol, atol, b_status=status)
    diff = diff_runs(api, original, run.run_id)
    causes = explain(outcome, diff, api.state(original), api.state(run.run_id))
    doc = verdict_document(outcome, causes, original=original, extra=extra)
    run.set_tags({**tags, VERDICT_TAG: outcome.verdict})
    run._log_state(VERDICT_KIND, doc, {})
    run.finish(status)
    return outcome, causes, diff


def _rebuild(plan: Plan, api: Api, dest: Path, console: Console) -> RebuiltEnv:
    from mltrail.repro.environment import rebuild_environment

    assert plan.requirements_digest is not None
    requirements = api.blob(plan.requirements_digest).decode("utf-8", "replace")
    with console.status(f"rebuilding the environment ({len(plan.packages)} packages)"):
        env = rebuild_environment(requirements, dest, python_version=plan.python_version)
    console.print(
        f"environment: {env.tool} installed {len(env.installed)} packages into {env.path} "
        f"in {env.seconds:.1f} s (Python {env.python_version})"
    )
    if env.unavailable:
        console.print(
            f"[yellow]not available at their recorded versions (left out): "
            f"{', '.join(env.unavailable)}[/yellow]"
        )
    return env


def reproduce(
    run: Annotated[str, typer.Argument(metavar="RUN", help="The run to reproduce (id or prefix).")],
    workdir: Annotated[
        Path | None,
        typer.Option(
            "--workdir",
            metavar="DIR",
            help="Where to check out the code (and build the environment); kept afterwards. "
            "Default: a scratch folder, removed afterwards.",
        ),
    ] = None,
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
    and step and the diff of the two runs' captured state).
    """
    from mltrail.repro.compare import check_tolerances
    from mltrail.repro.plan import make_plan

    with cli_errors():
        check_tolerances(rtol, atol)
        api = open_api(store)
        plan = make_plan(api, run, env)
    console = _out_console(as_json)
    if dry_run:
        if as_json:
            print_json({"plan": plan.to_dict(), "dry_run": True})
        else:
            _print_plan(console, plan)
        return
    _print_plan(console, plan)
    if not plan.runnable:
        reasons = "; ".join(i.detail for i in plan.missing if i.kind == "command")
        fail(f"cannot reproduce run {plan.run.run_id}: {reasons or 'no command recorded'}")
    keep = workdir is not None
    base = (
        workdir.expanduser().resolve()
        if workdir is not None
        else Path(tempfile.mkdtemp(prefix="mltrail-repro-"))
    )
    made: list[RestoredCode] = []
    try:
        with cli_errors():
            outcome, causes, diff, extra = _reproduce(api, plan, base, console, rtol, atol, made)
    finally:
        if not keep:
            import shutil

            from mltrail.repro.code import remove_checkout

            for restored in made:
                remove_checkout(restored.path, restored.source_root)
            shutil.rmtree(base, ignore_errors=True)
    if as_json:
        print_json(
            {
                "plan": plan.to_dict(),
                "run_id": extra["run_id"],
                "workdir": str(base) if keep else None,
                "outcome": outcome.to_dict(),
                "causes": causes,
                "environment": extra["environment"],
                "diff": diff.to_dict(),
            }
        )
    else:
        console.print()
        _print_outcome(console, outcome, causes)
        if extra["environment"].get("package_changes"):
            listed = ", ".join(
                f"{c['name']} {c['recorded']} → {c['here']} ({c['change']})"
                for c in extra["environment"]["package_changes"][:10]
            )
            console.print(f"[yellow]  environment differs from the record: {listed}[/yellow]")
        _print_diff(console, diff)
    raise typer.Exit(0 if outcome.ok else 1)


def _reproduce(
    api: Api,
    plan: Plan,
    base: Path,
    console: Console,
    rtol: float,
    atol: float,
    made: list[RestoredCode],
) -> tuple[Outcome, list[str], RunDiff, dict[str, Any]]:
    from mltrail.cli.run_cmd import _launch, _start
    from mltrail.repro.code import restore_code
    from mltrail.repro.data import restore_data
    from mltrail.repro.verdict import REPRODUCTION_TAG

    base.mkdir(parents=True, exist_ok=True)
    checkout: Path | None = None
    if plan.sha is not None:
        diff = api.blob(plan.diff_digest) if plan.diff_digest else None
        root = Path(plan.repo_root) if plan.repo_root else None
        restored = restore_code(base / "code", plan.sha, root=root, remotes=plan.remotes, diff=diff)
        made.append(restored)
        checkout = restored.path
        applied = " + the recorded diff" if restored.diff_applied else ""
        console.print(f"code: {restored.how} at {plan.sha[:12]}{applied} → {checkout}")
        if plan.repo_root and os.path.isdir(plan.repo_root):
            done = restore_data(plan.data, Path(plan.repo_root), checkout)
            if done:
                console.print(f"data: restored and verified {', '.join(done)}")
    environment: dict[str, Any] = {"mode": plan.env_mode}
    python = sys.executable
    env_set = dict(plan.env_set)
    if plan.env_mode == "rebuild":
        built = _rebuild(plan, api, base / "venv", console)
        python = str(built.python)
        environment["rebuilt"] = built.to_dict()
        env_set["VIRTUAL_ENV"] = str(built.path)
        env_set["PATH"] = f"{built.path / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
    else:
        environment["package_changes"] = [c.to_dict() for c in plan.package_changes]
    argv, cwd = _command(plan, checkout, python)
    cwd.mkdir(parents=True, exist_ok=True)
    original = plan.run
    tags = {REPRODUCTION_TAG: original.run_id}
    out = sys.stderr.buffer if console.stderr else None
    with _environ(env_set, plan.env_unset), _cwd(cwd):
        new = _start(
            original.project,
            f"{original.name}-repro"[:250],
            tags,
            original.config or None,
            _store_arg(api),
            True,
            argv,
        )
        console.print(f"running {' '.join(argv)} in {cwd} as run {new.run_id}")
        code = _launch(new, argv, {}, cwd=cwd, stdout=out)
    extra = {
        "env_mode": plan.env_mode,
        "environment": environment,
        "not_restored": [i.to_dict() for i in plan.missing],
        "command": argv,
        "exit_code": code,
    }
    outcome, causes, diff_ = _finish_and_judge(
        api, new, code, original.run_id, rtol, atol, extra, tags
    )
    extra["run_id"] = new.run_id
    return outcome, causes, diff_, extra


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
) -> None:
    """Run a command several times under tracking and check the runs came out the same.

    Every run after the first is compared with the first, point by point and artifact by
    artifact. Exit 0 when all are identical or within tolerance; 1 on divergence (naming the
    first divergent key and step) or when a run fails.
    """
    import secrets

    from mltrail.cli.run_cmd import _launch, _start
    from mltrail.repro.compare import check_tolerances

    with cli_errors():
        check_tolerances(rtol, atol)
    console = _out_console(as_json)
    group = secrets.token_hex(4)
    env = {} if seed is None else {"MLTRAIL_SEED": str(seed)}
    out = sys.stderr.buffer if as_json else None
    run_ids: list[str] = []
    results: list[tuple[Outcome, list[str], RunDiff]] = []
    api: Api | None = None
    with _environ(env, []):
        for i in range(repeat):
            tags = {"mltrail.determinism": group, "mltrail.repeat": str(i + 1)}
            with cli_errors():
                run = _start(
                    project, f"determinism-{group}-{i + 1}", tags, None, store, allow_dirty, command
                )
                if api is None:
                    api = open_api(_store_name(run))
            console.print(f"run {i + 1}/{repeat}: {run.run_id}")
            code = _launch(run, command, {}, stdout=out)
            with cli_errors():
                if i == 0:
                    from mltrail.cli.run_cmd import _status_for

                    run.finish(_status_for(code))
                    first = api.run(run.run_id)
                    if first.status.value != "finished":
                        fail(f"the first run {run.run_id} ended {first.status.value} (exit {code})")
                else:
                    extra = {"determinism_group": group, "repeat": i + 1, "exit_code": code}
                    if seed is not None:
                        extra["seed"] = seed
                    results.append(
                        _finish_and_judge(
                            api,
                            run,
                            code,
                            run_ids[0],
                            rtol,
                            atol,
                            extra,
                            {"determinism-of": run_ids[0]},
                        )
                    )
            run_ids.append(run.run_id)
    worst = _worst([o for o, _, _ in results])
    if as_json:
        print_json(
            {
                "verdict": worst.verdict,
                "runs": run_ids,
                "seed": seed,
                "comparisons": [{**o.to_dict(), "causes": c} for o, c, _ in results],
            }
        )
    else:
        console.print()
        for n, (o, c, _) in enumerate(results, start=2):
            _print_outcome(console, o, c, title=f"run {n} vs run 1")
        bad = next(((o, d) for o, _, d in results if not o.ok), None)
        if bad is not None:
            _print_diff(console, bad[1])
    if not worst.ok:
        div = worst.first_divergence
        where = f" at {div.key} step {div.step}" if div is not None else ""
        _err_console().print(
            f"[bold red]not deterministic: {worst.verdict}{where}[/bold red]"
            if worst.verdict == "diverged"
            else f"[bold red]{worst.summary()}[/bold red]"
        )
    raise typer.Exit(0 if worst.ok else 1)


def _store_name(run: Run) -> str:
    return run.location.display if run.location.embedded else run.location.uri


def _worst(outcomes: list[Outcome]) -> Outcome:
    order = {"identical": 0, "within-tolerance": 1, "diverged": 2, "failed": 3}
    return max(outcomes, key=lambda o: order.get(o.verdict, 3))
