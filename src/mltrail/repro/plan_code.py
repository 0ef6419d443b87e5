"""Plan the code: the recorded commit of the entry repository (a worktree of it, or a clone of
a recorded remote), the uncommitted diff, and what was never recorded (untracked files)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltrail.errors import MltrailError
from mltrail.repro.plan import capture_error, listed

if TYPE_CHECKING:
    from mltrail.api import Api
    from mltrail.repro.plan import Plan

__all__ = ["plan_code"]


def plan_code(plan: Plan, api: Api, doc: dict[str, Any] | None) -> None:
    """Add the code lines to ``plan`` and set its repository, commit, remotes and diff.

    Args:
        plan: The plan being made.
        api: Where the run lives (the diff blob is read from it).
        doc: The run's ``code`` state (None when capture was off).
    """
    repos = _versioned_repos(plan, doc)
    if repos is None:
        return
    assert doc is not None
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
    _plan_commit(plan, root)
    _plan_dirty(plan, api, entry)
    _note_other_repos(plan, repos, entry)


def _versioned_repos(plan: Plan, doc: dict[str, Any] | None) -> list[dict[str, Any]] | None:
    """The recorded repositories, or None (and a ``missing`` line) without a code version."""
    if doc is None:
        plan.add("code", "code", "missing", "no code capture was recorded (capture was off)")
        return None
    if (err := capture_error(doc)) is not None:
        plan.add("code", "code", "missing", f"the code capture failed: {err}")
        return None
    if not doc.get("versioned"):
        why = f" ({doc['reason']})" if doc.get("reason") else ""
        plan.add(
            "code",
            "code",
            "missing",
            f"the entry point was not in a git repository{why}: no code version to restore; "
            "the command runs on the code as it is now",
        )
        return None
    return [r for r in doc.get("repos") or [] if isinstance(r, dict)]


def _plan_commit(plan: Plan, root: str) -> None:
    """Where the commit comes from: the repository itself, a remote, or nowhere."""
    from mltrail.repro.code import has_commit

    assert plan.sha is not None
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


def _note_other_repos(plan: Plan, repos: list[dict[str, Any]], entry: dict[str, Any]) -> None:
    for other in repos:
        if other is not entry:
            plan.add(
                "code",
                str(other.get("root")),
                "note",
                f"another repository the run used (at {str(other.get('sha'))[:12]}): not "
                "checked out; the command sees it where it is now",
            )


def _plan_dirty(plan: Plan, api: Api, entry: dict[str, Any]) -> None:
    """Untracked source files (restored from their blobs), outputs and other untracked files
    (never restored), and the recorded uncommitted diff."""
    _plan_untracked(plan, api, entry)
    if entry.get("diff_error"):
        plan.add(
            "code",
            "uncommitted changes",
            "missing",
            f"the uncommitted diff was not recorded: {entry['diff_error']}",
        )
        return
    digest = entry.get("diff")
    if digest:
        _plan_diff(plan, api, entry, str(digest))


def _plan_untracked(plan: Plan, api: Api, entry: dict[str, Any]) -> None:
    files = [f for f in entry.get("untracked_sources") or [] if isinstance(f, dict)]
    kept = [f for f in files if isinstance(f.get("digest"), str)]
    lost = [str(f.get("path")) for f in files if f not in kept]
    readable: list[tuple[str, str]] = []
    for f in kept:
        try:
            api.blob(str(f["digest"]))
        except MltrailError:
            lost.append(str(f.get("path")))
            continue
        readable.append((str(f["path"]), str(f["digest"])))
    if readable:
        plan.untracked_sources = readable
        plan.add(
            "code",
            "untracked source files",
            "restore",
            f"write back {len(readable)} untracked source file(s) recorded with the run: "
            f"{listed([p for p, _ in readable])}",
        )
    lost += [str(s) for s in entry.get("untracked_skipped") or []]
    if lost:
        plan.add(
            "code",
            "untracked source files",
            "missing",
            f"{len(lost)} untracked source file(s) were not kept: {listed(lost)}",
        )
    recorded = "untracked_sources" in entry
    outputs = [str(o) for o in entry.get("outputs") or []]
    if outputs:
        plan.add(
            "code",
            "outputs",
            "note",
            f"{len(outputs)} output(s) were in the tree (not code; the run makes its own): "
            f"{listed(outputs)}",
        )
    untracked = [str(u) for u in entry.get("untracked") or []]
    if untracked and not recorded:  # a run recorded before untracked sources were kept
        more = "+" if entry.get("untracked_truncated") else ""
        plan.add(
            "code",
            "untracked files",
            "missing",
            f"{len(untracked)}{more} untracked file(s) existed and were never recorded (only "
            f"their names): {listed(untracked)}; they will be absent",
        )


def _plan_diff(plan: Plan, api: Api, entry: dict[str, Any], digest: str) -> None:
    try:
        api.blob(digest)
    except MltrailError as exc:
        plan.add(
            "code",
            "uncommitted changes",
            "missing",
            f"the recorded diff {digest[:19]} is not readable: {exc}",
        )
        return
    plan.diff_digest = digest
    stats = entry.get("diff_stats") or {}
    files = [str(f) for f in entry.get("changed_files") or []]
    plan.add(
        "code",
        "uncommitted changes",
        "restore",
        f"apply the recorded diff {digest[:19]} ({stats.get('files', len(files))} "
        f"files, +{stats.get('insertions', 0)} -{stats.get('deletions', 0)}: "
        f"{listed(files)})",
    )
