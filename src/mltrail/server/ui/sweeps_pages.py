"""The UI's sweep page: ``/sweeps/{sweep_id}``.

The trials table (number, state, value, steps reported, params, the run each trial was,
linked), the best trial, and the best-so-far curve drawn as an inline SVG (each complete
trial's value as a dot, the best so far as a line). Read through the same function as
``GET /api/v1/sweeps/{id}`` (:func:`mltrail.server.sweeps_api.read_sweep`), so a scoped
token sees the same sweeps in both.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from mltrail.errors import NotFoundError
from mltrail.server.sweeps_api import SWEEP_ID_PATTERN, read_sweep
from mltrail.server.ui.pages import _html_errors, render_page

if TYPE_CHECKING:
    from fastapi.responses import Response

__all__ = ["curve", "parallel", "router"]

router = APIRouter(include_in_schema=False)

_W, _H, _PAD = 640, 220, 28


def curve(points: list[list[float]]) -> dict[str, Any] | None:
    """SVG geometry of the best-so-far curve: ``[number, value, best]`` per complete trial.

    Returns:
        ``{"dots": [(x, y, number, value)], "line": "x,y x,y ...", "lo", "hi", "n"}`` in a
        ``_W`` x ``_H`` box, or None with fewer than one finite point.
    """
    pts = [p for p in points if all(isinstance(x, int | float) and math.isfinite(x) for x in p)]
    if not pts:
        return None
    lo = min(min(p[1], p[2]) for p in pts)
    hi = max(max(p[1], p[2]) for p in pts)
    span = (hi - lo) or 1.0
    last = max(p[0] for p in pts) or 1

    def xy(n: float, y: float) -> tuple[float, float]:
        x = _PAD + (_W - 2 * _PAD) * (n / last)
        return round(x, 1), round(_H - _PAD - (_H - 2 * _PAD) * ((y - lo) / span), 1)

    dots = [(*xy(p[0], p[1]), int(p[0]), p[1]) for p in pts]
    line = " ".join("{},{}".format(*xy(p[0], p[2])) for p in pts)
    return {"dots": dots, "line": line, "lo": lo, "hi": hi, "n": len(pts), "w": _W, "h": _H}


_PW, _PH, _PX = 760, 270, 60
_PY0, _PY1 = 40, 250  # the axes' top and bottom: names and top labels above, bottom below


def _axis(values: list[Any]) -> tuple[list[float], str, str]:
    """Positions 0..1 of ``values`` on one axis, and its bottom and top labels: numbers
    scaled between their min and max, anything else spread in sorted order."""
    nums = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if len(nums) == len(values) and all(math.isfinite(v) for v in nums):
        lo, hi = min(nums), max(nums)
        span = (hi - lo) or 1.0
        return [(v - lo) / span for v in nums], f"{lo:.4g}", f"{hi:.4g}"
    cats = sorted({str(v) for v in values})
    step = 1.0 / max(1, len(cats) - 1)
    pos = {c: i * step if len(cats) > 1 else 0.5 for i, c in enumerate(cats)}
    return [pos[str(v)] for v in values], cats[0], cats[-1]


def parallel(
    trials: list[dict[str, Any]], names: list[str], metric: str, maximize: bool
) -> dict[str, Any] | None:
    """SVG geometry of parallel coordinates: one axis per parameter and one for the metric,
    one line per finished trial, darker the better its value.

    Returns:
        ``{"axes": [(x, name, lo, hi)], "lines": [(points, opacity, number, value)], "w",
        "h"}``, or None with fewer than two finished trials.
    """
    done = [
        t
        for t in trials
        if t.get("state") == "finished"
        and t.get("values")
        and isinstance(t["values"][0], int | float)
        and math.isfinite(t["values"][0])
    ]
    if len(done) < 2:
        return None
    columns = [[t["params"].get(n) for t in done] for n in names]
    columns.append([t["values"][0] for t in done])
    labels = [*names, metric]
    gap = (_PW - 2 * _PX) / max(1, len(labels) - 1)
    axes, scaled = [], []
    for i, (label, column) in enumerate(zip(labels, columns, strict=True)):
        pos, lo, hi = _axis(column)
        axes.append((round(_PX + i * gap, 1), label, lo, hi))
        scaled.append(pos)
    score = scaled[-1] if maximize else [1.0 - p for p in scaled[-1]]
    lines = []
    for j, t in enumerate(done):
        pts = " ".join(
            f"{axes[i][0]},{round(_PY1 - (_PY1 - _PY0) * scaled[i][j], 1)}"
            for i in range(len(labels))
        )
        lines.append((pts, round(0.15 + 0.85 * score[j], 3), t["number"], t["values"][0]))
    lines.sort(key=lambda line: line[1])  # the best drawn last, on top
    return {"axes": axes, "lines": lines, "w": _PW, "h": _PH, "y0": _PY0, "y1": _PY1}


@router.get("/sweeps/{sweep_id}", response_class=HTMLResponse)
@_html_errors
def sweep_page(request: Request, sweep_id: str) -> Response:
    """One sweep: its state, trials (linked to their runs), best, best-so-far curve."""
    if not re.fullmatch(SWEEP_ID_PATTERN, sweep_id):
        raise NotFoundError(f"no sweep {sweep_id!r}")
    data = read_sweep(request, sweep_id)
    names = sorted({k for t in data["trials"] for k in t["params"]})
    spec = data["sweep"]["spec"]
    metric = spec["metric"] if isinstance(spec["metric"], dict) else spec["metric"][0]
    return render_page(
        request,
        "sweep.html",
        sweep=data,
        spec=spec,
        param_names=names,
        curve=curve(data["best_so_far"]),
        parallel=parallel(
            data["trials"], names, str(metric["name"]), metric.get("goal") == "maximize"
        ),
        importance=data.get("importance"),
    )
