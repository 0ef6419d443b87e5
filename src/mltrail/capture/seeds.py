"""Seeds and determinism: seed every RNG the program uses, and record the switches' state.

:func:`seed_everything` is the user-facing call (re-exported as ``mltrail.seed_everything``);
it records exactly what it set. :func:`determinism_state` reads the switches as they are now,
including ones the user set by hand, so a run records them either way.
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import os
import random
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

from mltrail.capture.base import Captured, imported
from mltrail.errors import InvalidArgumentError
from mltrail.settings import settings

__all__ = [
    "SEED_ENV",
    "SeedsCapturer",
    "capture_seeds",
    "determinism_state",
    "last_seeding",
    "seed_everything",
]

SEED_ENV = "MLTRAIL_SEED"
CUBLAS_DETERMINISTIC = ":4096:8"
_SEED_LIMIT = 2**32  # NumPy's legacy seeding takes 0 <= seed < 2**32
_STATE_ENV = ("PYTHONHASHSEED", "CUBLAS_WORKSPACE_CONFIG", "TF_DETERMINISTIC_OPS")
_last: dict[str, Any] | None = None


def _resolve_seed(seed: int | None) -> tuple[int, str]:
    if seed is None:
        raw = settings().seed
        if not raw:
            return random.SystemRandom().randrange(_SEED_LIMIT), "random"
        try:
            seed = int(raw)
        except ValueError:
            raise InvalidArgumentError(f"{SEED_ENV}={raw!r} is not an integer") from None
        source = "env"
    else:
        source = "argument"
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < _SEED_LIMIT:
        raise InvalidArgumentError(f"seed must be an integer in [0, 2**32), got {seed!r}")
    return seed, source


def _installed(name: str) -> bool:
    if name in sys.modules:
        return True
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _seed_torch(seed: int, deterministic: bool, switches: dict[str, Any]) -> None:
    import torch

    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=False)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        switches["torch.use_deterministic_algorithms"] = True
        switches["torch.use_deterministic_algorithms.warn_only"] = False
        switches["torch.backends.cudnn.deterministic"] = True
        switches["torch.backends.cudnn.benchmark"] = False


def _seed_tensorflow(tf: Any, seed: int, deterministic: bool, switches: dict[str, Any]) -> None:
    tf.random.set_seed(seed)
    enable = getattr(getattr(tf.config, "experimental", None), "enable_op_determinism", None)
    if deterministic and enable is not None:
        enable()
        switches["tf.config.experimental.enable_op_determinism"] = True


def _set_env(name: str, value: str, switches: dict[str, Any], *, if_unset: bool) -> None:
    if if_unset and os.environ.get(name):
        return  # the user's own choice stands; determinism_state() records it
    os.environ[name] = value
    switches[name] = value


def seed_everything(seed: int | None = None, deterministic: bool = False) -> dict[str, Any]:
    """Seed every random number generator the program can use, and record what was set.

    Seeds Python's ``random``; NumPy's global RNG and torch (CPU and every CUDA device) when
    installed (importing them if needed, since you asked for them to be seeded; one that is
    installed but fails to import is skipped with a note); TensorFlow
    only when already imported. JAX has no global RNG: when it is imported, the result
    carries a note to derive keys with ``jax.random.PRNGKey(seed)``. ``PYTHONHASHSEED`` is
    set in ``os.environ``, which affects only subprocesses started afterwards.

    With ``deterministic=True`` it also turns on the determinism switches:
    ``torch.use_deterministic_algorithms(True)``, cuDNN deterministic and not benchmarking,
    ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` (unless already set) and ``TF_DETERMINISTIC_OPS=1``.

    Example:
        >>> from mltrail.capture.seeds import seed_everything
        >>> seed_everything(42)["seed"]
        42

    Args:
        seed: The seed, in ``[0, 2**32)``. None means ``MLTRAIL_SEED`` when set, else a
            fresh random seed (which is recorded, so the run can be repeated).
        deterministic: Also turn on the determinism switches.

    Returns:
        ``{"seed", "source": "argument" | "env" | "random", "seeded": [...],
        "deterministic", "switches": {name: value set}, "notes": {...}}``. The same dict is
        kept for :func:`last_seeding`.

    Raises:
        InvalidArgumentError: The seed (or ``MLTRAIL_SEED``) is not an integer in range.
    """
    global _last
    value, source = _resolve_seed(seed)
    seeded: list[str] = []
    switches: dict[str, Any] = {}
    notes: dict[str, str] = {}
    random.seed(value)
    seeded.append("random")
    if _installed("numpy"):
        try:
            numpy = importlib.import_module("numpy")
        except Exception as exc:  # installed but broken: not the user's framework, most likely
            notes["numpy"] = f"not seeded: import failed: {type(exc).__name__}: {exc}"
        else:
            numpy.random.seed(value)
            seeded.append("numpy")
    if _installed("torch"):
        try:
            importlib.import_module("torch")
        except Exception as exc:
            notes["torch"] = f"not seeded: import failed: {type(exc).__name__}: {exc}"
        else:
            _seed_torch(value, deterministic, switches)
            seeded.append("torch")
    if (tf := imported("tensorflow")) is not None:
        _seed_tensorflow(tf, value, deterministic, switches)
        seeded.append("tensorflow")
    if "jax" in sys.modules:
        notes["jax"] = f"JAX has no global RNG: use jax.random.PRNGKey({value})"
    _set_env("PYTHONHASHSEED", str(value), switches, if_unset=False)
    notes["PYTHONHASHSEED"] = "affects only subprocesses started after seeding"
    if deterministic:
        _set_env("CUBLAS_WORKSPACE_CONFIG", CUBLAS_DETERMINISTIC, switches, if_unset=True)
        _set_env("TF_DETERMINISTIC_OPS", "1", switches, if_unset=False)
    result: dict[str, Any] = {
        "seed": value,
        "source": source,
        "seeded": seeded,
        "deterministic": deterministic,
        "switches": switches,
        "notes": notes,
    }
    _last = result
    return copy.deepcopy(result)


def last_seeding() -> dict[str, Any] | None:
    """What the latest :func:`seed_everything` call set, or None if it was never called."""
    return copy.deepcopy(_last)


def _probe(state: dict[str, Any], errors: dict[str, str], name: str, read: Any) -> None:
    try:
        value = read()
    except Exception as exc:
        errors[name] = f"{type(exc).__name__}: {exc}"
    else:
        state[name] = value if isinstance(value, (bool, int, float, str)) else str(value)


def _torch_state(torch: Any) -> dict[str, Any]:
    state: dict[str, Any] = {}
    errors: dict[str, str] = {}
    probes = {
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled,
        "deterministic_algorithms_warn_only": torch.is_deterministic_algorithms_warn_only_enabled,
        "cudnn_deterministic": lambda: torch.backends.cudnn.deterministic,
        "cudnn_benchmark": lambda: torch.backends.cudnn.benchmark,
        "cuda_matmul_allow_tf32": lambda: torch.backends.cuda.matmul.allow_tf32,
        "cudnn_allow_tf32": lambda: torch.backends.cudnn.allow_tf32,
        "float32_matmul_precision": torch.get_float32_matmul_precision,
        "initial_seed": torch.initial_seed,
    }
    for name, read in probes.items():
        _probe(state, errors, name, read)
    if errors:
        state["errors"] = errors
    return state


def determinism_state(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The determinism switches as they are now, however they were set.

    ``environ`` is the environment the run executes in (None: this process's).

    Returns:
        ``{"env": {PYTHONHASHSEED, CUBLAS_WORKSPACE_CONFIG, TF_DETERMINISTIC_OPS: value or
        None}, "python_hash_randomization": bool, "torch": {...} | None}``. ``torch`` is
        described only when already imported (deterministic algorithms and warn-only, cuDNN
        deterministic/benchmark, TF32 for matmul and cuDNN, float32 matmul precision,
        ``initial_seed``). Never raises.
    """
    torch = imported("torch")
    return {
        "env": {
            name: (os.environ if environ is None else environ).get(name) for name in _STATE_ENV
        },
        "python_hash_randomization": bool(sys.flags.hash_randomization),
        "torch": None if torch is None else _torch_state(torch),
    }


def capture_seeds(environ: Mapping[str, str] | None = None) -> Captured:
    """Capture seeding and determinism (``environ``: the run's environment, None: ours).

    Returns:
        Kind ``"seeds"``: ``{"seeding": last_seeding(), "state": determinism_state()}``.
    """
    state = determinism_state(environ)
    return Captured(kind="seeds", data={"seeding": last_seeding(), "state": state})


class SeedsCapturer:
    """:class:`~mltrail.capture.base.Capturer` for seeds and determinism."""

    kind = "seeds"

    def available(self) -> bool:
        """Always true: the environment switches can always be read."""
        return True

    def capture(self) -> Captured:
        """Capture now; see :func:`capture_seeds`."""
        return capture_seeds()
