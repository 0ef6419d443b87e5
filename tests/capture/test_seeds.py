"""Seeding and determinism with the real random, NumPy and torch."""

from __future__ import annotations

import os
import random
import sys
import types
from collections.abc import Iterator
from typing import Any

import pytest

from mltrail.capture import seeds
from mltrail.capture.base import Capturer
from mltrail.capture.seeds import (
    SeedsCapturer,
    capture_seeds,
    determinism_state,
    last_seeding,
    seed_everything,
)
from mltrail.errors import InvalidArgumentError

np = pytest.importorskip("numpy")
torch = pytest.importorskip("torch")

ENV = ("PYTHONHASHSEED", "CUBLAS_WORKSPACE_CONFIG", "TF_DETERMINISTIC_OPS", "MLTRAIL_SEED")


@pytest.fixture(autouse=True)
def _restore_global_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every RNG, torch switch, environment variable and the last seeding are put back."""
    for name in ENV:
        monkeypatch.setenv(name, "placeholder")  # records the original value (or absence)
        monkeypatch.delenv(name)
    monkeypatch.setattr(seeds, "_last", None)
    py_state, np_state, torch_state = (
        random.getstate(),
        np.random.get_state(),
        torch.get_rng_state(),
    )
    algorithms = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    yield
    random.setstate(py_state)
    np.random.set_state(np_state)
    torch.set_rng_state(torch_state)
    torch.use_deterministic_algorithms(algorithms, warn_only=warn_only)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn


def draws() -> tuple[list[float], list[float], list[float]]:
    """A few numbers from each global RNG."""
    return (
        [random.random() for _ in range(3)],
        np.random.rand(3).tolist(),
        torch.rand(3).tolist(),
    )


def test_same_seed_gives_same_sequences() -> None:
    """Seeding twice with one seed repeats random, NumPy and torch sequences exactly."""
    first_result = seed_everything(1234)
    first = draws()
    seed_everything(1234)
    assert draws() == first
    seed_everything(4321)
    assert draws() != first
    assert first_result["seed"] == 1234
    assert first_result["source"] == "argument"
    assert first_result["seeded"] == ["random", "numpy", "torch"]
    assert first_result["deterministic"] is False
    assert torch.initial_seed() == 4321


def test_pythonhashseed_is_set_for_subprocesses() -> None:
    """PYTHONHASHSEED is set to the seed and recorded as a switch, with its caveat noted."""
    result = seed_everything(7)
    assert result["switches"] == {"PYTHONHASHSEED": "7"}
    assert "subprocesses" in result["notes"]["PYTHONHASHSEED"]
    assert os.environ["PYTHONHASHSEED"] == "7"


def test_deterministic_sets_switches_and_records_them() -> None:
    """deterministic=True turns on torch, cuDNN and environment switches and lists each."""
    result = seed_everything(5, deterministic=True)
    assert torch.are_deterministic_algorithms_enabled() is True
    assert torch.is_deterministic_algorithms_warn_only_enabled() is False
    assert torch.backends.cudnn.deterministic is True
    assert torch.backends.cudnn.benchmark is False
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert os.environ["TF_DETERMINISTIC_OPS"] == "1"
    assert result["switches"] == {
        "torch.use_deterministic_algorithms": True,
        "torch.use_deterministic_algorithms.warn_only": False,
        "torch.backends.cudnn.deterministic": True,
        "torch.backends.cudnn.benchmark": False,
        "PYTHONHASHSEED": "5",
        "CUBLAS_WORKSPACE_CONFIG": ":4096:8",
        "TF_DETERMINISTIC_OPS": "1",
    }
    assert result["deterministic"] is True


def test_users_cublas_setting_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """An existing CUBLAS_WORKSPACE_CONFIG is not overwritten nor claimed as set."""
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")
    result = seed_everything(5, deterministic=True)
    assert "CUBLAS_WORKSPACE_CONFIG" not in result["switches"]
    assert determinism_state()["env"]["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"


def test_seed_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a seed argument, MLTRAIL_SEED is used."""
    monkeypatch.setenv("MLTRAIL_SEED", "99")
    result = seed_everything()
    assert (result["seed"], result["source"]) == (99, "env")


