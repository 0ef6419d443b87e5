"""Past runs as OpenLineage events: what ``mltrail openlineage export`` sends.

A run gives its START event (as a live run sends it: the job, the run facets, no datasets)
and, once it has ended, its terminal event (COMPLETE, FAIL or ABORT, with its input and
output datasets), with the same ``runId`` a live run's events carry: a lineage server
that saw the live events merges the export into the same run.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from mltrail.entities import RunStatus
from mltrail.lineage_export import events, facts

if TYPE_CHECKING:
    from collections.abc import Iterable

    from mltrail.store.base import TrackingStore

__all__ = ["run_events", "send"]


def run_events(store: TrackingStore, run_id: str, job_namespace: str) -> list[Any]:
    """The events of one run, oldest first (``openlineage-python`` objects).

    Raises:
        NotFoundError: no such run.
        MissingExtraError: openlineage-python is not installed.
    """
    got = facts.from_store(store, run_id, job_namespace)
    start = dataclasses.replace(got, status=None, end_ms=None, inputs=(), outputs=(), error=None)
    out = [events.build_event(start, "START")]
    if got.status is not None and got.status is not RunStatus.RUNNING:
        out.append(events.build_event(got))
    return out


def send(client: Any, batch: Iterable[Any]) -> int:
    """Emit every event of ``batch`` through ``client`` (in order); how many were sent.

    Raises:
        Exception: what the transport raised (the caller reports it).
    """
    n = 0
    for event in batch:
        client.emit(event)
        n += 1
    return n
