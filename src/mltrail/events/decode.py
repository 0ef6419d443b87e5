"""Turn spool frames into batches."""

from __future__ import annotations

import os
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from mltrail.entities import RunStatus
from mltrail.events import codec
from mltrail.events.frames import ParsedWindow, parse_window
from mltrail.events.resync import Damage
from mltrail.events.spool import MAX_FRAME_BYTES, load_snapshot, read_frames
from mltrail.store.batch import Batch, MetricSeries, RunCreate, StatusChange

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["SpoolDecoder"]

_HDR = codec.FRAME_HEADER.size


class SpoolDecoder:
    """Reads one spool file and yields batches from a byte offset.

    Keeps the keyset table (declared once per spool, possibly before the offset it resumes
    from) and the header (the owner of the spool).

    Damage (a CRC mismatch, a damaged length, frames whose keyset was lost) never hides the
    frames after it: the decoder finds the next whole frame (:mod:`mltrail.events.resync`),
    records what it skipped in :attr:`damage`, and the batch covers the skipped bytes so the
    store's position moves past them. Bytes after the last whole frame are damage only when
    :attr:`final` is set (the owner is gone; a live spool's tail may still be being written).
    """

    def __init__(self, path: Path, source: str) -> None:
        self.path = path
        self.source = source
        self._fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        self.keysets: dict[int, list[str]] = {}
        self.header: dict[str, Any] = {}
        self.scanned = 0  # prefix already scanned for keysets
        #: the spool will not grow: an unreadable tail is damage, not a write in progress
        self.final = False
        #: what could not be read, in file order (each range reported once)
        self.damage: list[Damage] = []
        #: frames before this offset were released by the run (see SpoolAppender.release)
        self.released = 0
        self._load_snapshot()

    def _load_snapshot(self) -> None:
        """Take what a released prefix declared from the spool's ``.keys`` file."""
        try:
            snap = load_snapshot(self.path)
        except Exception:  # unreadable: the prefix, if still there, is scanned instead
            return
        if snap is None or snap["upto"] <= self.scanned:
            return
        self.header = self.header or snap["header"]
        self.keysets.update(snap["keysets"])
        self.released = self.scanned = snap["upto"]

    @property
    def corrupt_at(self) -> int | None:
        """Offset of the first damage found, if any."""
        return self.damage[0].start if self.damage else None

    def close(self) -> None:
        """Close the file."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def size(self) -> int:
        """Current size of the spool file in bytes."""
        return os.fstat(self._fd).st_size

    def run_id(self) -> str:
        """The run this spool belongs to (from its header, else from its name)."""
        return str(self.read_header().get("run_id", "")) or self.source.split(".", 1)[0]

    def _scan_prefix(self, upto: int) -> None:
        """Learn keysets and the header from frames before ``upto`` (already applied).

        Damage in the prefix was reported by whoever applied it; here it is only stepped over.
        """
        from mltrail.events.resync import find_next_frame

        while self.scanned < upto:
            got = read_frames(self._fd, self.scanned, min(4 << 20, upto - self.scanned) or 1)
            for _, payload in got.frames:
                kind = payload[0]
                if kind == codec.KIND_KEYSET:
                    body = codec.decode_json(payload)
                    self.keysets[int(body["id"])] = list(body["keys"])
                elif kind == codec.KIND_HEADER:
                    self.header = codec.decode_json(payload)
            if got.end == self.scanned or got.corrupt_at is not None:
                nxt = find_next_frame(self._fd, got.end, upto, self.keysets)
                if nxt is None:
                    break
                self.scanned = nxt
                continue
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
        if start < self.released:
            # a store that never took the released frames (the run applied them to the
            # store it was logging to, then gave their disk back): say so, go on after them
            self._record(Damage(start, self.released, "released after it was applied"))
            batch.end = self.released
            batch.run_id = self.run_id()
            return batch
        segments: dict[int, list[tuple[Any, Any, Any, Any]]] = defaultdict(list)
        frames = 0
        skipped = False
        while True:
            win = self._read_window(batch.end, max_bytes)
            for _, payload in win.events:
                self._decode_event(batch, payload)
            for ksid, segs in win.metrics.items():
                segments[ksid].extend((idx + frames, s, t, v) for idx, s, t, v in segs)
            frames += win.frames
            batch.end = win.end
            for lo, hi, n, pts in win.unnamed:
                self._record(Damage(lo, hi, "unknown keyset", n, pts))
                skipped = True
            if win.corrupt_at is not None or (win.frames == 0 and self.final):
                resumed = self._skip_damage(batch.end, win.corrupt_at is not None)
                if resumed is not None:
                    batch.end = resumed
                    skipped = True
                break
            if win.frames == 0:
                break
            # A window that held only the header (or keysets) ends where the next frame does
            # not fit, e.g. a RUN frame with a config over the window size. Alone, that batch
            # is for a run the store does not know yet: read on until it carries an event.
            if segments or not batch.is_empty():
                break
        if frames == 0 and not skipped:
            return None
        batch.run_id = self.run_id()
        self._columns(batch, segments)
        self.scanned = max(self.scanned, batch.end)
        return batch

    def _skip_damage(self, at: int, crc_failed: bool) -> int | None:
        """Where whole frames resume after damage at ``at``; the skipped range is recorded.

        None when there is nothing to skip: the file ends at ``at``, or (a live spool) no
        whole frame follows yet.
        """
        from mltrail.events.resync import describe_gap, find_next_frame

        size = self.size()
        if at >= size:
            return None
        nxt = find_next_frame(self._fd, at, size, self.keysets)
        if nxt is None:
            if not self.final:
                return None
            frames, points = describe_gap(self._fd, at, size, self.keysets, tail=True)
            reason = "crc mismatch" if crc_failed else "truncated tail"
            self._record(Damage(at, size, reason, frames, points))
            return size
        frames, points = describe_gap(self._fd, at, nxt, self.keysets)
        self._record(
            Damage(at, nxt, "crc mismatch" if crc_failed else "bad frame length", frames, points)
        )
        return nxt

    def _record(self, damage: Damage) -> None:
        if not any(d.start == damage.start for d in self.damage):
            self.damage.append(damage)

    def _read_window(self, start: int, max_bytes: int) -> ParsedWindow:
        buf = os.pread(self._fd, max_bytes, start)
        win = parse_window(buf, start, self.keysets)
        if win.frames or win.corrupt_at is not None or len(buf) < _HDR:
            return win
        length = int.from_bytes(buf[:4], "little")
        if length > MAX_FRAME_BYTES or length == 0:
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
            batch.metrics[key] = MetricSeries(
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
        elif kind == codec.KIND_PROJECT:
            batch.project = str(body["project"])
        elif kind == codec.KIND_STATE:
            batch.state[str(body["kind"])] = body["data"]
        elif kind == codec.KIND_CONSOLE:
            batch.console.extend((int(t), str(st), str(x)) for t, st, x in body["lines"])
        elif kind == codec.KIND_STATUS:
            batch.status = StatusChange(RunStatus(body["status"]), body.get("end_ms"))
