"""``mltrail sync``: apply spools left behind by processes that died.

Spools for PostgreSQL and server stores live in the cache (``$MLTRAIL_CACHE_DIR/spool/``),
one folder per store URI. When a server's URL changes, spools written for the old URL wait
in the old folder: ``sync`` lists them, ``--from OLD`` applies them to the store named, and
``--all`` applies every leftover to the store it was written for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from mltrail.cli._common import (
    JsonOption,
    StoreOption,
    cli_errors,
    has_spools,
    print_json,
    stdout_console,
    store_exists,
)

if TYPE_CHECKING:
    from pathlib import Path

    from mltrail.events.recovery import Recovered
    from mltrail.store.registry import StoreLocation

__all__ = ["sync"]

FromOption = Annotated[
    str | None,
    typer.Option(
        "--from",
        metavar="URI",
        help="Apply the spools left for another store (an old server URL, a directory) "
        "to the store named by --store.",
        show_default=False,
    ),
]
AllOption = Annotated[
    bool,
    typer.Option("--all", help="Apply every leftover spool in the cache to its own store."),
]


def _count_spools(folder: Path) -> int:
    from mltrail.events.spool import SPOOL_SUFFIX

    return sum(1 for _ in folder.glob(f"*{SPOOL_SUFFIX}")) if folder.is_dir() else 0


def _recover(location: StoreLocation, spool_dir: Path) -> list[Recovered]:
    from mltrail.events.recovery import recover_spools
    from mltrail.store.registry import open_store

    if not (store_exists(location) or spool_dir.is_dir()):
        return []
    return recover_spools(open_store(location), spool_dir)


def sync(
    as_json: JsonOption = False,
    store: StoreOption = None,
    from_: FromOption = None,
    all_: AllOption = False,
) -> None:
    """Apply leftover spools to the store now and mark their runs crashed.

    Spools still locked by a live process belong to running runs; they are skipped. A spool
    with damaged bytes is applied around the damage, reported, and kept as ``.damaged``.
    """
    from mltrail.store.registry import resolve_location

    results: dict[str, list[Recovered]] = {}
    with cli_errors():
        location = resolve_location(store)
        if all_:
            results = _sync_all(location)
        elif from_ is not None:
            source = resolve_location(from_)
            results[location.display] = _recover(location, source.spool_dir)
        elif store_exists(location) or has_spools(location):
            from mltrail.api import Api

            results[location.display] = Api(store).recovered
        else:
            results[location.display] = []
        skipped = _count_spools(location.spool_dir)
        waiting = _others_waiting(location)
    if as_json:
        print_json(
            {
                "store": location.display,
                "recovered": [r.to_dict() for rs in results.values() for r in rs],
                "by_store": {k: [r.to_dict() for r in rs] for k, rs in results.items()},
                "skipped": skipped,
                "waiting": {k: [str(p) for p in v] for k, v in waiting.items()},
            }
        )
        return
    _print_report(results, skipped, waiting)


def _sync_all(current: StoreLocation) -> dict[str, list[Recovered]]:
    """Every leftover in the cache applied to the store its header names, plus ``current``."""
    from mltrail.errors import MltrailError
    from mltrail.events.recovery import leftover_spools
    from mltrail.settings import settings
    from mltrail.store.registry import resolve_location

    results = {current.display: _recover(current, current.spool_dir)}
    for uri, paths in leftover_spools(settings().cache_dir / "spool").items():
        if uri in results or uri.startswith("unknown store"):
            continue
        try:
            location = resolve_location(uri)
            results[uri] = _recover(location, paths[0].parent)
        except MltrailError as exc:
            stdout_console().print(f"{uri}: {len(paths)} spools not applied: {exc}", markup=False)
    return results


def _others_waiting(current: StoreLocation) -> dict[str, list[Path]]:
    from mltrail.events.recovery import leftover_spools
    from mltrail.settings import settings

    found = leftover_spools(settings().cache_dir / "spool")
    return {k: v for k, v in found.items() if k != current.display}


def _notes(r: Recovered) -> list[str]:
    notes = [d.describe() for d in r.damage]
    if r.error is not None:
        notes.append(f"not applied: {r.error}")
    if r.kept:
        notes.append(f"spool kept at {r.kept}")
    return notes


def _print_report(
    results: dict[str, list[Recovered]], skipped: int, waiting: dict[str, list[Path]]
) -> None:
    from rich.table import Table
    from rich.text import Text

    console = stdout_console()
    for store, recovered in results.items():
        if not recovered:
            console.print(
                "nothing to sync" + (f" for {store}" if len(results) > 1 else ""), markup=False
            )
            continue
        table = Table(box=None, header_style="bold", pad_edge=False)
        table.add_column("run", no_wrap=True, style="cyan")
        table.add_column("batches", justify="right")
        table.add_column("points", justify="right")
        for r in recovered:
            table.add_row(Text(r.run_id or "?"), str(r.batches), str(r.points))
        n = len(recovered)
        console.print(
            f"{store}: recovered {n} spool{'' if n == 1 else 's'} (runs marked crashed):",
            markup=False,
        )
        console.print(table)
        for r in recovered:
            for note in _notes(r):  # full lines: a narrow table column would cut them
                console.print(f"  {r.run_id or '?'}: {note}", markup=False, soft_wrap=True)
        damaged = [r for r in recovered if r.damage]
        if damaged:
            console.print(
                f"[yellow]{len(damaged)} spool{'' if len(damaged) == 1 else 's'} had damaged "
                "bytes: every intact frame was applied; the spools are kept as .damaged[/]"
            )
    if skipped:
        console.print(
            f"skipped {skipped} spool{'' if skipped == 1 else 's'} still held by a running process"
        )
    for store, paths in waiting.items():
        console.print(
            f"{len(paths)} spool{'' if len(paths) == 1 else 's'} wait for {store} "
            f"(in {paths[0].parent}): `mltrail sync --from {store}` applies them to this "
            "store, `mltrail sync --all` to their own",
            markup=False,
        )
