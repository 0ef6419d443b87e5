"""Compare two runs' outcomes: every metric point, bit for bit or within a tolerance, and
every output artifact's digest.

The series comparison is vectorised NumPy: a bitwise test on the values' int64 views (every
NaN equals every NaN; ``-0.0`` differs from ``0.0`` bitwise but not in value), then the
``np.isclose`` rule ``|b - a| <= atol + rtol * |a|`` with ``a`` the original, and the first
index where it fails. Steps are compared too: a point logged at another step, or only in one
run, is a divergence at that step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from mltrail.entities import json_safe
from mltrail.errors import InvalidArgumentError
from mltrail.repro.compare_outputs import (
    ConsoleComparison,
    FileComparison,
    compare_console,
    compare_files,
    same_failure,
)

if TYPE_CHECKING:
    from mltrail.api import Api
    from mltrail.entities import RunRecord

__all__ = [
    "DEFAULT_ATOL",
    "DEFAULT_RTOL",
    "VERDICTS",
    "ArtifactComparison",
    "Divergence",
    "KeyComparison",
    "Outcome",
    "check_tolerances",
    "compare_runs",
    "compare_series",
    "run_outputs",
]

#: ``np.isclose``'s defaults
DEFAULT_RTOL = 1e-5
DEFAULT_ATOL = 1e-8
#: ``failed``: the reproduction did not finish; ``failure-reproduced``: both runs failed the
#: same way; ``nothing-to-compare``: no metric, artifact, written file or console line
VERDICTS = (
    "identical",
    "within-tolerance",
    "diverged",
    "failed",
    "failure-reproduced",
    "nothing-to-compare",
)
SYSTEM_PREFIX = "system/"


@dataclass(frozen=True, slots=True)
class Divergence:
    """Where a series stops agreeing.

    Attributes:
        key: The metric key.
        step: The step of the first disagreeing point (None if not at a step).
        a: The original's value there (None when it logged no point there).
        b: The other run's value there (None when it logged no point there).
        gap: ``|b - a|`` (inf when one side is NaN or absent).
        reason: ``value``, ``only in A``, ``only in B`` or ``step`` (points at other steps).
    """

    key: str
    step: int | None
    a: float | None
    b: float | None
    gap: float
    reason: str = "value"

    def describe(self) -> str:
        """One line for people: ``loss at step 3: 0.25 vs 0.2500001 (gap 1e-07)``."""
        where = f"{self.key} at step {self.step}" if self.step is not None else self.key
        if self.reason == "only in A":
            return f"{where}: logged by the original only"
        if self.reason == "only in B":
            return f"{where}: logged by the new run only"
        return f"{where}: {_num(self.a)} vs {_num(self.b)} (gap {_num(self.gap)})"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (non-finite floats spelled as strings)."""
        out: dict[str, Any] = json_safe(
            {
                "key": self.key,
                "step": self.step,
                "a": self.a,
                "b": self.b,
                "gap": self.gap,
                "reason": self.reason,
            }
        )
        return out


def _num(x: float | None) -> str:
    if x is None:
        return "none"
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return repr(x) if x == 0 or 1e-4 <= abs(x) < 1e6 else f"{x:.6g}"


@dataclass(frozen=True, slots=True)
class KeyComparison:
    """One metric key compared.

    Attributes:
        key: The metric key.
        points: Points in the original (A) and the other run (B).
        identical: Every point equal bit for bit at the same steps.
        within: Every point within the tolerance at the same steps.
        max_gap: Largest ``|b - a|`` over the points both logged (0.0 when equal; inf if a
            NaN meets a number).
        first_difference: The first point that is not bitwise equal (None if identical).
        first_divergence: The first point beyond the tolerance (None if within).
    """

    key: str
    points: tuple[int, int]
    identical: bool
    within: bool
    max_gap: float
    first_difference: Divergence | None
    first_divergence: Divergence | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        out: dict[str, Any] = json_safe(
            {
                "key": self.key,
                "points": list(self.points),
                "identical": self.identical,
                "within_tolerance": self.within,
                "max_gap": self.max_gap,
            }
        )
        out["first_difference"] = self.first_difference and self.first_difference.to_dict()
        out["first_divergence"] = self.first_divergence and self.first_divergence.to_dict()
        return out


def check_tolerances(rtol: float, atol: float) -> None:
    """Refuse a negative or non-finite tolerance, naming the option.

    Raises:
        InvalidArgumentError: ``rtol`` or ``atol`` is negative, NaN or infinite.
    """
    for name, value in (("rtol", rtol), ("atol", atol)):
        if not math.isfinite(value) or value < 0:
            raise InvalidArgumentError(f"--{name} must be a finite number >= 0, got {value!r}")


