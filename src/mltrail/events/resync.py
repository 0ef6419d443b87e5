"""Finding the next whole frame after damage in a spool, and saying what the damage cost.

A spool frame is ``<u32 length><u32 crc32><payload>`` and carries no sync marker, but its
layout is strict enough to find frames again after damage: the payload starts with a known
kind byte, metric frames have a length fixed by their keyset, JSON events start with ``{``,
and the CRC must match. A candidate is accepted only when the frame after it is whole and
valid too (or the candidate ends the file), so a few bytes inside a blob that happen to look
like a frame are not taken for one. Candidates are found with one vectorised pass over the
damaged region; CRCs are computed only for the plausible ones.

Used by :class:`mltrail.events.decode.SpoolDecoder`: recovery keeps every intact frame after
a flipped byte, a torn write or a damaged length, and reports exactly which bytes it skipped.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mltrail.events import codec

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ["Damage", "describe_gap", "find_next_frame", "plausible"]

_HDR = codec.FRAME_HEADER.size
_MAX_FRAME = 64 * 1024 * 1024
_METRICS_FIXED = 21  # kind, keyset id, step, timestamp_ms
_JSON_KINDS = frozenset(
    {
        codec.KIND_HEADER,
        codec.KIND_KEYSET,
        codec.KIND_RUN,
        codec.KIND_PARAMS,
        codec.KIND_TAGS,
        codec.KIND_STATUS,
        codec.KIND_RESUME,
        codec.KIND_STATE,
        codec.KIND_CONSOLE,
    }
)
_SCAN_CHUNK = 4 << 20


@dataclass(frozen=True, slots=True)
class Damage:
    """Bytes of a spool that could not be read, and what was lost with them.

    Attributes:
        start: offset of the first damaged byte (where reading stopped).
        end: offset where whole frames resume (the file size for a damaged tail).
        reason: ``crc mismatch``, ``bad frame length``, ``truncated tail`` or
            ``unknown keyset`` (metric frames whose keyset declaration was lost).
        frames: frames lost, when the damaged bytes still tell (``None``: unknown).
        points: metric points lost, when the damaged bytes still tell (``None``: unknown).
    """

    start: int
    end: int
    reason: str
    frames: int | None = None
    points: int | None = None

    def describe(self) -> str:
        """``bytes 120-182 (crc mismatch): 1 frame, 5 points``."""
        what = []
        if self.frames is not None:
            what.append(f"{self.frames} frame{'' if self.frames == 1 else 's'}")
        if self.points is not None:
            what.append(f"{self.points} point{'' if self.points == 1 else 's'}")
        lost = ", ".join(what) if what else "frame count unknown"
        return f"bytes {self.start}-{self.end} ({self.reason}): {lost}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "end": self.end,
            "reason": self.reason,
            "frames": self.frames,
            "points": self.points,
        }


def plausible(payload: bytes | memoryview, metric_lengths: frozenset[int]) -> bool:
    """Whether a payload has the shape of an event (the checks besides the CRC)."""
    if not payload:
        return False
    kind = payload[0]
    n = len(payload)
    if kind == codec.KIND_METRICS:
        return n in metric_lengths if metric_lengths else (n - _METRICS_FIXED) % 8 == 0
    if kind == codec.KIND_HEARTBEAT:
        return n == 9
    if kind == codec.KIND_BLOB:
        return n >= 2 and 8 <= payload[1] <= 200
    if kind in _JSON_KINDS:
        return n >= 3 and payload[1] == 0x7B  # "{"
    return False


def _metric_lengths(keysets: Mapping[int, Sequence[str]]) -> frozenset[int]:
    return frozenset(_METRICS_FIXED + 8 * len(keys) for keys in keysets.values())


def _frame_at(
    fd: int, pos: int, size: int, lengths: frozenset[int], head: bytes | None = None
) -> int | None:
    """End of a valid frame at ``pos`` (``size`` counts as the end of the file), else None."""
    if head is None:
        head = os.pread(fd, _HDR, pos)
    if len(head) < _HDR:
        return None
    length, crc = codec.FRAME_HEADER.unpack(head)
    end = pos + _HDR + int(length)
    if length < 1 or length > _MAX_FRAME or end > size:
        return None
    payload = os.pread(fd, length, pos + _HDR)
    if len(payload) != length or zlib.crc32(payload) != crc or not plausible(payload, lengths):
        return None
    return end


def _confirmed(fd: int, pos: int, size: int, lengths: frozenset[int]) -> bool:
    """A frame at ``pos`` that ends the file or is followed by another valid frame."""
    end = _frame_at(fd, pos, size, lengths)
    if end is None:
        return False
    return end == size or _frame_at(fd, end, size, lengths) is not None


def _candidates(buf: bytes, base: int, size: int, lengths: frozenset[int]) -> list[int]:
    """Offsets in ``buf`` whose header and kind byte could start a frame (vectorised)."""
    import numpy as np

    n = len(buf) - _HDR
    if n <= 0:
        return []
    b = np.frombuffer(buf, np.uint8).astype(np.uint32)
    length = b[0:n] | (b[1 : n + 1] << 8) | (b[2 : n + 2] << 16) | (b[3 : n + 3] << 24)
    kind = b[_HDR : n + _HDR]
    offs = np.arange(n, dtype=np.int64) + base
    ok = (length >= 1) & (length <= _MAX_FRAME) & (offs + _HDR + length <= size)
    known = np.zeros(256, dtype=bool)
    known[list(_JSON_KINDS | {codec.KIND_METRICS, codec.KIND_HEARTBEAT, codec.KIND_BLOB})] = True
    ok &= known[kind]
    if lengths:
        metric = kind == codec.KIND_METRICS
        ok &= ~metric | np.isin(length, np.fromiter(lengths, np.uint32))
    ok &= (kind != codec.KIND_HEARTBEAT) | (length == 9)
    return [int(x) + base for x in np.flatnonzero(ok)]


def find_next_frame(
    fd: int, start: int, size: int, keysets: Mapping[int, Sequence[str]]
) -> int | None:
    """The offset of the first confirmed frame after ``start`` (exclusive), or None.

    Args:
        fd: the spool, open for reading.
        start: where the damage begins; the search starts one byte later.
        size: the file size to search up to.
        keysets: the keysets known so far (they fix the length of metric frames).
    """
    lengths = _metric_lengths(keysets)
    pos = start + 1
    while pos + _HDR < size:
        buf = os.pread(fd, min(_SCAN_CHUNK, size - pos), pos)
        if len(buf) <= _HDR:
            return None
        for cand in _candidates(buf, pos, size, lengths):
            if _confirmed(fd, cand, size, lengths):
                return cand
        pos += len(buf) - _HDR  # headers may straddle chunks: overlap by a header
    return None


def describe_gap(
    fd: int, start: int, end: int, keysets: Mapping[int, Sequence[str]], *, tail: bool = False
) -> tuple[int | None, int | None]:
    """``(frames, points)`` lost in ``[start, end)``, or ``None`` where the bytes don't tell.

    Walks the frame lengths from ``start``: when they lead exactly to ``end`` the frame count
    is known, and each metric frame whose keyset is intact counts its points. A damaged length
    that still spans exactly one metric frame of a known keyset counts as that frame. With
    ``tail`` (the gap ends the file), a last frame cut short counts as one frame.
    """
    buf = os.pread(fd, min(end - start, _MAX_FRAME + _HDR), start)
    frames = points = 0
    off = 0
    points_known = True
    while off + _HDR <= len(buf):
        length, _ = codec.FRAME_HEADER.unpack_from(buf, off)
        if length < 1 or off + _HDR + length > len(buf):
            if tail and length >= 1 and len(buf) == end - start and length <= _MAX_FRAME:
                got = _points_of_partial(buf[off + _HDR :], length, keysets)
                return frames + 1, (points + got if points_known and got is not None else None)
            break
        frames += 1
        got = _points_of(buf[off + _HDR : off + _HDR + length], keysets)
        if got is None:
            points_known = False
        else:
            points += got
        off += _HDR + length
    if off == len(buf) and off == end - start and frames:
        return frames, points if points_known else None
    if tail and len(buf) == end - start and 0 < len(buf) - off < _HDR:  # a header cut short
        return frames + 1, None
    # A damaged length or CRC: the bytes between may still be exactly one frame's payload.
    if end - start == len(buf) > _HDR:
        payload = buf[_HDR:]
        got = _points_of(payload, keysets)
        if got is not None and (got or plausible(payload, _metric_lengths(keysets))):
            return 1, got
    return None, None


def _points_of_partial(
    head: bytes, length: int, keysets: Mapping[int, Sequence[str]]
) -> int | None:
    """Points of a frame cut short, from its declared length and the first payload bytes."""
    if not head:
        return None
    if head[0] != codec.KIND_METRICS:
        return 0 if head[0] in _JSON_KINDS | {codec.KIND_HEARTBEAT, codec.KIND_BLOB} else None
    keys = keysets.get(int.from_bytes(head[1:5], "little")) if len(head) >= 5 else None
    if keys is not None:
        return len(keys)
    n, rest = divmod(length - _METRICS_FIXED, 8)
    return n if rest == 0 and n > 0 else None


def _points_of(payload: bytes, keysets: Mapping[int, Sequence[str]]) -> int | None:
    if not payload:
        return None
    if payload[0] != codec.KIND_METRICS:
        if plausible(payload, frozenset()):
            return 0
        # a damaged kind byte: the keyset id and the length still say "metrics of keyset k"
        keys = keysets.get(int.from_bytes(payload[1:5], "little")) if len(payload) > 5 else None
        if keys is not None and len(payload) == _METRICS_FIXED + 8 * len(keys):
            return len(keys)
        n = len(payload) - _METRICS_FIXED
        return 0 if n < 8 or n % 8 else None  # too short, or the wrong size, for metrics
    if len(payload) < _METRICS_FIXED:
        return None
    keys = keysets.get(int.from_bytes(payload[1:5], "little"))
    if keys is not None and len(payload) == _METRICS_FIXED + 8 * len(keys):
        return len(keys)
    n, rest = divmod(len(payload) - _METRICS_FIXED, 8)
    return n if rest == 0 else None
