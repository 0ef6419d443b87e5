"""Fast parsing of a window of spool bytes into metric columns and other events.

Training loops log the same keyset step after step, so a spool is mostly runs of
identical-layout METRICS frames. Such a run is viewed as a NumPy structured array in place
(one ``frombuffer``), checked for layout in one vectorised comparison, and CRC-checked frame
by frame (``zlib.crc32`` in C); everything else is parsed one frame at a time.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mltrail.events import codec

__all__ = ["ParsedWindow", "parse_window"]

_HDR = codec.FRAME_HEADER.size
_MIN_BULK = 4  # frames; shorter runs take the per-frame path
_dtypes: dict[int, np.dtype[Any]] = {}


def _frame_dtype(n_keys: int) -> np.dtype[Any]:
    dt = _dtypes.get(n_keys)
    if dt is None:
        dt = _dtypes[n_keys] = np.dtype(
            [
                ("len", "<u4"),
                ("crc", "<u4"),
                ("kind", "u1"),
                ("ks", "<u4"),
                ("step", "<i8"),
                ("ts", "<i8"),
                ("v", "<f8", (n_keys,)),
            ]
        )
    return dt


@dataclass(slots=True)
class ParsedWindow:
    """The whole frames of one window.

    Attributes:
        end: absolute offset just past the last whole, valid frame.
        corrupt_at: absolute offset of a frame whose CRC does not match, if any.
        frames: number of frames parsed.
        events: non-metric payloads in order, as ``(frame index, payload)``.
        metrics: per keyset id, segments of ``(frame indices, steps, timestamps, values[n, k])``.
        unnamed: metric frames skipped because their keyset is unknown (its declaration was
            damaged), as ``[start, end, frames, points]`` ranges of adjacent frames.
    """

    end: int
    corrupt_at: int | None = None
    frames: int = 0
    events: list[tuple[int, memoryview]] = field(default_factory=list)
    metrics: dict[int, list[tuple[Any, Any, Any, Any]]] = field(default_factory=dict)
    unnamed: list[list[int]] = field(default_factory=list)


def _lose(out: ParsedWindow, start: int, end: int, points: int) -> None:
    """Count a metric frame that cannot be named (merged with an adjacent one)."""
    if out.unnamed and out.unnamed[-1][1] == start:
        last = out.unnamed[-1]
        last[1], last[2], last[3] = end, last[2] + 1, last[3] + points
    else:
        out.unnamed.append([start, end, 1, points])


def parse_window(buf: bytes, base: int, keysets: dict[int, list[str]]) -> ParsedWindow:
    """Parse whole frames of ``buf`` (read at absolute offset ``base``).

    KEYSET frames update ``keysets`` as they are met (they precede the metrics that use them).
    Parsing stops at an incomplete tail frame or at a CRC mismatch; metric frames of an
    unknown keyset are skipped and counted in ``unnamed``.
    """
    view = memoryview(buf)
    n = len(buf)
    out = ParsedWindow(end=base)
    unpack = codec.FRAME_HEADER.unpack_from
    crc32 = zlib.crc32
    singles: dict[int, list[tuple[Any, ...]]] = {}
    single_idx: dict[int, list[int]] = {}
    off = 0
    index = 0
    while off + _HDR <= n:
        length, crc = unpack(view, off)
        end = off + _HDR + length
        if end > n:
            break
        payload = view[off + _HDR : end]
        if not length or crc32(payload) != crc:
            out.corrupt_at = base + off
            break
        kind = payload[0]
        if kind != codec.KIND_METRICS:
            if kind == codec.KIND_KEYSET:
                body = codec.decode_json(payload)
                keysets[int(body["id"])] = list(body["keys"])
            else:
                out.events.append((index, payload))
            off, index = end, index + 1
            continue
        ksid = int.from_bytes(payload[1:5], "little")
        keys = keysets.get(ksid)
        if keys is None:  # its KEYSET frame was damaged: the values have no names
            _lose(out, base + off, base + end, (length - 21) // 8)
            off, index = end, index + 1
            continue
        size = _HDR + length
        count = (n - off) // size
        if count >= _MIN_BULK:
            taken, bad = _bulk(buf, view, off, count, length, ksid, len(keys))
            if taken:
                rows = np.frombuffer(buf, _frame_dtype(len(keys)), taken, off)
                out.metrics.setdefault(ksid, []).append(
                    (np.arange(index, index + taken), rows["step"], rows["ts"], rows["v"])
                )
                off += taken * size
                index += taken
                if bad:
                    out.corrupt_at = base + off
                    break
                continue
        singles.setdefault(ksid, []).append(codec.metrics_struct(len(keys)).unpack_from(payload))
        single_idx.setdefault(ksid, []).append(index)
        off, index = end, index + 1
    for ksid, rows_ in singles.items():
        cols = list(zip(*rows_, strict=True))
        values = np.array(cols[codec.METRICS_PREFIX_FIELDS :], dtype=np.float64).T
        out.metrics.setdefault(ksid, []).append(
            (
                np.array(single_idx[ksid]),
                np.array(cols[2], np.int64),
                np.array(cols[3], np.int64),
                values.reshape(len(rows_), -1),
            )
        )
    out.end = base + off
    out.frames = index
    return out


def _bulk(
    buf: bytes, view: memoryview, off: int, count: int, length: int, ksid: int, n_keys: int
) -> tuple[int, bool]:
    """How many frames from ``off`` share this layout and pass their CRC; and whether a CRC
    failed (corruption) at the first frame not taken."""
    dt = _frame_dtype(n_keys)
    if dt.itemsize != _HDR + length:
        return 0, False
    rows = np.frombuffer(buf, dt, count, off)
    same = (rows["len"] == length) & (rows["kind"] == codec.KIND_METRICS) & (rows["ks"] == ksid)
    taken = count if bool(same.all()) else int(np.argmin(same))
    crcs = rows["crc"][:taken].tolist()
    crc32 = zlib.crc32
    size = _HDR + length
    p = off + _HDR
    for i, expected in enumerate(crcs):
        if crc32(view[p : p + length]) != expected:
            return i, True
        p += size
    return taken, False
