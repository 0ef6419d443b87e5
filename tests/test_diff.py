"""``mltrail.diff``: real runs in real git repositories, compared kind by kind."""

from __future__ import annotations

import copy
import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import mltrail
from mltrail.diff import KINDS, diff_runs
from mltrail.errors import NotFoundError
from mltrail.store.batch import Batch, MetricSeries
from mltrail.store.registry import open_store
from mltrail.testing.repos import git, init_repo

try:  # seed_everything imports torch; importing it now keeps that out of a capture thread
    import torch  # noqa: F401
except ImportError:
    pass

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git CLI not installed")

TRAIN = "import mltrail\n\nLR = 0.1\nEPOCHS = 3\n"


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capture_isolation: None) -> Path:
    """A committed repository holding train.py, made the current directory."""
    root = tmp_path / "repo"
    init_repo(root, {"train.py": TRAIN})
    monkeypatch.chdir(root)
    return root


@pytest.fixture
def store(tmp_path: Path) -> str:
    """A store folder outside the repository (so it never makes the code dirty)."""
    return str(tmp_path / "store")


def make_run(
    store: str,
    config: dict[str, Any],
    seed: int | None = 1,
    metrics: dict[str, list[float]] | None = None,
    **init: Any,
) -> str:
    """A finished run with ``config``, seeded with ``seed``, that logged ``metrics``.

    Seeding comes first: seed_everything sets PYTHONHASHSEED, which the environment capture
    (running on a thread during init) would otherwise see or not, depending on timing.
    """
    if seed is not None:
        mltrail.seed_everything(seed)
    run = mltrail.init(
        project="p", store=store, config=config, system_metrics_s=0, console=False, **init
    )
    for key, values in (metrics or {"loss": [1.0, 0.5, 0.25]}).items():
        for step, value in enumerate(values):
            run.log({key: value}, step=step)
    run.finish()
    return run.run_id


def overwrite_state(store: str, run_id: str, kind: str, doc: dict[str, Any]) -> None:
    """Replace one captured state document of a run, as a later capture would."""
    open_store(store).apply_batch(Batch(run_id, state={kind: doc}))


def state(store: str, run_id: str, kind: str) -> dict[str, Any]:
    """A copy of one captured state document."""
    return copy.deepcopy(mltrail.Api(store).state(run_id)[kind])


def by_key(changes: list[Any]) -> dict[str, Any]:
    """Changes indexed by key."""
    return {c.key: c for c in changes}


