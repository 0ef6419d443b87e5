"""``mltrail data ...``: version datasets in git with pointer files (see :mod:`mltrail.data`).

Kept light at import: the data layer, Rich tables and pyarrow load inside the commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mltrail.cli._common import JsonOption, StoreOption, cli_errors, print_json
from mltrail.cli._data_out import (
    fmt_size,
    print_add,
    print_checkout,
    print_gc,
    print_pull,
    print_push,
    print_status,
    print_verify,
)

if TYPE_CHECKING:
    from mltrail.data.diff import DataDiff
    from mltrail.data.repo import DataRepo
    from mltrail.data.status import StatusReport

__all__ = ["app"]

app = typer.Typer(
    help="Version datasets in git: pointer files in the repo, the data in a cache and remotes.",
    no_args_is_help=True,
)
remote_app = typer.Typer(help="Configure where `push` and `pull` send and fetch data.")
app.add_typer(remote_app, name="remote")

PathsArg = Annotated[
    list[Path] | None,
    typer.Argument(help="Data paths or their .mltrail pointer files (default: all)."),
]
RemoteOption = Annotated[
    str | None,
    typer.Option("--remote", "-r", metavar="NAME", help="Remote to use (default: core.remote)."),
]
JobsOption = Annotated[
    int,
    typer.Option("--jobs", "-j", min=1, max=256, help="Parallel transfers (1-256)."),
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]


def _repo() -> DataRepo:
    from mltrail.data.repo import DataRepo

    return DataRepo.discover()


def _console() -> Any:
    from mltrail.cli._common import stdout_console

    return stdout_console()


_size = fmt_size


# -- add / status / checkout ------------------------------------------------------------


@app.command("add")
def add(
    paths: Annotated[list[Path], typer.Argument(help="Files or directories to track.")],
    quiet: QuietOption = False,
    as_json: JsonOption = False,
) -> None:
    """Hash PATHs into the cache and write PATH.mltrail pointer files (commit them)."""
    from mltrail.data import ops

    with cli_errors():
        results = ops.add(_repo(), paths, progress=not quiet and not as_json)
    if as_json:
        print_json([r.to_dict() for r in results])
        return
    print_add(_console(), results)


def _print_status(report: StatusReport) -> None:
    print_status(_console(), report)


@app.command("status")
def status(
    paths: PathsArg = None,
    dvc: Annotated[
        bool, typer.Option("--dvc/--no-dvc", help="Include outputs DVC tracks (.dvc, dvc.lock).")
    ] = True,
    as_json: JsonOption = False,
) -> None:
    """Compare the workspace with the pointer files: unchanged, modified, missing, not cached.

    Directories list the files added, removed and modified inside them.
    """
    from mltrail.data import status as data_status

    with cli_errors():
        report = data_status.status(_repo(), paths or None, dvc=dvc)
    if as_json:
        print_json(report.to_dict())
    else:
        _print_status(report)


@app.command("checkout")
def checkout(
    paths: PathsArg = None,
    force: Annotated[
        bool, typer.Option("--force", "-f", help="Overwrite modified data in the workspace.")
    ] = False,
    quiet: QuietOption = False,
    as_json: JsonOption = False,
) -> None:
    """Make the workspace match the pointer files, from the cache (every file verified)."""
    from mltrail.data import ops

    with cli_errors():
        result = ops.checkout(
            _repo(), paths or None, force=force, progress=not quiet and not as_json
        )
    if as_json:
        print_json(result.to_dict())
        return
    print_checkout(_console(), result)


# -- push / pull ------------------------------------------------------------------------


@app.command("push")
def push(
    paths: PathsArg = None,
    remote: RemoteOption = None,
    jobs: JobsOption = 8,
    quiet: QuietOption = False,
    as_json: JsonOption = False,
) -> None:
    """Upload the cached data of the pointer files to a remote."""
    from mltrail.data import remotes

    with cli_errors():
        result = remotes.push(
            _repo(), paths or None, remote=remote, jobs=jobs, progress=not quiet and not as_json
        )
    if as_json:
        print_json(result.to_dict())
        return
    print_push(_console(), result)


@app.command("pull")
def pull(
    paths: PathsArg = None,
    remote: RemoteOption = None,
    jobs: JobsOption = 8,
    force: Annotated[
        bool, typer.Option("--force", "-f", help="Overwrite modified data in the workspace.")
    ] = False,
    quiet: QuietOption = False,
    as_json: JsonOption = False,
) -> None:
    """Download the data of the pointer files from a remote (verified) and check it out."""
    from mltrail.data import remotes

    with cli_errors():
        result = remotes.pull(
            _repo(),
            paths or None,
            remote=remote,
            jobs=jobs,
            force=force,
            progress=not quiet and not as_json,
        )
    if as_json:
        print_json(result.to_dict())
        return
    print_pull(_console(), result)


# -- gc ---------------------------------------------------------------------------------


@app.command("gc")
def gc(
    rev: Annotated[
        list[str] | None,
        typer.Option(
            "--rev",
            metavar="REV",
            help="Keep what pointer files of this git revision name (repeatable; default HEAD).",
        ),
    ] = None,
    workspace: Annotated[
        bool,
        typer.Option("--workspace/--no-workspace", help="Keep what the workspace's pointers name."),
    ] = True,
    dry_run: Annotated[bool, typer.Option("--dry-run", "-n", help="List, remove nothing.")] = False,
    grace: Annotated[
        float | None,
        typer.Option(
            "--grace",
            metavar="MINUTES",
            min=0,
            help=(
                "Never remove objects younger than this (default: gc.grace_minutes in "
                ".mltrail/config.toml, else 60). 0 is safe on the cache, which gc locks; "
                "not on a remote other machines may be pushing to."
            ),
            show_default=False,
        ),
    ] = None,
    remote: Annotated[
        str | None,
        typer.Option("--remote", "-r", metavar="NAME", help="Collect on this remote instead."),
    ] = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Remove cached objects nothing references: pointer files in the given revisions (and the
    workspace), runs and artifact versions of the tracking store. Safe while other mltrail
    commands run: it waits for them (the cache lock) and spares objects younger than the
    grace window. Stale temp files of killed commands are removed too."""
    from mltrail.data import remotes

    with cli_errors():
        result = remotes.gc(
            _repo(),
            revs=rev or ["HEAD"],
            workspace=workspace,
            dry_run=dry_run,
            store=store,
            remote=remote,
            grace_minutes=grace,
        )
    if as_json:
        print_json(result.to_dict())
        return
    print_gc(_console(), result)


