"""Turn spool frames into batches."""

from __future__ import annotations

import os
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from mltrail.entities import RunStatus
from mltrail.errors import IntegrityError
from mltrail.events import codec
from mltrail.events.batch import Batch, MetricColumns, RunCreate, StatusChange
from mltrail.events.spool import read_frames

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["SpoolDecoder"]


class SpoolDecoder:
    """Reads one spool file and yields batches from a byte offset.

    Keeps the keyset table (declared once per spool, possibly before the offset it resumes
    from) and the header (the owner of the spool).
    """

    def __init__(self, path: Path, source: str) -> None:
        self.path = path
        self.source = source
        self._fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        self.keysets: dict[int, list[str]] = {}
        self.header: dict[str, Any] = {}
        self.scanned = 0  # prefix already scanned for keysets
        self.corrupt_at: int | None = None

    def close(self) -> None:
        """Close the file."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def size(self) -> int:
        """Current size of the spool file in bytes."""
        return os.fstat(self._fd).st_size

    def _scan_prefix(self, upto: int) -> None:
        """Learn keysets and the header from frames before ``upto`` (already applied)."""
        while self.scanned < upto:
            got = read_frames(self._fd, self.scanned, min(4 << 20, upto - self.scanned) or 1)
            for _, payload in got.frames:
                kind = payload[0]
                if kind == codec.KIND_KEYSET:
                    body = codec.decode_json(payload)
                    self.keysets[int(body["id"])] = list(body["keys"])
                elif kind == codec.KIND_HEADER:
                    self.header = codec.decode_json(payload)
            if got.end == self.scanned:
                break
            self.scanned = got.end

    def read_header(self) -> dict[str, Any]:
        """The spool's header frame (its first frame)."""
        if not self.header:
            got = read_frames(self._fd, 0, 64 * 1024)
            if got.frames and got.frames[0][1][0] == codec.KIND_HEADER:
                self.header = codec.decode_json(got.frames[0][1])
        return self.header

    def next_batch(self, start: int, max_bytes: int = 4 << 20) -> Batch | None:
        """Decode the whole frames from ``start`` (about ``max_bytes``); None at the end."""
        if start > self.scanned:
            self._scan_prefix(start)
        got = read_frames(self._fd, start, max_bytes)
        if got.corrupt_at is not None:
            self.corrupt_at = got.corrupt_at
        if not got.frames:
            return None
        run_id = str(self.read_header().get("run_id", ""))
        batch = Batch(run_id=run_id, source=self.source, start=start, end=got.end)
        self._decode_into(batch, got.frames)
        # A window that held only the header (or keysets) ends where the next frame does
        # not fit, e.g. a RUN frame with a config over the window size. Alone, that batch
        # is for a run the store does not know yet: read on until it carries an event.
        while batch.is_empty() and got.corrupt_at is None:
            got = read_frames(self._fd, batch.end, max_bytes)
            if got.corrupt_at is not None:
                self.corrupt_at = got.corrupt_at
            if not got.frames:
                break
            self._decode_into(batch, got.frames)
            batch.end = got.end
        self.scanned = max(self.scanned, batch.end)
        return batch

    def _decode_into(self, batch: Batch, frames: list[tuple[int, memoryview]]) -> None:
        import numpy as np

        rows: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
        order: dict[int, list[int]] = defaultdict(list)
        keysets = self.keysets
        for index, (_, payload) in enumerate(frames):
            kind = payload[0]
            if kind == codec.KIND_METRICS:
                ksid = int.from_bytes(payload[1:5], "little")
                keys = keysets.get(ksid)
                if keys is None:
                    raise IntegrityError(
                        f"spool {self.path}: metrics refer to unknown keyset {ksid}"
                    )
                rows[ksid].append(codec.metrics_struct(len(keys)).unpack_from(payload))
                order[ksid].append(index)
            elif kind == codec.KIND_HEARTBEAT:
                batch.heartbeat_ms = codec.decode_heartbeat(payload)
            elif kind == codec.KIND_KEYSET:
                body = codec.decode_json(payload)
                keysets[int(body["id"])] = list(body["keys"])
            else:
                self._decode_json_event(batch, kind, codec.decode_json(payload))
        parts: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
        skip = codec.METRICS_PREFIX_FIELDS
        for ksid, ks_rows in rows.items():
            cols = list(zip(*ks_rows, strict=True))
            steps = np.array(cols[2], dtype=np.int64)
            stamps = np.array(cols[3], dtype=np.int64)
            seq = np.array(order[ksid], dtype=np.int64)
            for i, key in enumerate(keysets[ksid]):
                values = np.array(cols[skip + i], dtype=np.float64)
                parts[key].append((steps, stamps, values, seq))
        for key, chunks in parts.items():
            if len(chunks) == 1:
                s, t, v, _ = chunks[0]
            else:  # a key logged through several keysets: restore the logging order
                s, t, v, q = (np.concatenate(c) for c in zip(*chunks, strict=True))
                by_frame = np.argsort(q, kind="stable")
                s, t, v = s[by_frame], t[by_frame], v[by_frame]
            batch.metrics[key] = MetricColumns(s, t, v)

    def _decode_json_event(self, batch: Batch, kind: int, body: dict[str, Any]) -> None:
        if kind == codec.KIND_HEADER:
            self.header = body
        elif kind == codec.KIND_RUN:
            batch.create = RunCreate.from_dict(body)
            batch.params.update(body.get("params", {}))
            batch.tags.update(body.get("tags", {}))
        elif kind == codec.KIND_RESUME:
            batch.resume_ms = int(body["timestamp_ms"])
        elif kind == codec.KIND_PARAMS:
            batch.params.update(body)
        elif kind == codec.KIND_TAGS:
            batch.tags.update(body)
        elif kind == codec.KIND_STATUS:
            batch.status = StatusChange(RunStatus(body["status"]), body.get("end_ms"))
