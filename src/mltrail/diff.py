"""What changed between two runs, across every kind of captured state (``mltrail diff``).

Pure comparison logic, no output: :func:`diff_runs` returns a :class:`RunDiff` grouped by
kind (code, config, data, environment, hardware, seeds, outcome). Each kind lists its
:class:`Change` entries and says whether it is identical; a kind one run did not record (an
older run, capture turned off) is reported as "not recorded in A" (or B), never an error.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltrail.entities import json_safe
from mltrail.errors import MltrailError

if TYPE_CHECKING:
    from mltrail.api import Api
    from mltrail.entities import MetricSummary, RunRecord

__all__ = ["KINDS", "Change", "FileChange", "KindDiff", "MetricDiff", "RepoDiff", "RunDiff"]
__all__ += ["diff_runs"]

KINDS = ("code", "config", "data", "environment", "hardware", "seeds", "outcome")
SYSTEM_PREFIX = "system/"
_MISSING: Any = object()
_GIT_TIMEOUT_S = 30.0
_GPU_FIELDS = "name memory_total_bytes compute_capability driver_version cuda_driver_version"
_GPU_FIELDS += " mig_mode"


@dataclass(frozen=True, slots=True)
class Change:
    """One value that differs: ``key`` (dotted), A's and B's values (None where absent).

    ``change`` is ``added`` (only in B), ``removed`` (only in A), ``changed``, or for
    packages ``upgraded`` / ``downgraded``.
    """

    key: str
    a: Any
    b: Any
    change: str


@dataclass(frozen=True, slots=True)
class FileChange:
    """A file changed between two commits (``git diff --numstat``; counts None if binary)."""

    path: str
    added: int | None
    deleted: int | None


@dataclass(slots=True)
class RepoDiff:
    """One repository both runs recorded.

    Attributes:
        root: The repository's work-tree root.
        sha_a: HEAD in A.
        sha_b: HEAD in B.
        files: Files changed between the commits; None when the commits are the same or
            the repository is not at hand (``note`` says why).
        uncommitted_differs: The uncommitted diffs of A and B differ.
        uncommitted_files: Files whose uncommitted changes differ.
        note: Why something could not be worked out.
    """

    root: str
    sha_a: str | None
    sha_b: str | None
    files: list[FileChange] | None = None
    uncommitted_differs: bool = False
    uncommitted_files: list[str] = field(default_factory=list)
    note: str | None = None


def _same(a: Any, b: Any) -> bool:
    """Equality where NaN equals NaN and ``True`` does not equal ``1``."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b) and isinstance(a, bool) == isinstance(b, bool)


_SUMMARY = ("last", "last_step", "min", "max", "count")


@dataclass(frozen=True, slots=True)
class MetricDiff:
    """One metric key side by side: A's and B's summaries (None where not logged)."""

    key: str
    a: MetricSummary | None
    b: MetricSummary | None

    @property
    def delta_last(self) -> float | None:
        """B's last value minus A's; None unless both logged the key."""
        return None if self.a is None or self.b is None else self.b.last - self.a.last

    @property
    def changed(self) -> bool:
        """Whether last (or its step), min, max or count differ, or one run lacks the key."""
        if self.a is None or self.b is None:
            return True
        return not all(_same(getattr(self.a, f), getattr(self.b, f)) for f in _SUMMARY)

    def to_dict(self) -> dict[str, Any]:
        """A dict for JSON (non-finite floats stay floats: :meth:`RunDiff.to_dict` spells them)."""
        a, b = ({f: getattr(m, f) for f in _SUMMARY} if m else None for m in (self.a, self.b))
        return {
            "key": self.key,
            "a": a,
            "b": b,
            "delta_last": self.delta_last,
            "changed": self.changed,
        }


