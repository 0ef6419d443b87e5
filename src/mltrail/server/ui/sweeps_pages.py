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

__all__ = ["curve", "router"]

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


@router.get("/sweeps/{sweep_id}", response_class=HTMLResponse)
@_html_errors
def sweep_page(request: Request, sweep_id: str) -> Response:
    """One sweep: its state, trials (linked to their runs), best, best-so-far curve."""
    if not re.fullmatch(SWEEP_ID_PATTERN, sweep_id):
        raise NotFoundError(f"no sweep {sweep_id!r}")
    data = read_sweep(request, sweep_id)
    names = sorted({k for t in data["trials"] for k in t["params"]})
    return render_page(
        request,
        "sweep.html",
        sweep=data,
        spec=data["sweep"]["spec"],
        param_names=names,
        curve=curve(data["best_so_far"]),
    )
