"""`mltrail data gc`: keep what pointers in given revisions, runs and artifacts reference."""

from __future__ import annotations

import json
import time
from pathlib import Path

from clihelp_data import run_json
from datahelp import commit_all, write_files

from mltrail.data.ops import add, open_cache
from mltrail.data.remotes import gc
from mltrail.data.repo import DataRepo


def _replace(path: Path, content: str) -> None:
    path.unlink()
    path.write_text(content)


def test_gc_keeps_revisions_and_workspace(repo: Path) -> None:
    """Old versions go unless their revision is named; --dry-run removes nothing."""
    write_files(repo, {"f.bin": "v1"})
    (v1,) = add(DataRepo(repo), ["f.bin"])
    first = commit_all(repo, "v1")
    _replace(repo / "f.bin", "v2")
    (v2,) = add(DataRepo(repo), ["f.bin"])
    commit_all(repo, "v2")
    _replace(repo / "f.bin", "v3")
    (v3,) = add(DataRepo(repo), ["f.bin"])  # workspace only, not committed
    dry = gc(DataRepo(repo), dry_run=True, grace_minutes=0)
    assert dry.removed == [v1.pointer.digest] and dry.dry_run
    with open_cache(DataRepo(repo)) as cache:
        assert cache.exists(v1.pointer.digest)
    kept = gc(DataRepo(repo), revs=["HEAD", first], grace_minutes=0)
    assert kept.removed == []
    done = gc(DataRepo(repo), grace_minutes=0)
    assert done.removed == [v1.pointer.digest] and done.bytes == 2
    with open_cache(DataRepo(repo)) as cache:
        assert not cache.exists(v1.pointer.digest)
        assert cache.exists(v2.pointer.digest) and cache.exists(v3.pointer.digest)
    gone = gc(DataRepo(repo), workspace=False, grace_minutes=0)
    assert gone.removed == [v3.pointer.digest]


def test_gc_grace_window_spares_young_objects(repo: Path) -> None:
    """By default (60 minutes, or [gc] grace_minutes) nothing younger is collected, even
    unreferenced; --grace 0 and an older object are collected."""
    write_files(repo, {"f.bin": "v1"})
    (v1,) = add(DataRepo(repo), ["f.bin"])
    (repo / "f.bin.mltrail").unlink()
    young = gc(DataRepo(repo))
    assert young.removed == [] and young.kept == 1 and young.grace_minutes == 60
    (repo / ".mltrail/config.toml").write_text("[gc]\ngrace_minutes = 0.5\n")
    assert gc(DataRepo(repo)).removed == []
    obj = repo / ".mltrail/cache" / "blake3" / v1.pointer.digest[7:9] / v1.pointer.digest[9:]
    assert obj.exists()
    out = run_json("data", "gc", "--grace", "0")
    assert out["removed"] == [v1.pointer.digest] and out["grace_minutes"] == 0
    (repo / ".mltrail/config.toml").write_text("[gc]\ngrace_minutes = -1\n")
    from clihelp_data import run_error

    assert "grace_minutes must be a number >= 0" in run_error("data", "gc")


def test_gc_keeps_pointers_in_ignored_folders(repo: Path) -> None:
    """A pointer file git ignores still keeps its data (workspace pointers are live)."""
    write_files(repo, {"build/x.bin": "x", ".gitignore": "build/\n"})
    (x,) = add(DataRepo(repo), ["build/x.bin"])
    assert gc(DataRepo(repo), grace_minutes=0).removed == []
    (repo / "build/x.bin.mltrail").unlink()
    assert gc(DataRepo(repo), grace_minutes=0).removed == [x.pointer.digest]


def test_gc_keeps_trees_and_what_the_store_references(repo: Path) -> None:
    """Files of kept trees stay; digests in artifact_versions and runs' data stay."""
    import mltrail
    from mltrail.store.registry import open_store
    from mltrail.store.sql.schema import artifact_versions, artifacts, projects, run_state

    write_files(repo, {"d/a": "a", "d/b": "b", "art.bin": "artifact", "run.bin": "run"})
    add(DataRepo(repo), ["d"])
    (art,) = add(DataRepo(repo), ["art.bin"])
    (run_input,) = add(DataRepo(repo), ["run.bin"])
    for name in ("art.bin", "run.bin"):
        (repo / f"{name}.mltrail").unlink()
    with mltrail.init(project="p", store=str(repo / ".mltrail"), capture=False) as run:
        pass
    store = open_store(str(repo / ".mltrail"), shared=False)
    import sqlalchemy as sa

    with store._engine.begin() as conn:  # type: ignore[attr-defined]
        project_id = conn.execute(sa.select(projects.c.project_id)).scalar_one()
        conn.execute(
            artifacts.insert().values(
                artifact_id="a1", project_id=project_id, name="n", type="dataset", created_ms=0
            )
        )
        conn.execute(
            artifact_versions.insert().values(
                artifact_id="a1",
                version=1,
                digest=art.pointer.digest,
                kind="file",
                size=8,
                file_count=1,
                meta="{}",
                created_ms=int(time.time() * 1000),
            )
        )
        doc = {"pointers": [{"path": "run.bin", "digest": run_input.pointer.digest}]}
        conn.execute(
            run_state.insert().values(run_id=run.run_id, kind="data", data=json.dumps(doc))
        )
    store.close()
    out = run_json("data", "gc", "--dry-run")
    assert out["removed"] == [] and out["kept"] == 5  # a, b, tree, artifact, run input


def test_gc_without_store_or_commits(repo: Path) -> None:
    """No tracking store at all: only pointers count; an unknown revision is an error."""
    from mltrail.errors import NotFoundError

    write_files(repo, {"x": "x"})
    add(DataRepo(repo), ["x"])
    assert gc(DataRepo(repo), revs=[]).removed == []
    import pytest

    with pytest.raises(NotFoundError, match="no git revision"):
        gc(DataRepo(repo), revs=["nope"])
