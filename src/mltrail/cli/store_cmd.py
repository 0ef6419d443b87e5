"""``mltrail store copy SRC DST`` and ``mltrail store check``: move a store, check a store.

Light to import: the stores load inside the commands.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from mltrail.cli._common import JsonOption, StoreOption, cli_errors, print_json

if TYPE_CHECKING:
    from collections.abc import Callable

    from mltrail.store.copy import CopyReport
    from mltrail.store.copy.check import CheckReport

__all__ = ["app", "check", "copy"]

app = typer.Typer(help="Copy a store into another, check a store.", no_args_is_help=True)

ArtifactsOption = Annotated[
    str | None,
    typer.Option(
        metavar="DIR|URL",
        help="Where the store's run files and objects live (as given to mltrail server "
        "--artifacts); default: beside an SQLite store.",
    ),
]


def _size(n: int | float) -> str:
    from mltrail.formatting import fmt_bytes

    return fmt_bytes(int(n))


@app.command("copy")
def copy(
    src: Annotated[str, typer.Argument(metavar="SRC", help="The store to copy from.")],
    dst: Annotated[str, typer.Argument(metavar="DST", help="The store to copy into.")],
    project: Annotated[
        str | None, typer.Option("--project", help="Copy only this project.")
    ] = None,
    src_artifacts: ArtifactsOption = None,
    dst_artifacts: ArtifactsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Copy every run (params, tags, config, state, series, console, files), artifact,
    lineage edge and registered model of SRC into DST; a second copy adds nothing. Exits 1
    when the verification finds a difference."""
    from mltrail.store.copy import copy_store, open_endpoint

    with cli_errors():
        source = open_endpoint(src, src_artifacts)
        try:
            target = open_endpoint(dst, dst_artifacts, create=True)
            try:
                report = _with_progress(
                    lambda tell: copy_store(source, target, project=project, progress=tell),
                    quiet=as_json,
                )
            finally:
                target.close()
        finally:
            source.close()
    if as_json:
        print_json(report.to_dict())
    else:
        _print_copy(report)
    if not report.ok:
        raise typer.Exit(1)


def _with_progress(
    run: Callable[[Callable[[str, int, int], None]], CopyReport], *, quiet: bool
) -> CopyReport:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    if quiet:
        return run(lambda phase, done, total: None)
    bar = Progress(
        TextColumn("{task.description:>9}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    tasks: dict[str, object] = {}

    def tell(phase: str, done: int, total: int) -> None:
        task = tasks.get(phase)
        if task is None:
            task = tasks[phase] = bar.add_task(phase, total=total)
        bar.update(task, completed=done, total=total)  # type: ignore[arg-type]

    with bar:
        return run(tell)


def _print_copy(r: CopyReport) -> None:
    from mltrail.cli._common import stdout_console

    out = stdout_console()
    c = r.catalog
    rate = r.runs_added / r.copy_s if r.copy_s else 0.0
    out.print(f"copied {r.source} -> {r.destination} ({', '.join(r.projects) or 'no projects'})")
    out.print(
        f"  runs: {r.runs_added} added, {r.runs_present} already there "
        f"({r.points:,} points, {_size(r.payload_bytes)}; {rate:.1f} runs/s)"
    )
    out.print(f"  run files: {r.files_added} added, {r.files_present} already there")
    out.print(
        f"  artifacts: {c.versions_added} versions added, {c.versions_present} already there; "
        f"{c.objects_added} objects added ({_size(c.object_bytes)}), {c.objects_present} "
        f"already there; {c.aliases_set} aliases, {c.inputs_added} inputs"
    )
    out.print(
        f"  models: {c.models_added} added, {c.model_versions_added} versions, "
        f"{c.model_changes} aliases/cards/archive flags"
    )
    if not r.added_anything:
        out.print("  nothing to add: the destination already had everything")
    if r.ok:
        out.print(f"verified: {r.runs} runs, artifacts and models match ({r.verify_s:.1f} s)")
        return
    err = stdout_console()
    err.print(f"[red]verification failed[/red]: {len(r.mismatches)} difference(s)")
    for line in r.mismatches[:20]:
        err.print(f"  {line}", markup=False)


@app.command("check")
def check(
    store: StoreOption = None,
    artifacts: ArtifactsOption = None,
    full: Annotated[
        bool, typer.Option("--full", help="Hash every object (default: a sample).")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Report the schema revision, size, counts, orphans and integrity of a store; exits 1
    on an integrity problem."""
    from mltrail.store.copy.check import check_store

    with cli_errors():
        report = check_store(store or "", artifacts, full=full)
    if as_json:
        print_json(report.to_dict())
    else:
        _print_check(report)
    if not report.ok:
        raise typer.Exit(1)


def _print_check(r: CheckReport) -> None:
    from mltrail.cli._common import stdout_console

    out = stdout_console()
    out.print(f"store {r.store}", markup=False)
    if r.head is not None:
        out.print(f"  schema revision: {r.revision or 'none'} (this mltrail: {r.head})")
    if r.size_bytes is not None:
        out.print(f"  size: {_size(r.size_bytes)}")
    if r.counts:
        out.print("  counts: " + ", ".join(f"{k} {v:,}" for k, v in r.counts.items()))
    if r.orphans:
        out.print("  orphans: " + ", ".join(f"{k} {v:,}" for k, v in r.orphans.items()))
    out.print(f"  objects hashed: {r.objects_checked}; checked in {r.check_s:.2f} s")
    if r.ok:
        out.print("integrity: ok")
        return
    out.print(f"[red]integrity: {len(r.problems)} problem(s)[/red]")
    for line in r.problems[:20]:
        out.print(f"  {line}", markup=False)
