"""A reproducibility checklist for a run, computed from what was captured: the questions an
ML code reviewer asks. Each item passes, warns or fails with its reason; the score is
``(passes + warnings / 2) / items``. ``mltrail check`` applies a policy to it (a minimum
score, items that must pass), from its options or ``[check]`` in ``.mltrail/config.toml``::

    [check]
    min_score = 0.8
    require = ["code", "seed"]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mltrail.api import Api

__all__ = ["ITEMS", "Check", "Checklist", "checklist", "checklist_of", "reproduction_verdicts"]

#: the items, in order
ITEMS = (
    "code",
    "untracked",
    "data",
    "environment",
    "seed",
    "determinism",
    "hardware",
    "config",
    "outputs",
    "verdict",
)


@dataclass(frozen=True, slots=True)
class Check:
    """One item: ``name``, ``result`` (``pass``, ``warn`` or ``fail``) and why."""

    name: str
    result: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        """JSON-ready."""
        return {"name": self.name, "result": self.result, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Checklist:
    """A run's checklist."""

    run_id: str
    checks: tuple[Check, ...] = field(default_factory=tuple)

    @property
    def score(self) -> float:
        """``(passes + warnings / 2) / items``, 0 to 1."""
        if not self.checks:
            return 0.0
        points = sum({"pass": 1.0, "warn": 0.5}.get(c.result, 0.0) for c in self.checks)
        return round(points / len(self.checks), 3)

    def failures(self, min_score: float | None, require: tuple[str, ...]) -> list[str]:
        """Why the policy is not met (empty when it is)."""
        out: list[str] = []
        if min_score is not None and self.score < min_score:
            out.append(f"score {self.score:.2f} is below {min_score:.2f}")
        by_name = {c.name: c for c in self.checks}
        for name in require:
            check = by_name.get(name)
            if check is None or check.result != "pass":
                why = check.reason if check is not None else "unknown item"
                out.append(f"{name} is required to pass: {why}")
        return out

    def markdown(self) -> str:
        """A block to paste into a pull request."""
        icon = {"pass": "✅", "warn": "⚠️", "fail": "❌"}
        lines = [
            f"**Reproducibility of run `{self.run_id}`: {self.score:.2f}**",
            "",
            "| item | result | reason |",
            "|---|---|---|",
        ]
        for c in self.checks:
            reason = c.reason.replace("|", "\\|")
            lines.append(f"| {c.name} | {icon[c.result]} {c.result} | {reason} |")
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "run_id": self.run_id,
            "score": self.score,
            "checks": [c.to_dict() for c in self.checks],
        }


def _entry(state: dict[str, Any]) -> dict[str, Any] | None:
    code = state.get("code") or {}
    for repo in code.get("repos") or []:
        if isinstance(repo, dict) and repo.get("root") == code.get("entry_repo"):
            return repo
    return None


def _code(state: dict[str, Any]) -> Check:
    repo = _entry(state)
    if repo is None or not repo.get("sha"):
        return Check("code", "fail", "no commit recorded (not in git, or no commit yet)")
    if repo.get("diff_error"):
        return Check("code", "fail", f"uncommitted diff not recorded: {repo['diff_error']}")
    if repo.get("changed_files"):
        n = len(repo["changed_files"])
        return Check("code", "warn", f"{n} uncommitted file(s), diff recorded")
    return Check("code", "pass", f"committed at {str(repo['sha'])[:12]}")


def _untracked(state: dict[str, Any]) -> Check:
    repo = _entry(state) or {}
    skipped = repo.get("untracked_skipped") or []
    kept = repo.get("untracked_sources") or []
    if skipped:
        return Check("untracked", "fail", f"{len(skipped)} untracked source file(s) not saved")
    if kept:
        return Check("untracked", "warn", f"{len(kept)} untracked source file(s) saved")
    return Check("untracked", "pass", "no untracked source files")


def _data(state: dict[str, Any]) -> Check:
    pointers = (state.get("data") or {}).get("pointers") or []
    used = (state.get("inputs") or {}).get("inputs") or []
    if not pointers and not used:
        return Check("data", "warn", "no data inputs recorded (mltrail data add, use_artifact)")
    return Check("data", "pass", f"{len(pointers) + len(used)} input(s) recorded by digest")


