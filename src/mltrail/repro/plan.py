"""The reproduction plan: what will be restored from a run's record and how, and what cannot
be and why.

Read-only: :func:`make_plan` looks at the run's captured state, the recorded repository, the
caches and this machine, and changes nothing. ``mltrail reproduce --dry-run`` prints it;
``mltrail reproduce`` follows it.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltrail.errors import InvalidArgumentError, MltrailError

if TYPE_CHECKING:
    from mltrail.api import Api
    from mltrail.entities import RunRecord
    from mltrail.repro.data import DataItem
    from mltrail.repro.environment import PackageChange

__all__ = ["ENV_MODES", "Item", "Plan", "current_hardware", "make_plan"]

ENV_MODES = ("current", "rebuild")
_PYTHON = re.compile(r"^python(\d+(\.\d+)?)?$")
_REDACTED = "***"
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


def _listed(items: list[str], limit: int = _LISTED) -> str:
    more = f", ... and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def _doc(state: dict[str, Any], kind: str) -> dict[str, Any] | None:
    doc = state.get(kind)
    return doc if isinstance(doc, dict) else None


def _failed(doc: dict[str, Any] | None) -> str | None:
    if doc is not None and isinstance(doc.get("error"), str) and len(doc) == 1:
        return str(doc["error"])
    return None


# -- code -------------------------------------------------------------------------------


def _plan_code(plan: Plan, api: Api, doc: dict[str, Any] | None) -> None:
    from mltrail.repro.code import has_commit

    if doc is None:
        plan.add("code", "code", "missing", "no code capture was recorded (capture was off)")
        return
    if (err := _failed(doc)) is not None:
        plan.add("code", "code", "missing", f"the code capture failed: {err}")
        return
    if not doc.get("versioned"):
        why = f" ({doc['reason']})" if doc.get("reason") else ""
        plan.add(
            "code",
            "code",
            "missing",
            f"the entry point was not in a git repository{why}: no code version to restore; "
            "the command runs on the code as it is now",
        )
        return
    repos = [r for r in doc.get("repos") or [] if isinstance(r, dict)]
    entry = next((r for r in repos if r.get("root") == doc.get("entry_repo")), None)
    if entry is None:
        plan.add("code", "code", "missing", "the entry repository's record is missing")
        return
    root = str(entry.get("root"))
    plan.repo_root = root
    plan.remotes = {str(k): str(v) for k, v in (entry.get("remotes") or {}).items()}
    if entry.get("error"):
        plan.add("code", root, "missing", f"git failed when the run started: {entry['error']}")
        return
    sha = entry.get("sha")
    if not sha:
        plan.add("code", root, "missing", "the repository had no commit yet")
        return
    plan.sha = str(sha)
    if has_commit(Path(root), plan.sha):
        how = f"git worktree of {root} at {plan.sha[:12]} (detached)"
        plan.add("code", root, "restore", how)
    elif plan.remotes:
        urls = ", ".join(f"{k} ({v})" for k, v in sorted(plan.remotes.items()))
        plan.add(
            "code",
            root,
            "restore",
            f"{plan.sha[:12]} is not in {root} (not at hand here): clone of {urls}",
        )
    else:
        plan.add(
            "code",
            root,
            "missing",
            f"commit {plan.sha[:12]} is not in {root} and no remote was recorded",
        )
        plan.sha = None
    _plan_dirty(plan, api, entry, root)
    for other in repos:
        if other is not entry:
            plan.add(
                "code",
                str(other.get("root")),
                "note",
                f"another repository the run used (at {str(other.get('sha'))[:12]}): not "
                "checked out; the command sees it where it is now",
            )


def _plan_dirty(plan: Plan, api: Api, entry: dict[str, Any], root: str) -> None:
    untracked = [str(u) for u in entry.get("untracked") or []]
    if untracked:
        more = "+" if entry.get("untracked_truncated") else ""
        plan.add(
            "code",
            "untracked files",
            "missing",
            f"{len(untracked)}{more} untracked file(s) existed and were never recorded (only "
            f"their names): {_listed(untracked)}; they will be absent",
        )
    if entry.get("diff_error"):
        plan.add(
            "code",
            "uncommitted changes",
            "missing",
            f"the uncommitted diff was not recorded: {entry['diff_error']}",
        )
        return
    digest = entry.get("diff")
    if not digest:
        return
    try:
        api.blob(str(digest))
    except MltrailError as exc:
        plan.add(
            "code",
            "uncommitted changes",
            "missing",
            f"the recorded diff {str(digest)[:19]} is not readable: {exc}",
        )
        return
    plan.diff_digest = str(digest)
    stats = entry.get("diff_stats") or {}
    files = [str(f) for f in entry.get("changed_files") or []]
    plan.add(
        "code",
        "uncommitted changes",
        "restore",
        f"apply the recorded diff {plan.diff_digest[:19]} ({stats.get('files', len(files))} "
        f"files, +{stats.get('insertions', 0)} -{stats.get('deletions', 0)}: "
        f"{_listed(files)})",
    )


# -- command ------------------------------------------------------------------------------


def _is_python(arg: str, executable: str | None) -> bool:
    return bool(_PYTHON.match(Path(arg).name)) or (executable is not None and arg == executable)


def _plan_command(plan: Plan, state: dict[str, Any]) -> None:
    inv = _doc(state, "invocation")
    env = _doc(state, "environment") or {}
    executable = (env.get("python") or {}).get("executable")
    argv: list[str] | None = None
    if inv and isinstance(inv.get("argv"), list) and inv["argv"]:
        argv = [str(a) for a in inv["argv"]]
        plan.cwd = inv.get("cwd") if isinstance(inv.get("cwd"), str) else None
        recorded = executable if not inv.get("wrapped") else inv.get("executable")
        plan.interpreter = not inv.get("wrapped") or _is_python(argv[0], recorded)
        source = "the wrapped command (mltrail run)" if inv.get("wrapped") else "the command line"
    else:
        cfg = _doc(state, "config") or {}
        args = cfg.get("argv")
        if not isinstance(args, list) or not args:
            plan.add("command", "command", "missing", "no command line was recorded")
            return
        if args[0] in ("-c", ""):
            plan.add(
                "command",
                "command",
                "missing",
                "the program was given inline (python -c): its text was not recorded",
            )
            return
        argv = [str(executable or "python"), *map(str, args)]
        plan.interpreter = True
        source = "the script's argv (the interpreter's own options and folder were not recorded)"
        plan.add(
            "command",
            "working directory",
            "note",
            "not recorded (a run from before invocation capture): the repository root is used",
        )
    if argv[0] == "-c" or (plan.interpreter and len(argv) > 1 and argv[1] == "-c"):
        plan.add(
            "command",
            "command",
            "missing",
            "the program was given inline (python -c): its text was not recorded",
        )
        return
    plan.argv = argv
    shown = " ".join(argv[1:] if plan.interpreter else argv)
    who = "python " if plan.interpreter else ""
    plan.add("command", "command", "restore", f"{who}{shown}  (from {source})")
    if any(_REDACTED in a for a in argv):
        hidden = [a for a in argv if _REDACTED in a]
        plan.add(
            "command",
            "redacted arguments",
            "missing",
            f"values of secret-looking options were not recorded ({_listed(hidden)}): they "
            "are passed as '***'; set them through the environment instead",
        )


# -- environment --------------------------------------------------------------------------


def _plan_environment(plan: Plan, api: Api, doc: dict[str, Any] | None) -> None:
    from mltrail.capture.environment import installed_packages
    from mltrail.repro.environment import find_uv, package_changes

    if doc is None or _failed(doc) is not None:
        why = "not recorded" if doc is None else f"capture failed: {_failed(doc)}"
        plan.add("environment", "packages", "missing", f"the environment was {why}")
        return
    plan.packages = {str(k): str(v) for k, v in (doc.get("packages") or {}).items()}
    py = doc.get("python") or {}
    plan.python_version = py.get("version")
    plan.requirements_digest = doc.get("requirements")
    here = ".".join(map(str, sys.version_info[:3]))
    if plan.env_mode == "current":
        plan.package_changes = package_changes(plan.packages, installed_packages())
        changes = [c.describe() for c in plan.package_changes]
        detail = f"this interpreter ({sys.executable}, Python {here})"
        if changes:
            plan.add(
                "environment",
                "packages",
                "differs",
                f"{detail}: {len(changes)} package(s) differ from the record: {_listed(changes)}",
            )
        else:
            plan.add(
                "environment",
                "packages",
                "restore",
                f"{detail}: all {len(plan.packages)} recorded packages at their versions",
            )
    else:
        readable = False
        if plan.requirements_digest:
            try:
                api.blob(str(plan.requirements_digest))
                readable = True
            except MltrailError:
                readable = False
        if not readable:
            plan.add(
                "environment",
                "packages",
                "missing",
                "the frozen requirements were not recorded or are not readable: cannot rebuild",
            )
        else:
            tool = "uv" if find_uv() else "python -m venv + pip"
            plan.add(
                "environment",
                "packages",
                "restore",
                f"a fresh virtual environment with {len(plan.packages)} packages at their "
                f"recorded versions ({tool}); packages no index provides are reported",
            )
    if plan.python_version and plan.python_version != here:
        plan.add(
            "environment",
            "python",
            "differs",
            f"the run used Python {plan.python_version}; this machine runs {here}",
        )
    from mltrail.capture.environment import _container, _nix

    here_env = {"container": _container(), "nix": _nix()}
    for part in ("container", "nix"):
        if doc.get(part) and doc.get(part) != here_env[part]:
            info = ", ".join(f"{k}={v}" for k, v in doc[part].items())
            plan.add(
                "environment",
                part,
                "note",
                f"the run was in a {part} ({info}): not re-created, run this inside it",
            )


def _plan_env_vars(plan: Plan, state: dict[str, Any]) -> None:
    from mltrail.capture.environment import allowed_env

    env_doc = _doc(state, "environment") or {}
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
    seeds = _doc(state, "seeds") or {}
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


# -- seeds, config, hardware ---------------------------------------------------------------


def _plan_seeds(plan: Plan, state: dict[str, Any]) -> None:
    seeds = _doc(state, "seeds")
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


def _plan_config(plan: Plan) -> None:
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


def current_hardware() -> tuple[list[dict[str, Any]], dict[str, Any], str | None]:
    """This machine's GPUs (NVML), NVML's status, and the CPU model."""
    from mltrail.capture.hardware import _cpu, gpus

    found, nvml = gpus()
    return found, nvml, _cpu().get("model")


def _gpu_text(g: dict[str, Any]) -> str:
    return (
        f"{g.get('name')} (driver {g.get('driver_version')}, CUDA {g.get('cuda_driver_version')})"
    )


def _plan_hardware(plan: Plan, doc: dict[str, Any] | None) -> None:
    if doc is None or _failed(doc) is not None:
        plan.add("hardware", "machine", "note", "the original machine was not recorded")
        return
    gpus_here, nvml, cpu_here = current_hardware()
    recorded = [g for g in doc.get("gpus") or [] if isinstance(g, dict)]
    if recorded and not gpus_here:
        plan.add(
            "hardware",
            "gpu",
            "differs",
            f"the original ran with {len(recorded)} GPU(s): {_gpu_text(recorded[0])}; this "
            f"machine has none ({nvml.get('reason') or 'no GPU'}): GPU code falls back or fails",
        )
    elif recorded and gpus_here:
        a = [(g.get("name"), g.get("driver_version")) for g in recorded]
        b = [(g.get("name"), g.get("driver_version")) for g in gpus_here]
        if [n for n, _ in a] != [n for n, _ in b]:
            plan.add(
                "hardware",
                "gpu",
                "differs",
                f"the original GPU model differs: {_gpu_text(recorded[0])} × {len(recorded)} "
                f"there, {_gpu_text(gpus_here[0])} × {len(gpus_here)} here: kernels and "
                "rounding may differ",
            )
        elif a != b:
            plan.add(
                "hardware",
                "gpu driver",
                "differs",
                f"same GPU model, driver {recorded[0].get('driver_version')} there, "
                f"{gpus_here[0].get('driver_version')} here",
            )
    elif gpus_here and not recorded:
        plan.add(
            "hardware",
            "gpu",
            "differs",
            f"the original ran without a GPU; this machine has {_gpu_text(gpus_here[0])}",
        )
    cpu = (doc.get("cpu") or {}).get("model")
    if cpu and cpu_here and cpu != cpu_here:
        plan.add(
            "hardware",
            "cpu",
            "differs",
            f"{cpu} there, {cpu_here} here (vectorised math may round differently)",
        )


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
    from mltrail.repro.data import PIN_ENV, check_data, check_inputs, input_pins

    if env_mode not in ENV_MODES:
        raise InvalidArgumentError(f"--env must be one of {', '.join(ENV_MODES)}, got {env_mode!r}")
    record = api.run(run_id)
    state = api.state(record.run_id)
    plan = Plan(record, env_mode)
    if record.status.value != "finished":
        plan.add(
            "outcome",
            "original status",
            "note",
            f"the original ended {record.status.value}: its metrics may stop early",
        )
    _plan_code(plan, api, _doc(state, "code"))
    root = Path(plan.repo_root) if plan.repo_root and os.path.isdir(plan.repo_root) else None
    plan.data = check_data(_doc(state, "data"), root)
    plan.data += check_inputs(_doc(state, "inputs"), api.location)
    pins = input_pins(_doc(state, "inputs"))
    if pins:
        import json

        plan.env_set[PIN_ENV] = json.dumps(pins, sort_keys=True)
    for item in plan.data:
        status = {"cache": "restore", "remote": "restore", "external": "note"}.get(
            item.status, "missing"
        )
        if item.source == "artifact":
            detail = item.detail if status != "restore" else f"{item.detail} ({item.where})"
        elif item.status == "cache":
            detail = f"check out {item.digest} from the cache {item.where}, verified"
        elif item.status == "remote":
            detail = f"pull {item.digest} from remote {item.where}, verified, then check out"
        else:
            detail = item.detail
        plan.add("data", item.path, status, detail)
    _plan_config(plan)
    _plan_seeds(plan, state)
    _plan_environment(plan, api, _doc(state, "environment"))
    _plan_env_vars(plan, state)
    _plan_hardware(plan, _doc(state, "hardware"))
    _plan_command(plan, state)
    return plan