@pytest.fixture
def changed(repo: Path, store: str) -> tuple[str, str, str]:
    """Runs A and B differing in commit, config, seed, packages and metrics: (store, A, B)."""
    a = make_run(
        store,
        {"lr": 0.1, "model": {"depth": 3}, "opt": "sgd"},
        seed=1,
        metrics={"loss": [1.0, 0.5, 0.25]},
    )
    (repo / "train.py").write_text(TRAIN.replace("LR = 0.1\n", "LR = 0.2\nWD = 0.01\n"))
    (repo / "data.txt").write_text("one\ntwo\nthree\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "tune")
    b = make_run(
        store,
        {"lr": 0.2, "model": {"depth": 4}, "batch": 32},
        seed=2,
        metrics={"loss": [1.0, 0.4, 0.2], "acc": [0.9]},
    )
    env = state(store, b, "environment")
    packages = env["packages"]
    packages["numpy"] = "99.0.0"  # upgraded
    packages["zz-added-pkg"] = "1.0"
    packages.pop("pluggy")
    packages["pytest"] = "1.10.0"  # downgraded (9.x -> 1.10.0)
    overwrite_state(store, b, "environment", env)
    return store, a, b


def test_code_shows_new_commit_and_numstat(changed: tuple[str, str, str], repo: Path) -> None:
    """A commit between the runs: SHA A → B and the changed files with line counts."""
    store, a, b = changed
    code = diff_runs(mltrail.Api(store), a, b).kinds["code"]
    assert not code.identical
    sha = by_key(code.changes)[f"{repo}: sha"]
    assert sha.b == git(repo, "rev-parse", "HEAD").strip()
    assert sha.a == git(repo, "rev-parse", "HEAD~1").strip()
    (detail,) = code.repos
    assert detail.note is None
    files = {f.path: (f.added, f.deleted) for f in detail.files or []}
    assert files == {"train.py": (2, 1), "data.txt": (3, 0)}
    assert not detail.uncommitted_differs


def test_client_path_never_resolved_on_server(changed: tuple[str, str, str], repo: Path):
    """local_git=False (the server's and UI's mode) never runs git in a recorded root."""
    import subprocess

    store, a, b = changed
    calls: list[object] = []
    real = subprocess.run

    def spy(*args: object, **kw: object) -> object:
        calls.append(args[0])
        return real(*args, **kw)  # type: ignore[call-overload]

    import pytest

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(subprocess, "run", spy)
        code = diff_runs(mltrail.Api(store), a, b, local_git=False).kinds["code"]
    (detail,) = code.repos
    assert detail.files is None and "no local git" in (detail.note or "")
    assert not [c for c in calls if "git" in str(c)]


def test_config_added_removed_changed(changed: tuple[str, str, str]) -> None:
    """Params added, removed and changed, nested config keys flattened, with both values."""
    store, a, b = changed
    config = diff_runs(mltrail.Api(store), a, b).kinds["config"]
    got = {(c.key, c.a, c.b, c.change) for c in config.changes}
    assert got == {
        ("lr", 0.1, 0.2, "changed"),
        ("model.depth", 3, 4, "changed"),
        ("opt", "sgd", None, "removed"),
        ("batch", None, 32, "added"),
    }
    assert not config.identical


def test_environment_package_changes(changed: tuple[str, str, str]) -> None:
    """Packages upgraded, downgraded (by version, not by string), added and removed."""
    store, a, b = changed
    env = diff_runs(mltrail.Api(store), a, b).kinds["environment"]
    changes = by_key(env.changes)
    assert changes["packages.numpy"].change == "upgraded"
    assert changes["packages.numpy"].b == "99.0.0"
    assert changes["packages.pytest"].change == "downgraded"
    assert changes["packages.zz-added-pkg"].change == "added"
    assert changes["packages.pluggy"].change == "removed"
    assert set(changes) == {  # PYTHONHASHSEED is a seed, reported under seeds
        "packages.numpy",
        "packages.pytest",
        "packages.zz-added-pkg",
        "packages.pluggy",
    }


def test_seeds_and_outcome(changed: tuple[str, str, str]) -> None:
    """Seed values differ; metrics side by side with the delta of the last value."""
    store, a, b = changed
    result = diff_runs(mltrail.Api(store), a, b)
    seeds = by_key(result.kinds["seeds"].changes)
    assert (seeds["seeding.seed"].a, seeds["seeding.seed"].b) == (1, 2)
    metrics = {m.key: m for m in result.kinds["outcome"].metrics}
    assert set(metrics) == {"loss", "acc"}
    loss = metrics["loss"]
    assert loss.a is not None and loss.b is not None
    assert (loss.a.last, loss.b.last, loss.a.max, loss.b.min) == (0.25, 0.2, 1.0, 0.2)
    assert loss.delta_last == pytest.approx(-0.05)
    assert metrics["acc"].a is None and metrics["acc"].delta_last is None
    assert metrics["acc"].changed


def test_unchanged_kinds_and_json(changed: tuple[str, str, str]) -> None:
    """Hardware and data are identical; to_dict is strict JSON with every kind."""
    store, a, b = changed
    result = diff_runs(mltrail.Api(store), a, b)
    assert result.kinds["hardware"].identical
    assert result.kinds["data"].identical
    assert result.kinds["data"].notes == ["no inputs recorded"]
    assert not result.identical
    d = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert list(d["kinds"]) == list(KINDS)
    assert d["run_a"]["run_id"] == a and d["run_b"]["run_id"] == b
    assert d["kinds"]["code"]["repos"][0]["files"]
    assert {m["key"] for m in d["kinds"]["outcome"]["metrics"]} == {"loss", "acc"}


def test_identical_runs_every_kind_identical(repo: Path, store: str) -> None:
    """Two runs of the same code, config, seed and metrics: every kind identical."""
    config = {"lr": 0.1, "model": {"depth": 3}}
    a = make_run(store, config, seed=5, metrics={"loss": [1.0, float("nan")]})
    b = make_run(store, config, seed=5, metrics={"loss": [1.0, float("nan")]})
    result = diff_runs(mltrail.Api(store), a, b)
    for name, kind in result.kinds.items():
        assert kind.identical, (name, kind.changes, kind.notes)
    assert result.identical
    assert result.to_dict()["kinds"]["outcome"]["metrics"][0]["a"]["last"] == "NaN"


def test_prefix_and_unknown_run(repo: Path, store: str) -> None:
    """Runs are named by id prefix; an unknown id raises NotFoundError."""
    a = make_run(store, {"lr": 0.1})
    result = diff_runs(mltrail.Api(store), a[:6], a)
    assert result.run_a.run_id == a and result.identical
    with pytest.raises(NotFoundError):
        diff_runs(mltrail.Api(store), a, "nosuchrun")


def test_missing_kinds_are_reported(repo: Path, store: str) -> None:
    """A run without captured state: "not recorded in A", never an error."""
    a = make_run(store, {"lr": 0.1}, seed=None, capture=False)
    b = make_run(store, {"lr": 0.1}, seed=None)
    result = diff_runs(mltrail.Api(store), a, b)
    for name in ("code", "environment", "hardware", "seeds"):
        kind = result.kinds[name]
        assert not kind.identical
        assert (kind.in_a, kind.in_b) == (False, True)
        assert kind.notes == ["not recorded in A"]
    assert "argv and config source not recorded in A" in result.kinds["config"].notes
    assert result.kinds["config"].identical
    c = make_run(store, {"lr": 0.1}, seed=None, capture=False)
    both = diff_runs(mltrail.Api(store), a, c)
    assert both.kinds["environment"].identical
    assert both.kinds["environment"].notes == ["not recorded in A or B"]


def test_failed_capture_is_noted(repo: Path, store: str) -> None:
    """A kind whose capture failed says so in the notes."""
    a = make_run(store, {"lr": 0.1})
    b = make_run(store, {"lr": 0.1})
    overwrite_state(store, b, "seeds", {"error": "RuntimeError: boom"})
    seeds = diff_runs(mltrail.Api(store), a, b).kinds["seeds"]
    assert "capture failed in B: RuntimeError: boom" in seeds.notes
    assert not seeds.identical


def test_uncommitted_diffs_differ(repo: Path, store: str) -> None:
    """Dirty runs at one commit: the uncommitted diffs differ, and in which files."""
    (repo / "util.py").write_text("X = 1\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "util")
    (repo / "train.py").write_text(TRAIN + "# experiment a\n")
    (repo / "util.py").write_text("X = 2\n")
    a = make_run(store, {"lr": 0.1}, allow_dirty=True)
    (repo / "train.py").write_text(TRAIN + "# experiment b\n")
    b = make_run(store, {"lr": 0.1}, allow_dirty=True)
    code = diff_runs(mltrail.Api(store), a, b).kinds["code"]
    changes = by_key(code.changes)
    assert set(changes) == {f"{repo}: uncommitted diff"}
    assert changes[f"{repo}: uncommitted diff"].a.startswith("sha256:")
    (detail,) = code.repos
    assert detail.uncommitted_differs
    assert detail.uncommitted_files == ["train.py"]
    assert detail.files is None  # same commit


def test_repository_not_at_hand(repo: Path, store: str, tmp_path: Path) -> None:
    """Numstat needs the repository: a moved one, or a commit it lacks, is a note."""
    a = make_run(store, {"lr": 0.1})
    (repo / "train.py").write_text(TRAIN + "# more\n")
    git(repo, "commit", "-qam", "more")
    b = make_run(store, {"lr": 0.1})
    code = state(store, b, "code")
    code["repos"][0]["sha"] = "f" * 40
    overwrite_state(store, b, "code", code)
    (detail,) = diff_runs(mltrail.Api(store), a, b).kinds["code"].repos
    assert detail.files is None
    assert detail.note == f"commit {'f' * 12} is not in {repo}"
    shutil.move(repo, tmp_path / "moved")
    (gone,) = diff_runs(mltrail.Api(store), a, b).kinds["code"].repos
    assert gone.note == f"repository {repo} is not at hand"


def test_repo_added_and_removed(repo: Path, store: str, tmp_path: Path) -> None:
    """A repository recorded by only one run is listed as added or removed."""
    a = make_run(store, {"lr": 0.1})
    b = make_run(store, {"lr": 0.1})
    code = state(store, b, "code")
    extra = dict(code["repos"][0], root=str(tmp_path / "lib"), sha="e" * 40)
    code["repos"].append(extra)
    overwrite_state(store, b, "code", code)
    changes = by_key(diff_runs(mltrail.Api(store), a, b).kinds["code"].changes)
    assert changes[str(tmp_path / "lib")].change == "added"
    assert changes[str(tmp_path / "lib")].b == "e" * 40
    assert diff_runs(mltrail.Api(store), b, a).kinds["code"].changes[0].change == "removed"


def test_hardware_gpu_and_framework_changes(repo: Path, store: str) -> None:
    """GPU count, name, driver and CUDA differences; probe errors are not differences."""
    a = make_run(store, {"lr": 0.1})
    b = make_run(store, {"lr": 0.1})
    hw = state(store, b, "hardware")
    hw["cpu"]["model"] = "Other CPU"
    hw["gpus"] = [
        {
            "index": 0,
            "name": "NVIDIA H100",
            "uuid": "GPU-1",
            "memory_total_bytes": 80 * 2**30,
            "compute_capability": "9.0",
            "driver_version": "550.1",
            "cuda_driver_version": "12.4",
            "mig_mode": None,
            "errors": {"mig_mode": "Not Supported"},
        }
    ]
    hw["nvml"] = {"available": True, "reason": None}
    overwrite_state(store, b, "hardware", hw)
    changes = by_key(diff_runs(mltrail.Api(store), a, b).kinds["hardware"].changes)
    assert changes["cpu.model"].b == "Other CPU"
    assert (changes["gpu_count"].a, changes["gpu_count"].b) == (0, 1)
    assert changes["gpus.0.name"].change == "added"
    assert changes["gpus.0.cuda_driver_version"].b == "12.4"
    assert changes["nvml_available"].b is True
    assert not any("errors" in key or "uuid" in key for key in changes)


def test_environment_python_locks_container_env(repo: Path, store: str) -> None:
    """Python version, lock file digests, container and allow-listed env vars."""
    a = make_run(store, {"lr": 0.1})
    b = make_run(store, {"lr": 0.1})
    env = state(store, b, "environment")
    env["python"]["version"] = "3.99.0"
    env["lock_files"] = [{"path": "uv.lock", "digest": "sha256:" + "1" * 64, "size": 3}]
    env["container"] = {"runtime": "podman", "image_id": "abc"}
    env["env"] = {"OMP_NUM_THREADS": "4"}
    overwrite_state(store, b, "environment", env)
    changes = by_key(diff_runs(mltrail.Api(store), a, b).kinds["environment"].changes)
    assert changes["python.version"].b == "3.99.0"
    assert changes["lock_files.uv.lock"].change == "added"
    assert changes["container.image_id"].b == "abc"
    assert changes["env.OMP_NUM_THREADS"].change == "added"


def test_data_inputs_by_name(repo: Path, store: str) -> None:
    """Recorded inputs are compared by name: changed, added and removed digests."""
    a = make_run(store, {"lr": 0.1})
    b = make_run(store, {"lr": 0.1})
    digest = {n: "sha256:" + n * 64 for n in "123"}
    overwrite_state(
        store,
        a,
        "inputs",
        {"inputs": [{"name": "train", "digest": digest["1"]}, {"name": "val", "digest": "x"}]},
    )
    overwrite_state(
        store,
        b,
        "inputs",
        {"inputs": [{"name": "train", "digest": digest["2"]}, {"name": "test", "digest": "y"}]},
    )
    data = diff_runs(mltrail.Api(store), a, b).kinds["data"]
    got = {(c.key, c.change) for c in data.changes}
    assert got == {("train", "changed"), ("val", "removed"), ("test", "added")}
    assert not data.identical


def test_system_metrics_left_out_unless_asked(repo: Path, store: str) -> None:
    """system/ keys are left out by default (with a note) and compared on request."""
    a = make_run(store, {"lr": 0.1})
    b = make_run(store, {"lr": 0.1})
    for run_id, value in ((a, 10.0), (b, 90.0)):
        cols = MetricSeries(
            np.array([0], dtype=np.int64),
            np.array([1], dtype=np.int64),
            np.array([value], dtype=np.float64),
        )
        open_store(store).apply_batch(Batch(run_id, metrics={"system/cpu_percent": cols}))
    plain = diff_runs(mltrail.Api(store), a, b).kinds["outcome"]
    assert plain.identical
    assert plain.notes == ["1 system/ metric keys left out"]
    full = diff_runs(mltrail.Api(store), a, b, include_system=True).kinds["outcome"]
    (cpu,) = [m for m in full.metrics if m.key == "system/cpu_percent"]
    assert cpu.delta_last == 80.0 and not full.identical


def test_nan_and_infinite_deltas(repo: Path, store: str) -> None:
    """A last value going from finite to NaN is a change whose delta is NaN."""
    a = make_run(store, {"lr": 0.1}, metrics={"loss": [1.0, 0.5]})
    b = make_run(store, {"lr": 0.1}, metrics={"loss": [1.0, float("nan")]})
    (loss,) = diff_runs(mltrail.Api(store), a, b).kinds["outcome"].metrics
    assert loss.changed and loss.delta_last is not None and math.isnan(loss.delta_last)
    text = json.dumps(diff_runs(mltrail.Api(store), a, b).to_dict(), allow_nan=False)
    assert '"delta_last": "NaN"' in text


def test_version_order_without_pep440() -> None:
    """Versions compare by PEP 440, and by their numbers where PEP 440 cannot parse them."""
    from mltrail.diff import _version_change

    assert _version_change("1.9", "1.10") == "upgraded"  # not a string comparison
    assert _version_change("2.0rc1", "2.0") == "upgraded"
    assert _version_change("1.2-custom.3", "1.2-custom.1") == "downgraded"
    assert _version_change("1.0", "1.0.0") == "changed"
    assert _version_change("abc", "abd") == "changed"