@dataclass(slots=True)
class KindDiff:
    """The comparison of one kind of state.

    Attributes:
        kind: One of :data:`KINDS`.
        in_a: Run A recorded this kind.
        in_b: Run B recorded this kind.
        changes: What differs.
        repos: Per-repository details (kind ``code`` only).
        metrics: Every metric key side by side (kind ``outcome`` only).
        notes: What was not recorded or could not be compared.
    """

    kind: str
    in_a: bool = True
    in_b: bool = True
    changes: list[Change] = field(default_factory=list)
    repos: list[RepoDiff] = field(default_factory=list)
    metrics: list[MetricDiff] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        """Nothing differs (a kind neither run recorded counts as identical)."""
        return (
            self.in_a == self.in_b
            and not self.changes
            and not any(r.uncommitted_differs or r.files for r in self.repos)
            and not any(m.changed for m in self.metrics)
        )

    def to_dict(self) -> dict[str, Any]:
        """A dict for JSON: identical, recorded, changes, notes; repos or metrics by kind."""
        d: dict[str, Any] = {
            "identical": self.identical,
            "recorded": {"a": self.in_a, "b": self.in_b},
            "changes": [asdict(c) for c in self.changes],
            "notes": list(self.notes),
        }
        if self.kind == "code":
            d["repos"] = [asdict(r) for r in self.repos]
        if self.kind == "outcome":
            d["metrics"] = [m.to_dict() for m in self.metrics]
        return d


@dataclass(slots=True)
class RunDiff:
    """Everything that differs between run A and run B, by kind (in :data:`KINDS` order)."""

    run_a: RunRecord
    run_b: RunRecord
    kinds: dict[str, KindDiff]

    @property
    def identical(self) -> bool:
        """Every kind is identical."""
        return all(k.identical for k in self.kinds.values())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; non-finite floats are spelled ``"NaN"``/``"Infinity"``."""
        runs = {
            f"run_{side}": {"run_id": r.run_id, "project": r.project, "name": r.name}
            for side, r in (("a", self.run_a), ("b", self.run_b))
        }
        kinds = {name: k.to_dict() for name, k in self.kinds.items()}
        out: dict[str, Any] = json_safe({**runs, "identical": self.identical, "kinds": kinds})
        return out


# -- generic comparison ------------------------------------------------------------------


def _flatten(value: Any, prefix: str = "", skip: str = "") -> dict[str, Any]:
    """Nested dicts as ``{"a.b": leaf}`` (lists are leaves), without keys named ``skip``."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            if k != skip or not skip:
                out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k), skip))
        return out
    if value is None and not prefix:
        return {}
    return {prefix: value}


def _compare(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[Change]:
    """Changes between two flat dicts, sorted by key."""
    changes: list[Change] = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key, _MISSING), b.get(key, _MISSING)
        name = f"{prefix}.{key}" if prefix and key else (prefix or key)
        if va is _MISSING:
            changes.append(Change(name, None, vb, "added"))
        elif vb is _MISSING:
            changes.append(Change(name, va, None, "removed"))
        elif not _same(va, vb):
            changes.append(Change(name, va, vb, "changed"))
    return changes


def _compare_nested(a: Any, b: Any, prefix: str) -> list[Change]:
    """Changes between nested dicts; ``errors`` entries are left out (they explain a None)."""
    return _compare(_flatten(a, skip="errors"), _flatten(b, skip="errors"), prefix)


def _kind(kind: str, a: dict[str, Any] | None, b: dict[str, Any] | None) -> KindDiff:
    kd = KindDiff(kind, in_a=a is not None, in_b=b is not None)
    if a is None and b is None:
        kd.notes.append("not recorded in A or B")
    elif a is None or b is None:
        kd.notes.append(f"not recorded in {'A' if a is None else 'B'}")
    for side, doc in (("A", a), ("B", b)):
        if doc is not None and isinstance(doc.get("error"), str):
            kd.notes.append(f"capture failed in {side}: {doc['error']}")
    return kd


# -- kinds -------------------------------------------------------------------------------


def _version_change(a: str, b: str) -> str:
    """``upgraded``/``downgraded`` by PEP 440, else by the numbers in the version strings."""
    try:
        from packaging.version import Version

        order = (Version(b) > Version(a)) - (Version(b) < Version(a))
    except (ImportError, ValueError):  # packaging missing, or InvalidVersion (a ValueError)
        na, nb = (tuple(int(n) for n in re.findall(r"\d+", v)) for v in (a, b))
        order = (nb > na) - (nb < na)
    return {1: "upgraded", -1: "downgraded"}.get(order, "changed")