def _point(values: np.ndarray[Any, Any], i: int) -> float:
    return float(values[i])


def _first_step_mismatch(sa: np.ndarray[Any, Any], sb: np.ndarray[Any, Any]) -> int | None:
    """Index of the first position where the step arrays disagree (or one ends)."""
    n = min(len(sa), len(sb))
    unequal = np.flatnonzero(sa[:n] != sb[:n])
    if unequal.size:
        return int(unequal[0])
    return None if len(sa) == len(sb) else n


def compare_series(
    key: str,
    steps_a: np.ndarray[Any, Any],
    values_a: np.ndarray[Any, Any],
    steps_b: np.ndarray[Any, Any],
    values_b: np.ndarray[Any, Any],
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
) -> KeyComparison:
    """Compare one metric's series of the original (A) and another run (B).

    Args:
        key: The metric key (for the result).
        steps_a: A's steps (int64), in logged order.
        values_a: A's values (float64).
        steps_b: B's steps.
        values_b: B's values.
        rtol: Relative tolerance (of A's value).
        atol: Absolute tolerance.

    Returns:
        The :class:`KeyComparison`.
    """
    check_tolerances(rtol, atol)
    sa = np.ascontiguousarray(steps_a, dtype=np.int64)
    sb = np.ascontiguousarray(steps_b, dtype=np.int64)
    va = np.ascontiguousarray(values_a, dtype=np.float64)
    vb = np.ascontiguousarray(values_b, dtype=np.float64)
    mismatch = _first_step_mismatch(sa, sb)
    n = min(len(sa), len(sb)) if mismatch is None else mismatch
    a, b = va[:n], vb[:n]
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    same_bits = (a.view(np.int64) == b.view(np.int64)) | (nan_a & nan_b)
    close = np.isclose(b, a, rtol=rtol, atol=atol, equal_nan=True)
    with np.errstate(invalid="ignore"):
        gaps = np.abs(b - a)
    gaps[a == b] = 0.0  # the same infinity too (inf - inf is NaN)
    gaps[nan_a & nan_b] = 0.0
    gaps[nan_a ^ nan_b] = np.inf
    max_gap = float(gaps.max()) if n else 0.0

    def at(i: int, reason: str = "value") -> Divergence:
        if i < n:
            return Divergence(key, int(sa[i]), _point(va, i), _point(vb, i), float(gaps[i]))
        if i < len(sa) and (i >= len(sb) or (reason == "step" and sa[i] <= sb[i])):
            return Divergence(key, int(sa[i]), _point(va, i), None, math.inf, "only in A")
        return Divergence(key, int(sb[i]), None, _point(vb, i), math.inf, "only in B")

    diff_idx = np.flatnonzero(~same_bits)
    far_idx = np.flatnonzero(~close)
    first_difference = at(int(diff_idx[0])) if diff_idx.size else None
    first_divergence = at(int(far_idx[0])) if far_idx.size else None
    if mismatch is not None:
        if first_difference is None:
            first_difference = at(mismatch, "step")
        if first_divergence is None:
            first_divergence = at(mismatch, "step")
        max_gap = math.inf
    return KeyComparison(
        key=key,
        points=(len(sa), len(sb)),
        identical=first_difference is None,
        within=first_divergence is None,
        max_gap=max_gap,
        first_difference=first_difference,
        first_divergence=first_divergence,
    )


@dataclass(frozen=True, slots=True)
class ArtifactComparison:
    """One output artifact (``project/name``) in both runs: digests, None where not logged."""

    name: str
    a: str | None
    b: str | None

    @property
    def equal(self) -> bool:
        """Both runs logged it with the same digest."""
        return self.a is not None and self.a == self.b

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"name": self.name, "a": self.a, "b": self.b, "equal": self.equal}


