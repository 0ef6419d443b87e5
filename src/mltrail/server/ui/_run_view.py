"""View models of the run, compare and diff pages, built from store records.

Captured state is read defensively (like ``mltrail runs show``): a kind never recorded, or
whose capture failed, becomes a short note, never an error page.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mltrail.errors import MltrailError
from mltrail.formatting import fmt_float
from mltrail.server.ui import _state_rows
from mltrail.server.ui._render import fmt_value

if TYPE_CHECKING:
    from mltrail.diff import RunDiff
    from mltrail.entities import MetricSummary, RunRecord
    from mltrail.store.base import ConsoleLine, TrackingStore

__all__ = ["CompareView", "RunView", "build_compare", "build_diff", "build_run", "diff_value"]

CONSOLE_TAIL = 200
#: A run with more metric keys than this gets the key browser (search, groups, lazy panels)
#: instead of one summary row and one chart per key.
WIDE_KEYS = 50
#: How many charts the key browser shows at once (a "show more" button adds as many again).
CHART_CAP = 12
SYSTEM_PREFIX = "system/"
REPRODUCTION_TAG = "reproduction-of"
VERDICT_TAG = "mltrail.verdict"
VERDICTS = ("identical", "within-tolerance", "diverged", "failed")
#: The uncommitted diff is shown up to this many lines / bytes; the blob link has it all.
DIFF_MAX_LINES = 5000
DIFF_MAX_BYTES = 1 << 20
_RUN_ID = re.compile(r"^[0-9a-zA-Z_-]{1,64}$")
_SHA = re.compile(r"^[0-9a-f]{40}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(slots=True)
class DiffText:
    """An uncommitted diff split into lines, each with a class (add, del, hunk, meta, ctx)."""

    digest: str
    lines: list[tuple[str, str]] = field(default_factory=list)
    truncated: bool = False
    error: str | None = None


@dataclass(slots=True)
class Section:
    """A titled block of label/value rows (environment, hardware, seeds, invocation)."""

    title: str
    rows: list[tuple[str, str]] = field(default_factory=list)
    note: str | None = None


@dataclass(slots=True)
class RunView:
    """Everything the run page shows."""

    run: RunRecord
    params: list[tuple[str, str]]
    tags: list[tuple[str, str]]
    config_json: str
    metrics: list[MetricSummary]
    system_metrics: list[MetricSummary]
    repos: list[dict[str, Any]]
    code_note: str | None
    diffs: dict[str, DiffText]
    sections: list[Section]
    packages: list[tuple[str, str]]
    lock_files: list[dict[str, Any]]
    console: list[ConsoleLine]
    reproduction_of: str | None
    reproduction_exists: bool
    reproductions: list[RunRecord]
    verdict: Verdict | None = None
    #: what failed the run (state kind ``error``): ``{"line": ..., "traceback": ...}``
    error: dict[str, str] | None = None
    #: more than :data:`WIDE_KEYS` metric keys: the page shows the key browser
    wide: bool = False
    #: (prefix, number of keys) by the key's first path segment (``train/``), wide runs only
    metric_groups: list[tuple[str, int]] = field(default_factory=list)
    #: ``[key, last, last step, min, max, points]`` per key, for the key browser's table
    metric_rows: list[list[Any]] = field(default_factory=list)
    chart_cap: int = CHART_CAP


def key_groups(keys: list[str]) -> list[tuple[str, int]]:
    """Keys counted by their first path segment (``train/``); keys with none under ``""``."""
    counts: dict[str, int] = {}
    for key in keys:
        head, sep, _ = key.partition("/")
        prefix = head + sep if sep else ""
        counts[prefix] = counts.get(prefix, 0) + 1
    return sorted(counts.items(), key=lambda kv: (kv[0] == "", kv[0]))


def _wide(view: RunView) -> None:
    if len(view.metrics) <= WIDE_KEYS:
        return
    view.wide = True
    view.metric_groups = key_groups([m.key for m in view.metrics])
    view.metric_rows = [
        [m.key, fmt_float(m.last), m.last_step, fmt_float(m.min), fmt_float(m.max), m.count]
        for m in view.metrics
    ]


@dataclass(frozen=True, slots=True)
class Verdict:
    """A reproduction's verdict (``mltrail reproduce``): the word, its CSS class, why."""

    verdict: str
    css: str
    summary: str
    causes: list[str]


def verdict_of(doc: Any, tag: str | None) -> Verdict | None:
    """The verdict from the ``verdict`` state (else the tag), read defensively."""
    doc = doc if isinstance(doc, dict) else {}
    word = doc.get("verdict") if isinstance(doc.get("verdict"), str) else tag
    if not word:
        return None
    causes = [str(c) for c in doc.get("causes") or [] if isinstance(c, str)][:20]
    summary = str(doc.get("summary") or "")
    css = f"vd-{word}" if word in VERDICTS else "vd-unknown"
    return Verdict(str(word), css, summary, causes)


def _diff_class(line: str) -> str:
    if line.startswith(("diff --git", "index ", "--- ", "+++ ", "new file", "deleted file")):
        return "meta"
    if line.startswith("@@"):
        return "hunk"
    if line.startswith("+"):
        return "add"
    if line.startswith("-"):
        return "del"
    return "ctx"


def _diff_text(store: TrackingStore, digest: str) -> DiffText:
    out = DiffText(digest)
    try:
        data = store.get_blob(digest)
    except MltrailError as exc:
        out.error = f"the diff blob is not readable: {exc.message}"
        return out
    out.truncated = len(data) > DIFF_MAX_BYTES
    lines = data[:DIFF_MAX_BYTES].decode("utf-8", "replace").splitlines()
    if len(lines) > DIFF_MAX_LINES:
        lines, out.truncated = lines[:DIFF_MAX_LINES], True
    out.lines = [(_diff_class(line), line) for line in lines]
    return out