def _packages(a: dict[str, str], b: dict[str, str]) -> list[Change]:
    changes = _compare(a, b, "packages")
    return [
        Change(c.key, c.a, c.b, _version_change(str(c.a), str(c.b))) if c.change == "changed" else c
        for c in changes
    ]


def _environment(a: dict[str, Any], b: dict[str, Any]) -> list[Change]:
    def python(doc: dict[str, Any]) -> dict[str, Any]:
        py = doc.get("python") or {}
        return {k: py.get(k) for k in ("version", "implementation", "executable") if k in py}

    def locks(doc: dict[str, Any]) -> dict[str, Any]:
        return {e.get("path"): e.get("digest") for e in doc.get("lock_files") or []}

    changes = _compare(python(a), python(b), "python")
    changes += _packages(a.get("packages") or {}, b.get("packages") or {})
    changes += _compare(locks(a), locks(b), "lock_files")
    for part in ("container", "nix", "env"):
        changes += _compare_nested(a.get(part), b.get(part), part)
    return changes


def _hardware_view(doc: dict[str, Any]) -> dict[str, Any]:
    gpus = doc.get("gpus") or []
    return {
        "os": doc.get("os"),
        "hostname": doc.get("hostname"),
        "cpu": doc.get("cpu"),
        "memory_bytes": doc.get("memory_bytes"),
        "gpu_count": len(gpus),
        "gpus": {str(i): {f: g.get(f) for f in _GPU_FIELDS.split()} for i, g in enumerate(gpus)},
        "nvml_available": (doc.get("nvml") or {}).get("available"),
        "frameworks": doc.get("frameworks"),
    }


def _seeds_view(doc: dict[str, Any]) -> dict[str, Any]:
    seeding = doc.get("seeding")
    if isinstance(seeding, dict):  # notes only restate the seed and where it went
        seeding = {k: v for k, v in seeding.items() if k != "notes"}
    return {"seeding": seeding, "state": doc.get("state")}


def _config(
    ra: RunRecord, rb: RunRecord, a: dict[str, Any] | None, b: dict[str, Any] | None
) -> KindDiff:
    kd = KindDiff("config")
    for side, doc in (("A", a), ("B", b)):
        if doc is None:
            kd.notes.append(f"argv and config source not recorded in {side}")
    values_a = {**_flatten(ra.config), **ra.params}
    values_b = {**_flatten(rb.config), **rb.params}
    kd.changes = _compare(values_a, values_b)
    if a is not None and b is not None:
        for part in ("source", "argv"):
            kd.changes += _compare({part: a.get(part)}, {part: b.get(part)})
        hydra_a, hydra_b = a.get("hydra") or {}, b.get("hydra") or {}
        for part in ("overrides", "config_name"):
            kd.changes += _compare({part: hydra_a.get(part)}, {part: hydra_b.get(part)}, "hydra")
    return kd


def _inputs(doc: dict[str, Any]) -> dict[str, Any]:
    """Input digests by name, from ``{"inputs": [{"name", "digest"}]}`` or a name mapping."""
    items = doc.get("inputs", doc)
    if isinstance(items, list):
        return {
            str(i.get("name", n)): i.get("digest")
            for n, i in enumerate(items)
            if isinstance(i, dict)
        }
    if isinstance(items, dict):
        return {str(k): v.get("digest") if isinstance(v, dict) else v for k, v in items.items()}
    return {}


def _pointers(doc: dict[str, Any]) -> dict[str, Any]:
    """Pointer digests by data path, from the ``data`` kind (capture/data.py)."""
    items = doc.get("pointers")
    if not isinstance(items, list):
        return {}
    return {str(p.get("path")): p.get("digest") for p in items if isinstance(p, dict)}