@dataclass(slots=True)
class Outcome:
    """The comparison of two runs' outcomes.

    Attributes:
        verdict: One of :data:`VERDICTS`.
        run_a: The original's id.
        run_b: The other run's id.
        rtol: The relative tolerance used.
        atol: The absolute tolerance used.
        keys: Every metric key (``system/...`` left out), by name.
        artifacts: Every output artifact of either run.
        first_divergence: The earliest point beyond the tolerance over all keys (by step,
            then key); None unless diverged.
        first_difference: The earliest point that is not bit-identical; None if identical.
        reasons: Why the verdict is what it is, in words (a failed run, nothing logged).
        files: Every file either run wrote (``mltrail run``), by digest.
        console: The console comparison, when nothing else could be compared.
        basis: What the verdict rests on: ``metrics``, ``files``, ``console`` or None.
    """

    verdict: str
    run_a: str
    run_b: str
    rtol: float
    atol: float
    keys: list[KeyComparison] = field(default_factory=list)
    artifacts: list[ArtifactComparison] = field(default_factory=list)
    first_divergence: Divergence | None = None
    first_difference: Divergence | None = None
    reasons: list[str] = field(default_factory=list)
    files: list[FileComparison] = field(default_factory=list)
    console: ConsoleComparison | None = None
    basis: str | None = None

    @property
    def ok(self) -> bool:
        """``identical``, ``within-tolerance`` or ``failure-reproduced`` (exit status 0)."""
        return self.verdict in ("identical", "within-tolerance", "failure-reproduced")

    def summary(self) -> str:
        """One line: the verdict and, when not identical, where and by how much."""
        if self.verdict == "identical" and self.basis == "console":
            assert self.console is not None
            return f"identical: {self.console.describe()} (no metrics or output files)"
        if self.verdict == "identical":
            n = sum(k.points[0] for k in self.keys)
            arts = f" and {len(self.artifacts)} artifact digests" if self.artifacts else ""
            files = f" and {len(self.files)} output files" if self.files else ""
            return (
                f"identical: {n} metric points over {len(self.keys)} keys{arts}{files}, bit for bit"
            )
        if self.verdict == "within-tolerance":
            worst = max((k.max_gap for k in self.keys), default=0.0)
            where = (
                f"; first difference {self.first_difference.describe()}"
                if (self.first_difference)
                else ""
            )
            return (
                f"within-tolerance (rtol={self.rtol:g}, atol={self.atol:g}): largest gap "
                f"{_num(worst)}{where}"
            )
        if self.verdict == "diverged" and self.first_divergence is not None:
            return f"diverged: {self.first_divergence.describe()}"
        return f"{self.verdict}: {'; '.join(self.reasons)}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "verdict": self.verdict,
            "summary": self.summary(),
            "run_a": self.run_a,
            "run_b": self.run_b,
            "rtol": self.rtol,
            "atol": self.atol,
            "first_divergence": self.first_divergence and self.first_divergence.to_dict(),
            "first_difference": self.first_difference and self.first_difference.to_dict(),
            "keys": [k.to_dict() for k in self.keys],
            "artifacts": [a.to_dict() for a in self.artifacts],
            "reasons": list(self.reasons),
            "files": [f.to_dict() for f in self.files],
            "console": self.console.to_dict() if self.console is not None else None,
            "basis": self.basis,
        }


def run_outputs(api: Api, run_id: str, state: dict[str, Any] | None = None) -> dict[str, str]:
    """The output artifacts of a run: ``{"project/name": digest}``.

    From the run's ``outputs`` state (what it logged, even content another run logged
    first), merged with the versions the artifact store says it produced.
    """
    out: dict[str, str] = {}
    from mltrail.errors import ArtifactsUnsupportedError
    from mltrail.store.registry import open_artifact_store

    try:
        for v in open_artifact_store(api.location).run_outputs(run_id):
            out[f"{v.project}/{v.name}"] = v.digest
    except ArtifactsUnsupportedError:
        pass
    doc = (state if state is not None else api.state(run_id)).get("outputs") or {}
    for item in doc.get("outputs") or []:
        if isinstance(item, dict) and isinstance(item.get("digest"), str):
            name = str(item.get("name", "")).removeprefix("artifact:")
            out[name] = item["digest"]
    return dict(sorted(out.items()))


def _earliest(found: list[Divergence]) -> Divergence | None:
    return min(found, key=lambda d: (d.step if d.step is not None else -1, d.key), default=None)