def _code(store: TrackingStore, doc: dict[str, Any] | None) -> tuple[list[Any], Any, Any]:
    if doc is None:
        return [], "not recorded", {}
    if isinstance(doc.get("error"), str) and len(doc) == 1:
        return [], f"capture failed: {doc['error']}", {}
    note = None
    if not doc.get("versioned", True):
        note = str(doc.get("note") or "no code version") + (
            f" ({doc['reason']})" if doc.get("reason") else ""
        )
    repos = [r for r in doc.get("repos") or [] if isinstance(r, dict)]
    diffs = {
        str(r["diff"]): _diff_text(store, str(r["diff"]))
        for r in repos
        if isinstance(r.get("diff"), str) and _DIGEST.match(r["diff"])
    }
    return repos, note, diffs


def _reproductions(store: TrackingStore, run: RunRecord) -> list[RunRecord]:
    if not _RUN_ID.match(run.run_id):
        return []
    filt = f"tags.`{REPRODUCTION_TAG}` = '{run.run_id}'"
    try:
        return store.search_runs(None, filt, "created desc", 20).runs
    except MltrailError:
        return []


def _error(doc: Any) -> dict[str, str] | None:
    """The run's error for the top of its page: one line, and the traceback."""
    if not isinstance(doc, dict):
        return None
    from mltrail.capture.errors import one_line

    return {"line": one_line(doc), "traceback": str(doc.get("traceback") or "")}


def build_run(store: TrackingStore, run_id: str) -> RunView:
    """The run page's view of ``run_id`` (a full id)."""
    run = store.get_run(run_id)
    state = store.get_state(run_id)
    repos, code_note, diffs = _code(store, state.get("code"))
    env = state.get("environment") or {}
    origin = run.tags.get(REPRODUCTION_TAG)
    exists = False
    if origin:
        try:
            store.get_run(store.resolve_run_id(origin))
            exists = True
        except MltrailError:
            exists = False
    metrics = sorted(run.metrics.values(), key=lambda m: m.key)
    view = RunView(
        error=_error(state.get("error")),
        run=run,
        params=[(k, fmt_value(v)) for k, v in sorted(run.params.items())],
        tags=sorted(run.tags.items()),
        config_json=json.dumps(run.config, indent=2, sort_keys=True, default=str)
        if run.config
        else "",
        metrics=[m for m in metrics if not m.key.startswith(SYSTEM_PREFIX)],
        system_metrics=[m for m in metrics if m.key.startswith(SYSTEM_PREFIX)],
        repos=repos,
        code_note=code_note,
        diffs=diffs,
        sections=_state_rows.sections(state),
        packages=sorted((str(k), str(v)) for k, v in (env.get("packages") or {}).items()),
        lock_files=[e for e in env.get("lock_files") or [] if isinstance(e, dict)],
        console=store.read_console(run_id, CONSOLE_TAIL),
        reproduction_of=origin,
        reproduction_exists=exists,
        reproductions=_reproductions(store, run),
        verdict=verdict_of(state.get("verdict"), run.tags.get(VERDICT_TAG)),
    )
    _wide(view)
    return view


# -- compare ---------------------------------------------------------------------------


@dataclass(slots=True)
class CompareView:
    """Runs side by side: rows of (key, values per run, differs)."""

    runs: list[RunRecord]
    params: list[tuple[str, list[str], bool]]
    tags: list[tuple[str, list[str], bool]]
    metrics: list[tuple[str, list[str], bool]]
    chart_keys: list[str]
    chart_runs: list[dict[str, str]]


def _rows(values: list[dict[str, Any]], fmt: Any) -> list[tuple[str, list[str], bool]]:
    keys = sorted({k for v in values for k in v})
    rows = []
    for key in keys:
        cells = [fmt(v[key]) if key in v else "" for v in values]
        present = [key in v for v in values]
        rows.append((key, cells, len(set(cells)) > 1 or not all(present)))
    return rows


def _last(m: MetricSummary) -> str:
    return fmt_value(m.last)


def build_compare(runs: list[RunRecord]) -> CompareView:
    """The compare page's view of ``runs`` (in the order given)."""
    metric_keys = sorted({k for r in runs for k in r.metrics})
    return CompareView(
        runs=runs,
        params=_rows([dict(r.params) for r in runs], fmt_value),
        tags=_rows([dict(r.tags) for r in runs], str),
        metrics=_rows([dict(r.metrics) for r in runs], _last),
        chart_keys=[k for k in metric_keys if not k.startswith(SYSTEM_PREFIX)],
        chart_runs=[{"id": r.run_id, "name": r.name} for r in runs],
    )


# -- diff ------------------------------------------------------------------------------


def build_diff(store: TrackingStore, run_a: str, run_b: str) -> RunDiff:
    """:func:`mltrail.diff.diff_runs` over the server's store."""
    from mltrail.diff import diff_runs
    from mltrail.server.ui._queries import StoreApi

    return diff_runs(StoreApi(store), run_a, run_b, local_git=False)


def diff_value(value: Any) -> str:
    """A value in a diff cell, as ``mltrail diff`` prints it (shas and digests shortened)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else fmt_value(value)
    if isinstance(value, str):
        if _SHA.match(value):
            return value[:12]
        return value[:19] if _DIGEST.match(value) else value
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(", ", ": "), default=str)
    return str(value)