def _environment(state: dict[str, Any]) -> Check:
    env = state.get("environment") or {}
    if env.get("lock_files"):
        return Check("environment", "pass", "a lock file is recorded")
    if env.get("requirements"):
        n = len(env.get("packages") or {})
        return Check("environment", "pass", f"a rebuildable package list ({n} packages)")
    return Check("environment", "fail", "no package list recorded")


def _seed(state: dict[str, Any]) -> Check:
    from mltrail.repro.verdict import _config_seeds

    seeding = (state.get("seeds") or {}).get("seeding")
    if isinstance(seeding, dict) and seeding.get("seed") is not None:
        return Check("seed", "pass", f"seed {seeding['seed']} set and recorded")
    given = _config_seeds(state)
    if given:
        return Check("seed", "warn", f"seeded through the config ({', '.join(given[:3])})")
    return Check("seed", "fail", "no seed recorded (mltrail.seed_everything)")


def _determinism(state: dict[str, Any]) -> Check:
    seeding = (state.get("seeds") or {}).get("seeding")
    if isinstance(seeding, dict) and seeding.get("deterministic"):
        return Check("determinism", "pass", "deterministic algorithms on")
    return Check("determinism", "warn", "deterministic algorithms not switched on")


def _hardware(state: dict[str, Any]) -> Check:
    hw = state.get("hardware")
    if isinstance(hw, dict) and not hw.get("error"):
        return Check("hardware", "pass", "hardware recorded")
    return Check("hardware", "fail", "no hardware recorded")


def _config(state: dict[str, Any]) -> Check:
    doc = state.get("config") or {}
    if doc.get("config"):
        return Check("config", "pass", f"config recorded ({doc.get('source') or 'dict'})")
    return Check("config", "warn", "no config recorded, only the command line")


def _outputs(state: dict[str, Any]) -> Check:
    files = (state.get("files") or {}).get("files") or []
    arts = (state.get("outputs") or {}).get("outputs") or []
    if files or arts:
        return Check("outputs", "pass", f"{len(files) + len(arts)} output(s) digested")
    return Check("outputs", "warn", "no outputs digested (mltrail run, log_artifact)")


def reproduction_verdicts(api: Api, run_id: str, project: str) -> list[str]:
    """The verdicts of the reproductions of ``run_id`` (tagged runs of its project)."""
    from mltrail.repro.verdict import REPRODUCTION_TAG, VERDICT_TAG

    wanted = f"tags.`{REPRODUCTION_TAG}` = '{run_id}'"  # run ids are [0-9a-z]: no quoting
    return [
        str(r.tags[VERDICT_TAG])
        for r in api.runs(project=project, filter=wanted)
        if r.tags.get(REPRODUCTION_TAG) == run_id and r.tags.get(VERDICT_TAG)
    ]


def _verdict(verdicts: list[str]) -> Check:
    good = [v for v in verdicts if v in ("identical", "within-tolerance", "failure-reproduced")]
    if good:
        return Check("verdict", "pass", f"reproduced: {good[0]}")
    if verdicts:
        return Check("verdict", "fail", f"a reproduction {verdicts[0]}")
    return Check("verdict", "warn", "never reproduced (mltrail reproduce)")


def checklist(api: Api, run_id: str) -> Checklist:
    """The checklist of a run (id or unambiguous prefix)."""
    rec = api.run(run_id)
    state = api.state(rec.run_id)
    return checklist_of(rec.run_id, state, reproduction_verdicts(api, rec.run_id, rec.project))


def checklist_of(run_id: str, state: dict[str, Any], verdicts: list[str]) -> Checklist:
    """The checklist of a run from its captured ``state`` and the ``verdicts`` of its
    reproductions (:func:`reproduction_verdicts`): no store needed."""
    checks = (
        _code(state),
        _untracked(state),
        _data(state),
        _environment(state),
        _seed(state),
        _determinism(state),
        _hardware(state),
        _config(state),
        _outputs(state),
        _verdict(verdicts),
    )
    return Checklist(run_id, checks)
