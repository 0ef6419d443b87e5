"""A run as one batch: read everything a store keeps of a run, write it as one atomic batch,
and fingerprint it so two stores can be compared.

The batch is applied under the ingest source ``copy:<run id>`` (offsets 0 to 1): a retry, or
a second copy, is a no-op the destination itself recognises.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mltrail.entities import RunStatus
from mltrail.errors import NotFoundError

if TYPE_CHECKING:
    from mltrail.entities import RunRecord
    from mltrail.store.base import TrackingStore
    from mltrail.store.batch import Batch, MetricSeries
    from mltrail.store.copy.endpoint import RunFileBytes

__all__ = ["RunData", "read_run", "run_batch", "run_fingerprint"]

_BLOB = re.compile(r"sha256:[0-9a-f]{64}")
#: the heartbeat interval given to a copied run (stores do not expose the original's)
COPIED_HEARTBEAT_S = 5.0


@dataclass
class RunData:
    """Everything a store keeps of one run."""

    record: RunRecord
    series: dict[str, MetricSeries]
    state: dict[str, dict[str, Any]]
    blobs: dict[str, bytes]
    console: list[tuple[int, str, str]]

    @property
    def points(self) -> int:
        """Metric points of the run."""
        return sum(len(s) for s in self.series.values())

    @property
    def payload_bytes(self) -> int:
        """About how many bytes the run's data is (points at 24 bytes, blobs, console)."""
        return (
            self.points * 24
            + sum(len(b) for b in self.blobs.values())
            + sum(len(t) for _, _, t in self.console)
        )


def _blob_digests(doc: Any) -> set[str]:
    """Every ``sha256:<hex>`` named anywhere in a state document (diffs, lock files...)."""
    return set(_BLOB.findall(json.dumps(doc)))


def read_run(store: TrackingStore, run_id: str) -> RunData:
    """Read one run whole from ``store``.

    Raises:
        NotFoundError: no such run.
    """
    record = store.get_run(run_id)
    series = {key: store.metric_history(run_id, key) for key in sorted(record.metrics)}
    state = store.get_state(run_id)
    blobs: dict[str, bytes] = {}
    for digest in sorted(_blob_digests(state)):
        try:
            blobs[digest] = store.get_blob(digest)
        except NotFoundError:
            continue  # named but never stored (too large to keep): nothing to copy
    console = [(c.timestamp_ms, c.stream, c.text) for c in store.read_console(run_id)]
    return RunData(record, series, state, blobs, console)


def run_batch(data: RunData) -> Batch:
    """The one batch that creates ``data``'s run in another store as it is."""
    from mltrail.store.batch import Batch, MetricSeries, RunCreate, StatusChange

    r = data.record
    status = None
    if r.status is not RunStatus.RUNNING:
        status = StatusChange(r.status, r.end_ms)
    return Batch(
        run_id=r.run_id,
        source=f"copy:{r.run_id}",
        start=0,
        end=1,
        create=RunCreate(
            project=r.project,
            name=r.name,
            created_ms=r.created_ms,
            heartbeat_s=COPIED_HEARTBEAT_S,
            user=r.user,
            host=r.host,
            command=r.command,
            config=r.config,
        ),
        params=dict(r.params),
        tags=dict(r.tags),
        metrics={k: MetricSeries(s.steps, s.timestamps, s.values) for k, s in data.series.items()},
        heartbeat_ms=r.heartbeat_ms,
        status=status,
        state=data.state,
        blobs=data.blobs,
        console=data.console,
    )


def run_fingerprint(data: RunData, files: list[tuple[str, str, int]]) -> str:
    """A digest of everything compared between two stores: the record (params, tags, config,
    status, times, summaries), every series point bit for bit, state, blobs, console, files.
    """
    h = hashlib.sha256()
    record = data.record.to_dict()
    h.update(json.dumps(record, sort_keys=True, default=str).encode())
    for key, s in sorted(data.series.items()):
        h.update(key.encode() + b"\0")
        for column in (s.steps, s.timestamps, s.values):
            h.update(column.astype(column.dtype.newbyteorder("<")).tobytes())
    h.update(json.dumps(data.state, sort_keys=True, default=str).encode())
    for digest in sorted(data.blobs):
        h.update(digest.encode() + hashlib.sha256(data.blobs[digest]).digest())
    h.update(json.dumps(data.console).encode())
    h.update(json.dumps(sorted(files)).encode())
    return h.hexdigest()


def file_rows(files: RunFileBytes | None, run_id: str) -> list[tuple[str, str, int]]:
    """``(path, digest, size)`` of a run's files (none when the store keeps none)."""
    if files is None:
        return []
    return [(f.path, f.digest, f.size) for f in files.list(run_id)]
