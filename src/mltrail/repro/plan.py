"""The reproduction plan: what will be restored from a run's record and how, and what cannot
be and why.

Read-only: :func:`make_plan` looks at the run's captured state, the recorded repository, the
caches and this machine, and changes nothing. ``mltrail reproduce --dry-run`` prints it;
:func:`mltrail.repro.reproduce` follows it.

This module holds the records (:class:`Plan`, :class:`Item`) and the order of the steps; each
concern plans itself in its own module: :mod:`~mltrail.repro.plan_code` (commit, diff,
untracked files), :mod:`~mltrail.repro.plan_data` (pointer data and artifacts by digest),
:mod:`~mltrail.repro.plan_seeds` (config, seeds, numerics variables),
:mod:`~mltrail.repro.plan_environment` (packages, Python, container, this machine's
hardware) and :mod:`~mltrail.repro.plan_command` (the command line and where it runs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mltrail.errors import InvalidArgumentError

if TYPE_CHECKING:
    from mltrail.api import Api
    from mltrail.entities import RunRecord
    from mltrail.repro.data import DataItem
    from mltrail.repro.environment import PackageChange

__all__ = ["ENV_MODES", "Item", "Plan", "current_hardware", "make_plan"]

ENV_MODES = ("current", "rebuild")
_LISTED = 8


@dataclass(frozen=True, slots=True)
class Item:
    """One line of the plan.

    Attributes:
        kind: ``code``, ``environment``, ``data``, ``config``, ``seeds``, ``command``,
            ``env vars`` or ``hardware``.
        subject: What it is about.
        status: ``restore`` (will be restored, ``detail`` says how), ``missing`` (cannot be
            restored, ``detail`` says why), ``differs`` (this machine or environment differs
            from the record), ``note``.
        detail: How, or why not.
    """

    kind: str
    subject: str
    status: str
    detail: str

    def to_dict(self) -> dict[str, str]:
        """JSON-ready."""
        return {
            "kind": self.kind,
            "subject": self.subject,
            "status": self.status,
            "detail": self.detail,
        }


@dataclass(slots=True)
class Plan:
    """Everything a reproduction needs, read from the record.

    Attributes:
        run: The original run.
        env_mode: ``current`` or ``rebuild``.
        items: The plan, line by line.
        repo_root: The recorded entry repository (its path on the recording machine).
        sha: The recorded commit (None: no code version to restore).
        remotes: The repository's recorded remotes.
        diff_digest: The recorded uncommitted diff's blob digest, if the run was dirty.
        cwd: The recorded working directory.
        argv: The command to run (None when it cannot be known).
        interpreter: ``argv[0]`` is the Python interpreter (replaced by the chosen one).
        env_set: Environment variables to set for the command.
        env_unset: Environment variables to remove for the command.
        seeded: The original called ``seed_everything``.
        seed: The recorded seed.
        packages: The recorded distributions.
        requirements_digest: The blob of the frozen requirements.
        python_version: The recorded Python version.
        package_changes: Differences between the record and this interpreter.
        data: Pointer data and artifacts used, and where they come from.
        untracked_sources: Untracked source files to put back: ``(path, blob digest)``.
        console_metrics: The original's console metric patterns (``NAME=REGEX``).
    """

    run: RunRecord
    env_mode: str
    items: list[Item] = field(default_factory=list)
    repo_root: str | None = None
    sha: str | None = None
    remotes: dict[str, str] = field(default_factory=dict)
    diff_digest: str | None = None
    cwd: str | None = None
    argv: list[str] | None = None
    interpreter: bool = False
    env_set: dict[str, str] = field(default_factory=dict)
    env_unset: list[str] = field(default_factory=list)
    seeded: bool = False
    seed: int | None = None
    packages: dict[str, str] = field(default_factory=dict)
    requirements_digest: str | None = None
    python_version: str | None = None
    package_changes: list[PackageChange] = field(default_factory=list)
    data: list[DataItem] = field(default_factory=list)
    untracked_sources: list[tuple[str, str]] = field(default_factory=list)
    console_metrics: list[str] = field(default_factory=list)

    def add(self, kind: str, subject: str, status: str, detail: str) -> None:
        """Append a line."""
        self.items.append(Item(kind, subject, status, detail))

    @property
    def missing(self) -> list[Item]:
        """What cannot be restored."""
        return [i for i in self.items if i.status == "missing"]

    @property
    def runnable(self) -> bool:
        """Whether there is a command to run."""
        return bool(self.argv)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "run_id": self.run.run_id,
            "project": self.run.project,
            "env_mode": self.env_mode,
            "code": {
                "repository": self.repo_root,
                "sha": self.sha,
                "uncommitted_diff": self.diff_digest,
            },
            "command": {"argv": self.argv, "cwd": self.cwd, "interpreter": self.interpreter},
            "env": {"set": dict(self.env_set), "unset": list(self.env_unset)},
            "seed": {"seeded": self.seeded, "seed": self.seed},
            "package_changes": [c.to_dict() for c in self.package_changes],
            "data": [d.to_dict() for d in self.data],
            "items": [i.to_dict() for i in self.items],
            "missing": [i.to_dict() for i in self.missing],
        }


# -- helpers the planning modules share ----------------------------------------------------


def listed(items: list[str], limit: int = _LISTED) -> str:
    """``a, b, c, ... and N more``: the first ``limit`` items of a list, for a plan line."""
    more = f", ... and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def state_doc(state: dict[str, Any], kind: str) -> dict[str, Any] | None:
    """The captured document of ``kind``, or None when absent or not a mapping."""
    doc = state.get(kind)
    return doc if isinstance(doc, dict) else None


def capture_error(doc: dict[str, Any] | None) -> str | None:
    """The error of a capture that failed (its document is ``{"error": ...}`` only)."""
    if doc is not None and isinstance(doc.get("error"), str) and len(doc) == 1:
        return str(doc["error"])
    return None


def current_hardware() -> tuple[list[dict[str, Any]], dict[str, Any], str | None]:
    """This machine's GPUs (NVML), NVML's status, and the CPU model."""
    from mltrail.repro.plan_environment import current_hardware as probe

    return probe()


# -- entry point --------------------------------------------------------------------------


def make_plan(api: Api, run_id: str, env_mode: str = "current") -> Plan:
    """Work out how to reproduce ``run_id`` here, changing nothing.

    Args:
        api: Where the run lives.
        run_id: The run's id or unambiguous prefix.
        env_mode: ``current`` (reuse this interpreter, report package differences) or
            ``rebuild`` (a fresh virtual environment from the frozen requirements).

    Returns:
        The :class:`Plan`.

    Raises:
        NotFoundError: No such run.
        InvalidArgumentError: A bad ``env_mode``.
    """
    from mltrail.repro import plan_code, plan_command, plan_data, plan_environment, plan_seeds

    if env_mode not in ENV_MODES:
        raise InvalidArgumentError(f"--env must be one of {', '.join(ENV_MODES)}, got {env_mode!r}")
    record = api.run(run_id)
    state = api.state(record.run_id)
    plan = Plan(record, env_mode)
    _note_status(plan)
    plan_code.plan_code(plan, api, state_doc(state, "code"))
    plan_data.plan_data(plan, api, state)
    plan_seeds.plan_config(plan)
    plan_seeds.plan_seeds(plan, state)
    plan_environment.plan_environment(plan, api, state_doc(state, "environment"))
    plan_seeds.plan_env_vars(plan, state)
    plan_environment.plan_hardware(plan, state_doc(state, "hardware"))
    plan_command.plan_command(plan, state)
    return plan


def _note_status(plan: Plan) -> None:
    """A note when the original did not finish: its metrics may stop early."""
    status = plan.run.status.value
    if status != "finished":
        plan.add(
            "outcome",
            "original status",
            "note",
            f"the original ended {status}: its metrics may stop early",
        )