def compare_runs(
    api: Api,
    run_a: str,
    run_b: str,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    *,
    b_status: str | None = None,
) -> Outcome:
    """Compare the outcome of run B with the original run A.

    ``identical``: every metric point (steps and values, bit for bit) and every output
    artifact digest equal. ``within-tolerance``: every point within ``rtol``/``atol`` at the
    same steps (artifacts may differ). ``diverged``: a point beyond the tolerance, a point at
    another step, or a key only one run logged. ``failed``: run B did not finish, or neither
    run logged a metric or an artifact (nothing proves anything).

    Args:
        api: Where both runs live.
        run_a: The original (id or prefix).
        run_b: The other run (id or prefix).
        rtol: Relative tolerance (of A's values).
        atol: Absolute tolerance.
        b_status: B's status when B is still open (judged before it is finished, so that
            the verdict can be stored on it); default B's recorded status.

    Returns:
        The :class:`Outcome`.

    Raises:
        NotFoundError: A run does not exist.
        InvalidArgumentError: A bad tolerance.
    """
    check_tolerances(rtol, atol)
    ra, rb = api.run(run_a), api.run(run_b)
    outcome = Outcome("identical", ra.run_id, rb.run_id, rtol, atol)
    keys = sorted(k for k in set(ra.metrics) | set(rb.metrics) if not k.startswith(SYSTEM_PREFIX))
    for key in keys:
        outcome.keys.append(_compare_key(api, ra, rb, key, rtol, atol))
    outs_a, outs_b = run_outputs(api, ra.run_id), run_outputs(api, rb.run_id)
    outcome.artifacts = [
        ArtifactComparison(name, outs_a.get(name), outs_b.get(name))
        for name in sorted(set(outs_a) | set(outs_b))
    ]
    outcome.first_divergence = _earliest(
        [k.first_divergence for k in outcome.keys if k.first_divergence is not None]
    )
    outcome.first_difference = _earliest(
        [k.first_difference for k in outcome.keys if k.first_difference is not None]
    )
    outcome.files = compare_files(api, ra.run_id, rb.run_id)
    _decide(api, outcome, ra, b_status or rb.status.value)
    return outcome


def _decide(api: Api, outcome: Outcome, ra: RunRecord, status: str) -> None:
    """Set the verdict from the comparisons (metrics first, then files, then the console)."""
    hard = [f.name for f in outcome.files if not f.equal and not f.volatile]
    soft = [f.name for f in outcome.files if not f.equal and f.volatile]
    outcome.basis = "metrics" if outcome.keys else ("files" if outcome.files else None)
    if status != "finished":
        failure = same_failure(api, ra.run_id, outcome.run_b)
        if ra.status.value == status and failure is not None:
            outcome.verdict = "failure-reproduced"
            outcome.reasons.append(f"both runs ended {status} the same way: {failure}")
            return
        outcome.verdict = "failed"
        outcome.reasons.append(f"run {outcome.run_b} ended {status}, not finished")
    elif not outcome.keys and not outcome.artifacts and not outcome.files:
        _decide_by_console(api, outcome)
    elif outcome.first_divergence is not None:
        outcome.verdict = "diverged"
    elif hard and not outcome.keys:
        outcome.verdict = "diverged"
        outcome.reasons.append(f"output files differ: {_few(hard)}")
    elif (
        outcome.first_difference is not None
        or hard
        or soft
        or not all(a.equal for a in outcome.artifacts)
    ):
        outcome.verdict = "within-tolerance"
        differ = [a.name for a in outcome.artifacts if not a.equal]
        if differ:
            outcome.reasons.append(f"output artifacts differ: {', '.join(differ)}")
        if hard:
            outcome.reasons.append(f"output files differ: {_few(hard)}")
    if outcome.verdict in ("identical", "within-tolerance") and soft:
        outcome.reasons.append(
            f"documents or logs differ (they may embed the time they were written): {_few(soft)}"
        )


def _few(names: list[str]) -> str:
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def _decide_by_console(api: Api, outcome: Outcome) -> None:
    console = compare_console(api, outcome.run_a, outcome.run_b)
    if console.empty:
        outcome.verdict = "nothing-to-compare"
        outcome.reasons.append(
            "nothing to compare: neither run logged a metric or an artifact, wrote a file or "
            "printed a line (log metrics, or use `mltrail run --metric NAME=REGEX`)"
        )
        return
    outcome.console = console
    outcome.basis = "console"
    if console.first_difference is not None:
        outcome.verdict = "diverged"
        outcome.reasons.append(console.describe() + " (no metrics or output files to compare)")


def _compare_key(
    api: Api, ra: RunRecord, rb: RunRecord, key: str, rtol: float, atol: float
) -> KeyComparison:
    empty_i, empty_f = np.zeros(0, np.int64), np.zeros(0, np.float64)
    sa = va = sb = vb = None
    if key in ra.metrics:
        h = api.history(ra.run_id, key)
        sa, va = h.steps, h.values
    if key in rb.metrics:
        h = api.history(rb.run_id, key)
        sb, vb = h.steps, h.values
    return compare_series(
        key,
        sa if sa is not None else empty_i,
        va if va is not None else empty_f,
        sb if sb is not None else empty_i,
        vb if vb is not None else empty_f,
        rtol,
        atol,
    )
