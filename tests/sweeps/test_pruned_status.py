"""The run status `pruned`: stored, read back, searched, printed, on every backend."""

from __future__ import annotations

import mltrail
from mltrail.entities import RunStatus
from mltrail.store.registry import open_store


def test_pruned_round_trips_and_filters(store_uri):
    """A run ended `pruned` reads back pruned (finished, not running), and the filter
    `status = 'pruned'` finds exactly it."""
    with mltrail.init(store=store_uri, capture=False) as kept:
        mltrail.log({"loss": 1.0})
    pruned = mltrail.init(store=store_uri, capture=False)
    mltrail.log({"loss": 2.0})
    pruned.finish(RunStatus.PRUNED)
    s = open_store(store_uri, shared=False)
    rec = s.get_run(pruned.run_id)
    assert rec.status is RunStatus.PRUNED and rec.status.is_finished()
    assert rec.end_ms is not None
    found = s.search_runs(filter="status = 'pruned'").runs
    assert [r.run_id for r in found] == [pruned.run_id]
    assert s.get_run(kept.run_id).status is RunStatus.FINISHED
    s.close()


def test_pruned_is_styled_in_the_cli_and_the_ui():
    """The CLI and the UI have a style for `pruned` like every other status."""
    from pathlib import Path

    import mltrail.server.ui as ui
    from mltrail.cli._light import STATUS_STYLES

    assert set(STATUS_STYLES) == {s.value for s in RunStatus}
    css = (Path(ui.__file__).parent / "static" / "ui.css").read_text()
    assert all(f".st-{s.value}" in css for s in RunStatus)