def _data_doc(state: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """One view of the data a run used: artifacts (``inputs``) and pointer files (``data``)."""
    inputs, pointers = state.get("inputs"), state.get("data")
    if inputs is None and pointers is None:
        return None
    merged = {**_inputs(inputs or {}), **_pointers(pointers or {})}
    errors = [d["error"] for d in (inputs, pointers) if d and isinstance(d.get("error"), str)]
    return {"inputs": merged, **({"error": "; ".join(errors)} if errors else {})}


def _data(a: dict[str, Any] | None, b: dict[str, Any] | None) -> KindDiff:
    if a is None and b is None:
        return KindDiff("data", in_a=False, in_b=False, notes=["no inputs recorded"])
    kd = _kind("data", a, b)
    ia, ib = _inputs(a or {}), _inputs(b or {})
    kd.changes = _compare(ia, ib)
    if not ia and not ib and not kd.notes:
        kd.notes.append("no inputs recorded")
    return kd


def _metrics(ra: RunRecord, rb: RunRecord, include_system: bool) -> KindDiff:
    kd = KindDiff("outcome")
    keys = sorted(set(ra.metrics) | set(rb.metrics))
    system = [k for k in keys if k.startswith(SYSTEM_PREFIX)]
    if not include_system:
        keys = [k for k in keys if not k.startswith(SYSTEM_PREFIX)]
        if system:
            kd.notes.append(f"{len(system)} {SYSTEM_PREFIX} metric keys left out")
    kd.metrics = [MetricDiff(k, ra.metrics.get(k), rb.metrics.get(k)) for k in keys]
    return kd


# -- code --------------------------------------------------------------------------------


def _git(root: str, *args: str) -> bytes | None:
    from mltrail._git import run_git
    from mltrail.errors import GitError

    try:
        return run_git(root, *args, timeout_s=_GIT_TIMEOUT_S)
    except GitError:
        return None


def _numstat(root: str, sha_a: str, sha_b: str) -> tuple[list[FileChange] | None, str | None]:
    """Files changed between two commits of a local repository, or None and why not."""
    if not Path(root).is_dir():
        return None, f"repository {root} is not at hand"
    for sha in (sha_a, sha_b):
        if _git(root, "cat-file", "-e", f"{sha}^{{commit}}") is None:
            return None, f"commit {sha[:12]} is not in {root}"
    out = _git(root, "diff", "--numstat", "-z", "--no-renames", sha_a, sha_b, "--")
    if out is None:
        return None, f"git diff --numstat failed in {root}"
    rows = [entry.split("\t", 2) for entry in out.decode("utf-8", "replace").split("\0")]
    return [FileChange(r[2], _count(r[0]), _count(r[1])) for r in rows if len(r) == 3], None


def _count(n: str) -> int | None:
    return int(n) if n.isdigit() else None  # "-" for a binary file


def _patch_sections(diff: bytes) -> dict[str, bytes]:
    """A ``git diff`` split per file: ``{path: that file's section}``."""
    sections: dict[str, bytes] = {}
    path: str | None = None
    for line in diff.split(b"\n"):
        if line.startswith(b"diff --git "):
            path = line.decode("utf-8", "replace").rsplit(" b/", 1)[-1]
            sections[path] = b""
        if path is not None:
            sections[path] += line + b"\n"
    return sections


def _uncommitted(api: Api, repo: RepoDiff, digest_a: Any, digest_b: Any) -> None:
    try:
        patch_a = api.blob(digest_a) if digest_a else b""
        patch_b = api.blob(digest_b) if digest_b else b""
    except MltrailError as exc:
        repo.note = f"uncommitted diff not readable: {exc}"
        return
    sa, sb = _patch_sections(patch_a), _patch_sections(patch_b)
    repo.uncommitted_files = sorted(p for p in set(sa) | set(sb) if sa.get(p) != sb.get(p))


def _repo_changes(root: str, ra: dict[str, Any], rb: dict[str, Any]) -> list[Change]:
    changes: list[Change] = []
    for part in ("sha", "branch", "dirty"):
        if not _same(ra.get(part), rb.get(part)):
            changes.append(Change(f"{root}: {part}", ra.get(part), rb.get(part), "changed"))
    return changes + _compare_nested(ra.get("remotes"), rb.get("remotes"), f"{root}: remotes")


def _code(
    api: Api, a: dict[str, Any] | None, b: dict[str, Any] | None, local_git: bool = True
) -> KindDiff:
    kd = _kind("code", a, b)
    if a is None or b is None:
        return kd
    kd.changes += _compare({"versioned": a.get("versioned")}, {"versioned": b.get("versioned")})
    repos_a = {str(r.get("root")): r for r in a.get("repos") or []}
    repos_b = {str(r.get("root")): r for r in b.get("repos") or []}
    ea, eb = str(a.get("entry_repo")), str(b.get("entry_repo"))
    if ea != eb and ea in repos_a and eb in repos_b and ea not in repos_b and eb not in repos_a:
        # the same code checked out elsewhere (a clone, `mltrail reproduce`'s worktree)
        repos_b[ea] = repos_b.pop(eb)
        kd.notes.append(f"the entry point's repository is {ea} in A and {eb} in B")
    for root in [*repos_a, *(r for r in repos_b if r not in repos_a)]:
        ra, rb = repos_a.get(root), repos_b.get(root)
        if ra is None or rb is None:
            sha_a, sha_b = (ra or {}).get("sha"), (rb or {}).get("sha")
            kd.changes.append(Change(root, sha_a, sha_b, "added" if ra is None else "removed"))
            continue
        kd.changes += _repo_changes(root, ra, rb)
        repo = RepoDiff(root, ra.get("sha"), rb.get("sha"))
        if repo.sha_a and repo.sha_b and repo.sha_a != repo.sha_b:
            if local_git:
                repo.files, repo.note = _numstat(root, repo.sha_a, repo.sha_b)
            else:
                repo.note = "files changed between commits are not listed here (no local git)"
        if ra.get("diff") != rb.get("diff"):
            repo.uncommitted_differs = True
            kd.changes.append(
                Change(f"{root}: uncommitted diff", ra.get("diff"), rb.get("diff"), "changed")
            )
            _uncommitted(api, repo, ra.get("diff"), rb.get("diff"))
        kd.repos.append(repo)
    return kd


# -- entry point -------------------------------------------------------------------------


def diff_runs(
    api: Api, run_a: str, run_b: str, *, include_system: bool = False, local_git: bool = True
) -> RunDiff:
    """Compare two runs across every kind of captured state.

    Args:
        api: Where both runs live.
        run_a: Run A's id or unambiguous id prefix (the "before").
        run_b: Run B's id or prefix (the "after"; values read A → B).
        include_system: Also compare the ``system/...`` metrics in the outcome.
        local_git: List the files changed between the two commits by running ``git`` in the
            recorded repository root. A server passes False: recorded roots come from clients
            and must never be resolved on the server's disk.

    Returns:
        The :class:`RunDiff`, with a :class:`KindDiff` for each of :data:`KINDS`.

    Raises:
        NotFoundError: A run does not exist.
        InvalidArgumentError: A prefix names several runs.
    """
    ra, rb = api.run(run_a), api.run(run_b)
    sa, sb = api.state(ra.run_id), api.state(rb.run_id)
    kinds: dict[str, KindDiff] = {}
    kinds["code"] = _code(api, sa.get("code"), sb.get("code"), local_git)
    kinds["config"] = _config(ra, rb, sa.get("config"), sb.get("config"))
    kinds["data"] = _data(_data_doc(sa), _data_doc(sb))
    for kind in ("environment", "hardware", "seeds"):
        da, db = sa.get(kind), sb.get(kind)
        kd = kinds[kind] = _kind(kind, da, db)
        if da is None or db is None:
            continue
        if kind == "environment":
            kd.changes = _environment(da, db)
        else:
            view = _hardware_view if kind == "hardware" else _seeds_view
            kd.changes = _compare_nested(view(da), view(db), "")
    kinds["outcome"] = _metrics(ra, rb, include_system)
    kinds["outcome"].changes = _ending(ra, rb, sa.get("error"), sb.get("error"))
    return RunDiff(ra, rb, kinds)


def _ending(
    ra: RunRecord, rb: RunRecord, ea: dict[str, Any] | None, eb: dict[str, Any] | None
) -> list[Change]:
    """How each run ended: a status that differs, and the error that failed it."""
    from mltrail.capture.errors import one_line

    out = []
    if ra.status is not rb.status:
        out.append(Change("status", ra.status.value, rb.status.value, "changed"))
    a = one_line(ea) if isinstance(ea, dict) else None
    b = one_line(eb) if isinstance(eb, dict) else None
    if a != b:
        change = "added" if a is None else "removed" if b is None else "changed"
        out.append(Change("error", a, b, change))
    return out
