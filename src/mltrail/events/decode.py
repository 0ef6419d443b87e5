"""Turn spool frames into batches."""

from __future__ import annotations

import os
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from mltrail.entities import RunStatus
from mltrail.events import codec
from mltrail.events.batch import Batch, MetricColumns, RunCreate, StatusChange
from mltrail.events.frames import ParsedWindow, parse_window
from mltrail.events.spool import MAX_FRAME_BYTES, read_frames

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["SpoolDecoder"]

_HDR = codec.FRAME_HEADER.size


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
        batch = Batch(run_id="", source=self.source, start=start, end=start)
        segments: dict[int, list[tuple[Any, Any, Any, Any]]] = defaultdict(list)
        frames = 0
        while True:
            win = self._read_window(batch.end, max_bytes)
            if win.corrupt_at is not None:
                self.corrupt_at = win.corrupt_at
            if win.frames == 0:
                break
            for _, payload in win.events:
                self._decode_event(batch, payload)
            for ksid, segs in win.metrics.items():
                segments[ksid].extend((idx + frames, s, t, v) for idx, s, t, v in segs)
            frames += win.frames
            batch.end = win.end
            # A window that held only the header (or keysets) ends where the next frame does
            # not fit, e.g. a RUN frame with a config over the window size. Alone, that batch
            # is for a run the store does not know yet: read on until it carries an event.
            if win.corrupt_at is not None or segments or not batch.is_empty():
                break
        if frames == 0:
            return None
        batch.run_id = str(self.read_header().get("run_id", ""))
        self._columns(batch, segments)
        self.scanned = max(self.scanned, batch.end)
        return batch

    def _read_window(self, start: int, max_bytes: int) -> ParsedWindow:
        buf = os.pread(self._fd, max_bytes, start)
        win = parse_window(buf, start, self.keysets)
        if win.frames or win.corrupt_at is not None or len(buf) < _HDR:
            return win
        length = int.from_bytes(buf[:4], "little")
        if length > MAX_FRAME_BYTES:
            win.corrupt_at = start
        elif _HDR + length > len(buf) == max_bytes:  # one frame larger than the window
            win = parse_window(os.pread(self._fd, _HDR + length, start), start, self.keysets)
        return win

    def _columns(self, batch: Batch, segments: dict[int, list[tuple[Any, Any, Any, Any]]]) -> None:
        import numpy as np

        parts: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
        for ksid, segs in segments.items():
            if len(segs) == 1:
                idx, steps, stamps, vals = segs[0]
            else:
                idx, steps, stamps, vals = (np.concatenate(c) for c in zip(*segs, strict=True))
            for i, key in enumerate(self.keysets[ksid]):
                parts[key].append((steps, stamps, vals[:, i], idx))
        for key, chunks in parts.items():
            if len(chunks) == 1:
                s, t, v, _ = chunks[0]
            else:  # a key logged through several keysets: restore the logging order
                s, t, v, q = (np.concatenate(c) for c in zip(*chunks, strict=True))
                by_frame = np.argsort(q, kind="stable")
                s, t, v = s[by_frame], t[by_frame], v[by_frame]
            batch.metrics[key] = MetricColumns(
                np.ascontiguousarray(s, np.int64),
                np.ascontiguousarray(t, np.int64),
                np.ascontiguousarray(v, np.float64),
            )

    def _decode_event(self, batch: Batch, payload: memoryview) -> None:
        kind = payload[0]
        if kind == codec.KIND_HEARTBEAT:
            batch.heartbeat_ms = codec.decode_heartbeat(payload)
        elif kind == codec.KIND_BLOB:
            digest, content = codec.decode_blob(payload)
            batch.blobs[digest] = content
        else:
            self._decode_json_event(batch, kind, codec.decode_json(payload))

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
        elif kind == codec.KIND_STATE:
            batch.state[str(body["kind"])] = body["data"]
        elif kind == codec.KIND_CONSOLE:
            batch.console.extend((int(t), str(st), str(x)) for t, st, x in body["lines"])
        elif kind == codec.KIND_STATUS:
            batch.status = StatusChange(RunStatus(body["status"]), body.get("end_ms"))