def test_fresh_random_seed_is_recorded_and_replays() -> None:
    """Without any seed, a random 32-bit seed is drawn, recorded, and reproduces the run."""
    result = seed_everything()
    assert result["source"] == "random"
    assert 0 <= result["seed"] < 2**32
    first = draws()
    seed_everything(result["seed"])
    assert draws() == first


@pytest.mark.parametrize("bad", [-1, 2**32, True, 1.5, "3"])
def test_invalid_seeds_are_rejected(bad: Any) -> None:
    """Seeds outside [0, 2**32) or not integers raise InvalidArgumentError."""
    with pytest.raises(InvalidArgumentError, match="seed"):
        seed_everything(bad)


def test_invalid_env_seed_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    """A non-integer MLTRAIL_SEED raises InvalidArgumentError naming the variable."""
    monkeypatch.setenv("MLTRAIL_SEED", "abc")
    with pytest.raises(InvalidArgumentError, match="MLTRAIL_SEED"):
        seed_everything()


def test_state_reflects_switches_set_by_hand() -> None:
    """determinism_state reads switches the user set directly, without seed_everything."""
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(31)
    os.environ["PYTHONHASHSEED"] = "0"
    state = determinism_state()
    assert state["env"] == {
        "PYTHONHASHSEED": "0",
        "CUBLAS_WORKSPACE_CONFIG": None,
        "TF_DETERMINISTIC_OPS": None,
    }
    assert state["torch"]["deterministic_algorithms"] is True
    assert state["torch"]["deterministic_algorithms_warn_only"] is True
    assert state["torch"]["cudnn_benchmark"] is True
    assert state["torch"]["initial_seed"] == 31
    assert state["torch"]["cuda_matmul_allow_tf32"] == torch.backends.cuda.matmul.allow_tf32
    assert state["torch"]["cudnn_allow_tf32"] == torch.backends.cudnn.allow_tf32
    assert isinstance(state["python_hash_randomization"], bool)


def test_last_seeding_and_capture() -> None:
    """last_seeding is None before seeding, then a copy of the latest result; capture holds both."""
    assert last_seeding() is None
    assert capture_seeds().data["seeding"] is None
    result = seed_everything(11)
    copy = last_seeding()
    assert copy == result
    assert copy is not None
    copy["seed"] = 0
    assert last_seeding() == result
    captured = SeedsCapturer().capture()
    assert isinstance(SeedsCapturer(), Capturer)
    assert captured.kind == "seeds"
    assert captured.data == {"seeding": result, "state": determinism_state()}


def test_imported_tensorflow_and_jax(monkeypatch: pytest.MonkeyPatch) -> None:
    """An imported TensorFlow is seeded (and made deterministic); JAX gets a PRNGKey note."""
    calls: list[Any] = []
    tf = types.SimpleNamespace(
        random=types.SimpleNamespace(set_seed=calls.append),
        config=types.SimpleNamespace(
            experimental=types.SimpleNamespace(enable_op_determinism=lambda: calls.append("det"))
        ),
    )
    monkeypatch.setitem(sys.modules, "tensorflow", tf)
    monkeypatch.setitem(sys.modules, "jax", types.SimpleNamespace(__version__="0.4"))
    result = seed_everything(3, deterministic=True)
    assert calls == [3, "det"]
    assert "tensorflow" in result["seeded"]
    assert "jax" not in result["seeded"]
    assert "PRNGKey(3)" in result["notes"]["jax"]
    assert result["switches"]["tf.config.experimental.enable_op_determinism"] is True


def test_frameworks_not_installed_are_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without NumPy and torch installed, only random is seeded and nothing fails."""
    monkeypatch.setattr(seeds, "_installed", lambda name: False)
    result = seed_everything(8, deterministic=True)
    assert result["seeded"] == ["random"]
    assert "torch.use_deterministic_algorithms" not in result["switches"]
    assert result["switches"]["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"


def test_broken_install_is_noted_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    """A framework that is installed but fails to import is skipped with a note."""
    real_import = seeds.importlib.import_module

    def failing(name: str) -> Any:
        if name == "torch":
            raise OSError("libcudart.so.12: cannot open shared object file")
        return real_import(name)

    monkeypatch.setattr(seeds.importlib, "import_module", failing)
    result = seed_everything(2)
    assert result["seeded"] == ["random", "numpy"]
    assert "libcudart" in result["notes"]["torch"]
