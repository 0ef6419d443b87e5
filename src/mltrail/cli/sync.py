"""``mltrail sync``: apply spools left behind by processes that died."""

from __future__ import annotations

from typing import TYPE_CHECKING

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
    from mltrail.events.recovery import Recovered
    from mltrail.store.registry import StoreLocation

__all__ = ["sync"]


def _count_spools(location: StoreLocation) -> int:
    from mltrail.events.spool import SPOOL_SUFFIX

    folder = location.spool_dir
    return sum(1 for _ in folder.glob(f"*{SPOOL_SUFFIX}")) if folder.is_dir() else 0


def sync(as_json: JsonOption = False, store: StoreOption = None) -> None:
    """Apply leftover spools to the store now and mark their runs crashed.

    Spools still locked by a live process belong to running runs; they are skipped.
    """
    from mltrail.store.registry import resolve_location

    recovered: list[Recovered] = []
    with cli_errors():
        location = resolve_location(store)
        if store_exists(location) or has_spools(location):
            from mltrail.api import Api

            recovered = Api(store).recovered
        skipped = _count_spools(location)
    if as_json:
        print_json(
            {
                "store": location.display,
                "recovered": [
                    {
                        "run_id": r.run_id,
                        "source": r.source,
                        "batches": r.batches,
                        "points": r.points,
                        "corrupt_at": r.corrupt_at,
                        "error": r.error,
                    }
                    for r in recovered
                ],
                "skipped": skipped,
            }
        )
        return
    _print_report(recovered, skipped)


def _note(r: Recovered) -> str:
    notes = []
    if r.corrupt_at is not None:
        notes.append(f"corrupt tail at byte {r.corrupt_at} dropped")
    if r.error is not None:
        notes.append(f"not applied: {r.error} (kept as .spool.bad)")
    return "; ".join(notes)


def _print_report(recovered: list[Recovered], skipped: int) -> None:
    from rich.table import Table
    from rich.text import Text

    console = stdout_console()
    if recovered:
        table = Table(box=None, header_style="bold", pad_edge=False)
        table.add_column("run", no_wrap=True, style="cyan")
        table.add_column("batches", justify="right")
        table.add_column("points", justify="right")
        table.add_column("note")
        for r in recovered:
            table.add_row(Text(r.run_id or "?"), str(r.batches), str(r.points), Text(_note(r)))
        n = len(recovered)
        console.print(f"recovered {n} spool{'' if n == 1 else 's'} (runs marked crashed):")
        console.print(table)
    else:
        console.print("nothing to sync")
    if skipped:
        console.print(
            f"skipped {skipped} spool{'' if skipped == 1 else 's'} still held by a running process"
        )
