"""Why two runs' outcomes differ, in words, and the verdict document stored on a run.

:func:`explain` reads the :class:`~mltrail.diff.RunDiff` of the two runs' captured state and
the original's seeding, and names the likely causes: a seed that was not set, another GPU or
driver, package versions, the Python version, environment variables, config, code, data.
When nothing recorded differs, the program itself is non-deterministic, and the explanation
says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mltrail.entities import json_safe

if TYPE_CHECKING:
    from mltrail.diff import Change, RunDiff
    from mltrail.repro.compare import Outcome

__all__ = ["SEED_NOT_SET", "VERDICT_KIND", "VERDICT_TAG", "explain", "verdict_document"]

VERDICT_TAG = "mltrail.verdict"
REPRODUCTION_TAG = "reproduction-of"
VERDICT_KIND = "verdict"
SEED_NOT_SET = "the seed was not set"
_LISTED = 6


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
    if outcome.verdict == "identical":
        return []
    causes: list[str] = []
    seeding_a = _seeding(state_a)
    if "seeds" in state_a and seeding_a is None:
        causes.append(
            f"{SEED_NOT_SET}: the original run did not call mltrail.seed_everything, so its "
            "random state was not recorded and cannot be restored"
        )
    elif state_b is not None and "seeds" in state_b and _seeding(state_b) is None:
        causes.append(f"{SEED_NOT_SET} in the new run (mltrail.seed_everything was not called)")
    kinds = diff.kinds
    seeds = kinds.get("seeds")
    if seeds is not None and seeding_a is not None:
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
    hardware = kinds.get("hardware")
    if hardware is not None:
        gpu = [c for c in hardware.changes if c.key.startswith(("gpus", "gpu_count"))]
        cpu = [c for c in hardware.changes if c.key.startswith("cpu.model")]
        if gpu:
            causes.append(f"a different GPU: {_listed(gpu)}")
        if cpu:
            causes.append(f"a different CPU: {_listed(cpu)}")
    if seeding_a is not None and not seeding_a.get("deterministic"):
        hw = state_a.get("hardware") if isinstance(state_a.get("hardware"), dict) else {}
        if hw and hw.get("gpus"):
            causes.append(
                "deterministic algorithms were off on a GPU (seed_everything(deterministic="
                "False)): non-deterministic CUDA kernels (atomic adds) change the low bits"
            )
    env = kinds.get("environment")
    if env is not None:
        packages = [c for c in env.changes if c.key.startswith("packages.")]
        python = [c for c in env.changes if c.key.startswith("python.version")]
        variables = [c for c in env.changes if c.key.startswith("env.")]
        if packages:
            causes.append(f"package versions differ: {_listed(packages)}")
        if python:
            causes.append(f"the Python version differs: {_listed(python)}")
        if variables:
            causes.append(f"numerics environment variables differ: {_listed(variables)}")
    for kind, what in (("config", "the config differs"), ("data", "the input data differs")):
        kd = kinds.get(kind)
        if kd is not None and kd.changes:
            causes.append(f"{what}: {_listed(kd.changes)}")
    code = kinds.get("code")
    if code is not None and not code.identical:
        changed = [
            c
            for c in code.changes
            if c.key.endswith((": sha", ": dirty")) or c.change in ("added", "removed")
        ]
        if any(r.uncommitted_differs for r in code.repos):
            causes.append("the code differs: the uncommitted changes are not the same")
        elif changed:
            causes.append(f"the code differs: {_listed(changed)}")
    if not causes:
        causes.append(
            "nothing in the recorded state differs: the program itself is non-deterministic "
            "(wall-clock time, unseeded shuffling or sampling, thread scheduling, or "
            "non-deterministic kernels)"
        )
    return causes


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