# -- verify -----------------------------------------------------------------------------


@app.command("verify")
def verify(
    remote: Annotated[
        str | None,
        typer.Option(
            "--remote", "-r", metavar="NAME", help="Verify this remote instead of the cache."
        ),
    ] = None,
    quiet: QuietOption = False,
    as_json: JsonOption = False,
) -> None:
    """Read and hash every object of the cache (or a remote); report each corrupt or missing
    one (digest and path); exit 1 if there is any. Missing: named by a pointer file of the
    workspace, or listed by a stored directory tree, but not there."""
    from mltrail.data.verify import verify as run_verify

    with cli_errors():
        result = run_verify(_repo(), remote=remote, progress=not quiet and not as_json)
    if as_json:
        print_json(result.to_dict())
    else:
        print_verify(_console(), result)
    if not result.ok:
        raise typer.Exit(1)


# -- diff -------------------------------------------------------------------------------


def _print_diff(d: DataDiff) -> None:
    from rich.table import Table

    console = _console()
    console.print(f"data diff {d.a} -> {d.b}", markup=False, style="bold")
    if d.identical:
        console.print("no changes")
    marks = {"added": ("+", "green"), "removed": ("-", "red"), "modified": ("M", "yellow")}
    for f in d.files:
        mark, style = marks[f.change]
        sizes = (
            f"{_size(f.size_a) if f.digest_a else ''} -> {_size(f.size_b) if f.digest_b else ''}"
        )
        console.print(f"[{style}]{mark}[/{style}] ", end="")
        console.print(f"{f.path}  ({sizes.strip()})", markup=False)
    for t in d.tables:
        console.print()
        console.print(f"table {t.path}", markup=False, style="bold magenta")
        if t.error:
            console.print(t.error, markup=False, style="red")
            continue
        rows_a = t.a.rows if t.a else None
        rows_b = t.b.rows if t.b else None
        console.print(f"rows: {rows_a} -> {rows_b}", markup=False)
        for c in t.schema_changes:
            if c["change"] == "added":
                console.print(f"  + column {c['column']} ({c['b']})", markup=False)
            elif c["change"] == "removed":
                console.print(f"  - column {c['column']} ({c['a']})", markup=False)
            else:
                console.print(f"  ~ column {c['column']}: {c['a']} -> {c['b']}", markup=False)
        columns = sorted(set(t.a.columns if t.a else {}) | set(t.b.columns if t.b else {}))
        if not columns:
            continue
        table = Table(show_edge=False, pad_edge=False)
        for head in ("column", "stat", "before", "after"):
            table.add_column(head, overflow="fold")
        for name in columns:
            ca = t.a.columns.get(name) if t.a else None
            cb = t.b.columns.get(name) if t.b else None
            for stat in ("nulls", "min", "max", "mean", "distinct"):
                va = getattr(ca, stat) if ca else None
                vb = getattr(cb, stat) if cb else None
                if va is None and vb is None:
                    continue
                style = "yellow" if va != vb else ""
                table.add_row(name, stat, _fmt(va), _fmt(vb), style=style)
        console.print(table)
    for note in d.notes:
        console.print(f"note: {note}", markup=False, style="dim")


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


