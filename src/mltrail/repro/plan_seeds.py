"""Plan the numerics: the config recorded on the new run, the seed (exported as
``MLTRAIL_SEED`` when it was drawn at random or came from it), the allow-listed numerics
environment variables (set as recorded, unset where the original lacked them) and
``PYTHONHASHSEED``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mltrail.repro.plan import state_doc

if TYPE_CHECKING:
    from mltrail.repro.plan import Plan

__all__ = ["plan_config", "plan_env_vars", "plan_seeds"]


def plan_config(plan: Plan) -> None:
    """A line saying the recorded config comes back on the new run (or that there is none)."""
    n = len(plan.run.params)
    if plan.run.config or plan.run.params:
        plan.add(
            "config",
            "config",
            "restore",
            f"{n} param(s) recorded on the new run; the command's own arguments and files "
            "come back with the command and the code",
        )
    else:
        plan.add("config", "config", "note", "no config or params were recorded")


def plan_seeds(plan: Plan, state: dict[str, Any]) -> None:
    """The seed line; sets ``plan.seeded``, ``plan.seed`` and, when needed, ``MLTRAIL_SEED``.

    Args:
        plan: The plan being made.
        state: The run's captured state (``seeds`` kind).
    """
    seeds = state_doc(state, "seeds")
    if seeds is None:
        plan.add("seeds", "seed", "missing", "seeds and determinism were not recorded")
        return
    seeding = seeds.get("seeding")
    if not isinstance(seeding, dict):
        plan.add(
            "seeds",
            "seed",
            "missing",
            "the seed was not set: the original run did not call mltrail.seed_everything, "
            "so its random state cannot be restored",
        )
        return
    plan.seeded = True
    seed = seeding.get("seed")
    plan.seed = int(seed) if isinstance(seed, int) else None
    source = seeding.get("source")
    det = "deterministic algorithms on" if seeding.get("deterministic") else "default kernels"
    if plan.seed is not None and source in ("random", "env"):
        plan.env_set["MLTRAIL_SEED"] = str(plan.seed)
        how = (
            "drawn at random and recorded; exported as MLTRAIL_SEED so seed_everything() "
            "picks it up"
            if source == "random"
            else "from MLTRAIL_SEED, exported again"
        )
    else:
        how = "passed by the code itself"
    seeded = ", ".join(seeding.get("seeded") or [])
    plan.add("seeds", "seed", "restore", f"{plan.seed} ({how}; seeds {seeded}; {det})")


def plan_env_vars(plan: Plan, state: dict[str, Any]) -> None:
    """The numerics variables and ``PYTHONHASHSEED``: ``plan.env_set`` and ``plan.env_unset``.

    Args:
        plan: The plan being made.
        state: The run's captured state (``environment`` and ``seeds`` kinds).
    """
    _plan_numerics(plan, state)
    _plan_hash_seed(plan, state)


def _plan_numerics(plan: Plan, state: dict[str, Any]) -> None:
    from mltrail.capture.environment import allowed_env

    env_doc = state_doc(state, "environment") or {}
    recorded = {str(k): str(v) for k, v in (env_doc.get("env") or {}).items()}
    plan.env_set.update(recorded)
    extra = sorted(set(allowed_env()) - set(recorded) - set(plan.env_set))
    plan.env_unset.extend(extra)
    if recorded:
        pairs = ", ".join(f"{k}={v}" for k, v in recorded.items())
        plan.add("env vars", "numerics variables", "restore", pairs)
    if extra:
        plan.add(
            "env vars",
            "numerics variables",
            "restore",
            f"unset for the command (not set in the original): {', '.join(extra)}",
        )


def _plan_hash_seed(plan: Plan, state: dict[str, Any]) -> None:
    seeds = state_doc(state, "seeds") or {}
    st = seeds.get("state") or {}
    seeding = seeds.get("seeding") if isinstance(seeds.get("seeding"), dict) else None
    env = st.get("env") or {}
    set_by_seeding = "PYTHONHASHSEED" in ((seeding or {}).get("switches") or {})
    if st.get("python_hash_randomization") is False:
        value = env.get("PYTHONHASHSEED")
        if value is not None and not set_by_seeding:
            plan.env_set["PYTHONHASHSEED"] = str(value)
            plan.add("env vars", "PYTHONHASHSEED", "restore", f"{value} (fixed at start)")
        else:
            plan.add(
                "env vars",
                "PYTHONHASHSEED",
                "missing",
                "fixed when the original started, but its value was not recorded "
                "(seed_everything overwrote it): str hashes may differ",
            )
    elif st.get("python_hash_randomization") is True:
        plan.env_unset.append("PYTHONHASHSEED")
        plan.add(
            "env vars",
            "PYTHONHASHSEED",
            "note",
            "unset: str hashing was randomised in the original (set/dict order of strings "
            "may differ between runs)",
        )
