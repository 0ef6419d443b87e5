"""What ``mltrail metrics`` does: export whole metric series as CSV or JSON, without Typer.

The Typer command (:mod:`mltrail.cli.metrics`) and the console script's fast path
(:mod:`mltrail.cli._fast`) both call :func:`export`.

Values are written so that they read back bit-for-bit: finite floats with ``repr`` (the
shortest string that round-trips), non-finite ones as ``NaN``/``inf``/``-inf`` in CSV and as
the strings ``"NaN"``/``"Infinity"``/``"-Infinity"`` in JSON (which has no literal for them).
Series are written in slices, never as one giant string.
"""

from __future__ import annotations

import contextlib
import csv
import enum
import json
import math
import os
import sys
import tempfile
import unicodedata
from typing import TYPE_CHECKING, Any, TextIO

from mltrail.cli._light import CommandError, open_api
from mltrail.errors import NotFoundError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from pathlib import Path

    import numpy.typing as npt

    from mltrail.store.base import MetricSeries

__all__ = ["SLICE", "ExportFormat", "export", "write_csv", "write_json"]

SLICE = 65_536  # points converted and written at a time
_CSV_SPECIAL = {"nan": "NaN", "inf": "inf", "-inf": "-inf"}
_JSON_SPECIAL = {"nan": '"NaN"', "inf": '"Infinity"', "-inf": '"-Infinity"'}


class ExportFormat(enum.StrEnum):
    """Output formats of ``mltrail metrics``."""

    CSV = "csv"
    JSON = "json"


def _value_text(x: float, special: dict[str, str]) -> str:
    return repr(x) if math.isfinite(x) else special[repr(x)]


def _lists(values: npt.NDArray[Any]) -> Iterator[list[Any]]:
    """``values`` as Python lists of at most :data:`SLICE` items."""
    for i in range(0, len(values), SLICE):
        yield values[i : i + SLICE].tolist()


def write_csv(out: TextIO, series: Iterable[MetricSeries]) -> None:
    """Write ``key,step,timestamp_ms,value`` rows, one per point, with a header line.

    Args:
        out: a text stream (opened with ``newline=""`` when it is a file).
        series: the series to write, in order.
    """
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("key", "step", "timestamp_ms", "value"))
    for s in series:
        parts = zip(_lists(s.steps), _lists(s.timestamps), _lists(s.values), strict=True)
        for steps, stamps, values in parts:
            texts = [_value_text(v, _CSV_SPECIAL) for v in values]
            writer.writerows(zip([s.key] * len(steps), steps, stamps, texts, strict=True))


def write_json(out: TextIO, run_id: str, series: Iterable[MetricSeries]) -> None:
    """Write ``{"run_id": ..., "series": {key: {"steps", "timestamps_ms", "values"}}}``.

    Strict JSON: non-finite values are the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``.

    Args:
        out: a text stream.
        run_id: the full run id.
        series: the series to write, in order.
    """
    out.write(f'{{"run_id": {json.dumps(run_id)}, "series": {{')
    for n, s in enumerate(series):
        out.write(f'{"," if n else ""}\n  {json.dumps(s.key)}: {{"steps": ')
        _json_array(out, (", ".join(map(str, part)) for part in _lists(s.steps)))
        out.write(', "timestamps_ms": ')
        _json_array(out, (", ".join(map(str, part)) for part in _lists(s.timestamps)))
        out.write(', "values": ')
        _json_array(
            out,
            (", ".join([_value_text(v, _JSON_SPECIAL) for v in part]) for part in _lists(s.values)),
        )
        out.write("}")
    out.write("\n}}\n")


def _json_array(out: TextIO, parts: Iterable[str]) -> None:
    """Write ``[a, b, ...]`` from comma-separated slices (empty slices skipped)."""
    out.write("[")
    sep = ""
    for text in parts:
        if text:
            out.write(sep + text)
            sep = ", "
    out.write("]")


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def _output(path: Path | None) -> Iterator[TextIO]:
    """stdout, or a file written under a temporary name and renamed into place when whole."""
    if path is None:
        yield sys.stdout
        sys.stdout.flush()
        return
    target = path.expanduser()
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            yield f
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give it a normal file's mode
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def export(
    run: str, keys: list[str] | None, fmt: ExportFormat, output: Path | None, store: str | None
) -> None:
    """Write the series of ``keys`` (every key when None or empty) of ``run``.

    Raises:
        MltrailError: no store, no such run, or no such key.
        CommandError: ``output`` cannot be written.
    """
    api = open_api(store)
    record = api.run(run)
    # keys are stored NFC-normalised; match what the user typed the same way
    typed = [unicodedata.normalize("NFC", k) for k in keys or ()]
    wanted = list(dict.fromkeys(typed)) if typed else sorted(record.metrics)
    missing = [k for k in wanted if k not in record.metrics]
    if missing:
        raise NotFoundError(
            f"run {record.run_id} has no metric {missing[0]!r}"
            + (f" (it has: {', '.join(sorted(record.metrics))})" if record.metrics else "")
        )
    series = (api.history(record.run_id, k) for k in wanted)
    try:
        with _output(output) as out:
            if fmt is ExportFormat.CSV:
                write_csv(out, series)
            else:
                write_json(out, record.run_id, series)
    except BrokenPipeError:
        raise
    except OSError as exc:
        where = output if output is not None else "stdout"
        raise CommandError(f"cannot write {where}: {exc.strerror or exc}") from exc
