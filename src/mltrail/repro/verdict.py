"""Why two runs' outcomes differ, in words, and the verdict document stored on a run.

:func:`explain` reads the :class:`~mltrail.diff.RunDiff` of the two runs' captured state and
the original's seeding, and names the likely causes: a seed that was not set, another GPU or
driver, package versions, the Python version, environment variables, config, code, data.
When nothing recorded differs, the program itself is non-deterministic, and the explanation
says so.

:class:`Verdict` is what :func:`~mltrail.repro.reproduce` and
:func:`~mltrail.repro.verify_determinism` return: the verdict word and its exit status, every
:class:`Comparison` (outcome, causes, the diff of the two runs), the plan and the runs made.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mltrail.entities import json_safe

if TYPE_CHECKING:
    from pathlib import Path

    from mltrail.diff import Change, KindDiff, RunDiff
    from mltrail.repro.compare import Divergence, Outcome
    from mltrail.repro.plan import Item, Plan

__all__ = [
    "REPRODUCTION_TAG",
    "SEED_NOT_SET",
    "VERDICT_KIND",
    "VERDICT_TAG",
    "NOTHING_TO_COMPARE_EXIT",
    "Comparison",
    "Verdict",
    "explain",
    "verdict_document",
]

VERDICT_TAG = "mltrail.verdict"
REPRODUCTION_TAG = "reproduction-of"
VERDICT_KIND = "verdict"
SEED_NOT_SET = "the seed was not set"
_LISTED = 6
#: how bad a verdict is, for the worst of several comparisons
_SEVERITY = {
    "identical": 0,
    "within-tolerance": 1,
    "failure-reproduced": 2,
    "nothing-to-compare": 3,
    "diverged": 4,
    "failed": 5,
}
_OK = ("identical", "within-tolerance", "failure-reproduced")
#: the exit status of a verdict with nothing to compare (never a failure's)
NOTHING_TO_COMPARE_EXIT = 3


@dataclass(frozen=True, slots=True)
class Comparison:
    """One run judged against a reference run (the original, or run 1).

    Attributes:
        outcome: Metric points and artifact digests compared (:mod:`~mltrail.repro.compare`).
        causes: The likely causes of a difference, most telling first (:func:`explain`).
        diff: ``mltrail diff`` of the two runs' captured state.
    """

    outcome: Outcome
    causes: tuple[str, ...]
    diff: RunDiff

    @property
    def run_id(self) -> str:
        """The judged run."""
        return self.outcome.run_b

    def to_dict(self) -> dict[str, Any]:
        """The outcome's JSON with the causes (the diff left out)."""
        return {**self.outcome.to_dict(), "causes": list(self.causes)}


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a reproduction (or a determinism check) concluded.

    Attributes:
        verdict: ``identical``, ``within-tolerance``, ``failure-reproduced`` (exit 0),
            ``diverged`` or ``failed`` (1), ``nothing-to-compare`` (3); None for a
            dry run (nothing ran).
        comparisons: Every judged run, in order (one for a reproduction).
        run_ids: The runs this call made, in order (a determinism check's first run is the
            reference the others are compared with).
        original: The reference run: the reproduced run, or a determinism check's run 1.
        plan: The reproduction plan (None for a determinism check).
        environment: How the environment was provided: ``mode`` and ``package_changes``
            (this interpreter) or ``rebuilt`` (a fresh virtual environment).
        workdir: Where the code was checked out and kept (None: removed afterwards).
        seed: The seed a determinism check exported as ``MLTRAIL_SEED``.
        reasons: Why the verdict is ``failed`` when nothing could be compared.
    """

    verdict: str | None
    comparisons: tuple[Comparison, ...] = ()
    run_ids: tuple[str, ...] = ()
    original: str | None = None
    plan: Plan | None = None
    environment: dict[str, Any] = field(default_factory=dict)
    workdir: Path | None = None
    seed: int | None = None
    reasons: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """``identical`` or ``within-tolerance`` (or a dry run): the result came out the same."""
        return self.verdict is None or self.verdict in _OK

    @property
    def exit_code(self) -> int:
        """The exit status of ``mltrail reproduce`` / ``verify-determinism``: 0 when ok
        (``failure-reproduced`` too), 3 when there was nothing to compare, else 1."""
        if self.verdict == "nothing-to-compare":
            return NOTHING_TO_COMPARE_EXIT
        return 0 if self.ok else 1

    @property
    def dry_run(self) -> bool:
        """Nothing ran: only the plan was made."""
        return self.verdict is None

    @property
    def run_id(self) -> str | None:
        """The last run made (a reproduction's new run)."""
        return self.run_ids[-1] if self.run_ids else None

    @property
    def worst(self) -> Comparison | None:
        """The comparison that decided the verdict (the first of the worst ones)."""
        if not self.comparisons:
            return None
        return max(self.comparisons, key=lambda c: _SEVERITY.get(c.outcome.verdict, 5))

    @property
    def outcome(self) -> Outcome | None:
        """The deciding comparison's outcome."""
        worst = self.worst
        return worst.outcome if worst is not None else None

    @property
    def first_divergence(self) -> Divergence | None:
        """Where the deciding comparison first went beyond the tolerance."""
        outcome = self.outcome
        return outcome.first_divergence if outcome is not None else None

    @property
    def causes(self) -> tuple[str, ...]:
        """The likely causes of the deciding comparison's difference."""
        worst = self.worst
        return worst.causes if worst is not None else ()

    @property
    def plan_lines(self) -> list[Item]:
        """The plan, line by line (empty without a plan)."""
        return list(self.plan.items) if self.plan is not None else []

    def summary(self) -> str:
        """One line: the deciding outcome's summary, or why nothing was compared."""
        if self.verdict is None:
            return "dry run: nothing was run"
        outcome = self.outcome
        if outcome is not None:
            return outcome.summary()
        return f"{self.verdict}: {'; '.join(self.reasons)}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (diffs left out: see each comparison's ``diff.to_dict()``)."""
        return {
            "verdict": self.verdict,
            "ok": self.ok,
            "exit_code": self.exit_code,
            "summary": self.summary(),
            "original": self.original,
            "runs": list(self.run_ids),
            "comparisons": [c.to_dict() for c in self.comparisons],
            "plan": self.plan.to_dict() if self.plan is not None else None,
            "environment": dict(self.environment),
            "workdir": str(self.workdir) if self.workdir is not None else None,
            "seed": self.seed,
            "reasons": list(self.reasons),
        }


def _seeding(state: dict[str, Any]) -> dict[str, Any] | None:
    doc = state.get("seeds")
    if not isinstance(doc, dict):
        return None
    seeding = doc.get("seeding")
    return seeding if isinstance(seeding, dict) else None


def _listed(changes: list[Change]) -> str:
    def text(c: Change) -> str:
        if c.change in ("added", "removed"):
            return f"{c.key} {c.change}"
        return f"{c.key} {c.a} → {c.b}" + (f" ({c.change})" if c.change != "changed" else "")

    shown = [text(c) for c in changes[:_LISTED]]
    more = f", ... and {len(changes) - _LISTED} more" if len(changes) > _LISTED else ""
    return ", ".join(shown) + more


def explain(
    outcome: Outcome,
    diff: RunDiff,
    state_a: dict[str, Any],
    state_b: dict[str, Any] | None = None,
) -> list[str]:
    """The likely causes of a difference between the original (A) and the other run (B).

    Args:
        outcome: The comparison of the outcomes.
        diff: :func:`mltrail.diff.diff_runs` of A and B.
        state_a: A's captured state (its seeding is read).
        state_b: B's captured state.

    Returns:
        Sentences, most telling first; empty when the outcome is identical.
    """
    if outcome.verdict in ("identical", "failure-reproduced", "nothing-to-compare"):
        return []
    seeding_a = _seeding(state_a)
    kinds = diff.kinds
    causes = [
        *(_seed_not_set(state_a, state_b, seeding_a) if outcome.verdict == "diverged" else []),
        *_seeded_differently(kinds.get("seeds"), seeding_a),
        *_hardware_causes(kinds.get("hardware")),
        *_kernel_cause(state_a, seeding_a),
        *_environment_causes(kinds.get("environment")),
        *_input_causes(kinds),
        *_code_causes(kinds.get("code")),
    ]
    if not causes:
        causes.append(
            "nothing in the recorded state differs: the program itself is non-deterministic "
            "(wall-clock time, unseeded shuffling or sampling, thread scheduling, or "
            "non-deterministic kernels)"
        )
    return causes


def _seed_not_set(
    state_a: dict[str, Any], state_b: dict[str, Any] | None, seeding_a: dict[str, Any] | None
) -> list[str]:
    given = _config_seeds(state_a)
    imported = (state_a.get("program") or {}).get("imported") or []
    unseeded = [_LIBRARY_HINTS[m] for m in _LIBRARY_HINTS if m in imported]
    if "seeds" in state_a and seeding_a is None and unseeded and not given:
        return [
            f"{SEED_NOT_SET}: the program uses {' and '.join(unseeded)} and recorded no seed "
            "(pass random_state= to scikit-learn estimators and splitters, seed= to Optuna "
            "samplers, or call torch.manual_seed / mltrail.seed_everything)"
        ]
    if "seeds" in state_a and seeding_a is None and given:
        return [
            f"the program seeds itself ({', '.join(given[:4])} in its config) but "
            "something random still ran unseeded (another generator, a library's own default, "
            "or a seed not passed everywhere)"
        ]
    if "seeds" in state_a and seeding_a is None:
        return [
            f"{SEED_NOT_SET}: the original run did not call mltrail.seed_everything, so its "
            "random state was not recorded and cannot be restored"
        ]
    if state_b is not None and "seeds" in state_b and _seeding(state_b) is None:
        return [f"{SEED_NOT_SET} in the new run (mltrail.seed_everything was not called)"]
    return []


#: libraries seeded through their own arguments, as the hint names them
_LIBRARY_HINTS = {"sklearn": "scikit-learn", "optuna": "Optuna", "torch": "PyTorch"}
_SEED_KEYS = ("seed", "random_state", "random_seed", "manual_seed")


def _config_seeds(state: dict[str, Any]) -> list[str]:
    """``key=value`` of seeds set through the config (``seed=``, sklearn's
    ``random_state=``, an Optuna sampler's ``seed=``), not through ``seed_everything``."""
    doc = state.get("config")
    found: list[str] = []

    def walk(value: Any, where: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                path = f"{where}.{k}" if where else str(k)
                if str(k).lower() in _SEED_KEYS and isinstance(v, int) and not isinstance(v, bool):
                    found.append(f"{path}={v}")
                else:
                    walk(v, path)

    if isinstance(doc, dict):
        walk(doc.get("config"), "")
    return found


def _seeded_differently(seeds: KindDiff | None, seeding_a: dict[str, Any] | None) -> list[str]:
    if seeds is None or seeding_a is None:
        return []
    causes: list[str] = []
    seed = [c for c in seeds.changes if c.key == "seeding.seed"]
    switch = [c for c in seeds.changes if c.key == "seeding.deterministic"]
    if seed:
        drawn = seeding_a.get("source") == "random"
        hint = (
            " (seed_everything() drew a random seed: pass a seed, or MLTRAIL_SEED / "
            "verify-determinism --seed)"
            if drawn
            else ""
        )
        causes.append(f"the runs were seeded differently: {_listed(seed)}{hint}")
    if switch:
        causes.append(f"deterministic algorithms were switched differently: {_listed(switch)}")
    return causes


def _hardware_causes(hardware: KindDiff | None) -> list[str]:
    if hardware is None:
        return []
    causes: list[str] = []
    gpu = [c for c in hardware.changes if c.key.startswith(("gpus", "gpu_count"))]
    cpu = [c for c in hardware.changes if c.key.startswith("cpu.model")]
    if gpu:
        causes.append(f"a different GPU: {_listed(gpu)}")
    if cpu:
        causes.append(f"a different CPU: {_listed(cpu)}")
    return causes


def _kernel_cause(state_a: dict[str, Any], seeding_a: dict[str, Any] | None) -> list[str]:
    """Default (non-deterministic) kernels on a GPU."""
    if seeding_a is None or seeding_a.get("deterministic"):
        return []
    hw = state_a.get("hardware") if isinstance(state_a.get("hardware"), dict) else {}
    if hw and hw.get("gpus"):
        return [
            "deterministic algorithms were off on a GPU (seed_everything(deterministic="
            "False)): non-deterministic CUDA kernels (atomic adds) change the low bits"
        ]
    return []


def _environment_causes(env: KindDiff | None) -> list[str]:
    if env is None:
        return []
    causes: list[str] = []
    packages = [c for c in env.changes if c.key.startswith("packages.")]
    python = [c for c in env.changes if c.key.startswith("python.version")]
    variables = [c for c in env.changes if c.key.startswith("env.")]
    if packages:
        causes.append(f"package versions differ: {_listed(packages)}")
    if python:
        causes.append(f"the Python version differs: {_listed(python)}")
    if variables:
        causes.append(f"numerics environment variables differ: {_listed(variables)}")
    return causes


def _input_causes(kinds: dict[str, KindDiff]) -> list[str]:
    causes: list[str] = []
    for kind, what in (("config", "the config differs"), ("data", "the input data differs")):
        kd = kinds.get(kind)
        if kd is not None and kd.changes:
            causes.append(f"{what}: {_listed(kd.changes)}")
    return causes


def _code_causes(code: KindDiff | None) -> list[str]:
    if code is None or code.identical:
        return []
    if any(r.uncommitted_differs for r in code.repos):
        return ["the code differs: the uncommitted changes are not the same"]
    changed = [
        c
        for c in code.changes
        if c.key.endswith((": sha", ": dirty")) or c.change in ("added", "removed")
    ]
    return [f"the code differs: {_listed(changed)}"] if changed else []


def verdict_document(
    outcome: Outcome,
    causes: list[str],
    *,
    original: str,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``verdict`` state document stored on the new run.

    Args:
        outcome: The comparison.
        causes: From :func:`explain`.
        original: The original run's id.
        extra: More facts (environment mode, package differences, what was not restored).

    Returns:
        A JSON-ready dict.
    """
    doc: dict[str, Any] = {
        "verdict": outcome.verdict,
        "summary": outcome.summary(),
        "of": original,
        "rtol": outcome.rtol,
        "atol": outcome.atol,
        "first_divergence": outcome.first_divergence and outcome.first_divergence.to_dict(),
        "first_difference": outcome.first_difference and outcome.first_difference.to_dict(),
        "causes": list(causes),
        "keys": [k.to_dict() for k in outcome.keys[:200]],
        "artifacts": [a.to_dict() for a in outcome.artifacts[:200]],
        "reasons": list(outcome.reasons),
        **(extra or {}),
    }
    out: dict[str, Any] = json_safe(doc)
    return out