@app.command("diff")
def diff(
    args: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[REV_A] [REV_B] [PATH]",
            help="Revisions (default: HEAD against the workspace) and a path to limit to.",
        ),
    ] = None,
    stats: Annotated[
        bool, typer.Option("--stats/--no-stats", help="Schema and column statistics of tables.")
    ] = True,
    as_json: JsonOption = False,
) -> None:
    """What changed in the data: files added, removed, modified; for tables, the schema, row
    counts and column statistics before and after."""
    from mltrail.data.diff import diff_data
    from mltrail.errors import InvalidArgumentError, NotFoundError

    with cli_errors():
        repo = _repo()
        revs: list[str] = []
        path: str | None = None
        for arg in args or []:
            if path is not None:
                raise InvalidArgumentError(f"unexpected argument {arg!r} after the path")
            is_rev = False
            if len(revs) < 2:
                try:
                    repo.resolve_rev(arg)
                    is_rev = True
                except (NotFoundError, InvalidArgumentError):
                    is_rev = False
            if is_rev:
                revs.append(arg)
            else:
                path = repo.rel(arg)
        rev_a = revs[0] if revs else "HEAD"
        rev_b = revs[1] if len(revs) > 1 else None
        result = diff_data(repo, rev_a, rev_b, path, tables=stats)
    if as_json:
        print_json(result.to_dict())
    else:
        _print_diff(result)


# -- remotes ----------------------------------------------------------------------------


@remote_app.command("add")
def remote_add(
    name: Annotated[str, typer.Argument(help="The remote's name.")],
    url: Annotated[str, typer.Argument(help="A directory or an fsspec URL (s3://bucket/path).")],
    default: Annotated[bool, typer.Option("--default", "-d", help="Make it the default.")] = False,
    local: Annotated[
        bool, typer.Option("--local", help="Write .mltrail/config.local.toml (not committed).")
    ] = False,
) -> None:
    """Add (or change) a remote in .mltrail/config.toml (commit that file)."""
    from mltrail.data.config import add_remote

    with cli_errors():
        repo = _repo()
        repo.ensure_meta()
        written = add_remote(repo.meta_dir, name, url, default=default, local=local)
    rel = written.relative_to(repo.root)
    _console().print(f"remote {name} -> {url} ({rel})", markup=False)


@remote_app.command("list")
def remote_list(as_json: JsonOption = False) -> None:
    """List the remotes (the default one is marked)."""
    with cli_errors():
        cfg = _repo().config()
    rows = [
        {"name": r.name, "url": r.url, "default": r.name == cfg.default_remote, "local": r.local}
        for r in sorted(cfg.remotes.values(), key=lambda r: r.name)
    ]
    if as_json:
        print_json(rows)
        return
    console = _console()
    for row in rows:
        mark = " (default)" if row["default"] else ""
        local = " [local]" if row["local"] else ""
        console.print(f"{row['name']}\t{row['url']}{mark}{local}", markup=False)
    if not rows:
        console.print("no remotes (add one with `mltrail data remote add NAME URL --default`)")


@remote_app.command("remove")
def remote_remove(name: Annotated[str, typer.Argument(help="The remote's name.")]) -> None:
    """Remove a remote."""
    from mltrail.data.config import remove_remote

    with cli_errors():
        repo = _repo()
        remove_remote(repo.meta_dir, name)
    _console().print(f"removed remote {name}", markup=False)
