"""Configuration capture: resolved hyperparameters, the command line, and Hydra's context.

Accepts the config types the field uses: mappings, dataclass instances,
``argparse.Namespace``, OmegaConf ``DictConfig``/``ListConfig`` (resolved) and pydantic models.
OmegaConf, Hydra and pydantic are never imported here unless the program already did.
"""

from __future__ import annotations

import dataclasses
import enum
import re
import sys
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

from mltrail.capture.base import Captured
from mltrail.errors import InvalidArgumentError

__all__ = [
    "ConfigCapturer",
    "capture_config",
    "config_source",
    "config_to_dict",
    "hydra_context",
    "redact_args",
]

REDACTED = "***"
_SECRET_WORDS = frozenset(
    {"token", "secret", "password", "passwd", "pwd", "credential", "credentials", "apikey"}
)
_SECRET_PAIRS = frozenset({("api", "key"), ("access", "key"), ("private", "key")})


def _secret_name(name: str) -> bool:
    """Whether an option or override name says it holds a secret (by whole words)."""
    words = [w for w in re.split(r"[-_.+/\s]+", name.lower()) if w]
    return any(w in _SECRET_WORDS for w in words) or any(
        pair in _SECRET_PAIRS for pair in zip(words, words[1:], strict=False)
    )


def _is_omegaconf(value: Any) -> bool:
    return type(value).__module__.split(".")[0] == "omegaconf"


def _is_pydantic(value: Any) -> bool:
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and isinstance(value, pydantic.BaseModel)


def _is_namespace(value: Any) -> bool:
    argparse = sys.modules.get("argparse")
    return argparse is not None and isinstance(value, argparse.Namespace)


def _is_dataclass_instance(value: Any) -> bool:
    return dataclasses.is_dataclass(value) and not isinstance(value, type)


def config_source(config: Any) -> str | None:
    """Which kind of config object ``config`` is.

    Args:
        config: Any object.

    Returns:
        ``"dict"``, ``"dataclass"``, ``"argparse"``, ``"omegaconf"``, ``"pydantic"``, or
        None when the type is not supported. (``"hydra"`` is decided by
        :func:`capture_config`, which knows whether Hydra is running.)
    """
    if _is_omegaconf(config) and type(config).__name__ in ("DictConfig", "ListConfig"):
        return "omegaconf"
    if isinstance(config, Mapping):
        return "dict"
    if _is_dataclass_instance(config):
        return "dataclass"
    if _is_namespace(config):
        return "argparse"
    if _is_pydantic(config):
        return "pydantic"
    return None


def _omegaconf_container(config: Any) -> Any:
    from omegaconf import OmegaConf

    try:
        return OmegaConf.to_container(config, resolve=True)
    except Exception as exc:  # an interpolation that does not resolve
        raise InvalidArgumentError(f"config does not resolve: {exc}") from exc


def _plain(value: Any) -> Any:
    """``value`` as JSON-able data: nested configs become dicts and lists, leaves stay."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if _is_omegaconf(value) and type(value).__name__ in ("DictConfig", "ListConfig"):
        return _plain(_omegaconf_container(value))
    if isinstance(value, Mapping):
        return {_key(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((_plain(v) for v in value), key=repr)
    if _is_dataclass_instance(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if _is_namespace(value):
        return _plain(vars(value))
    if _is_pydantic(value):
        return _plain(value.model_dump(mode="json"))
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    if isinstance(value, PurePath):
        return str(value)
    return repr(value)


def _key(key: Any) -> str:
    return key if isinstance(key, str) else str(_plain(key))


def config_to_dict(config: Any) -> dict[str, Any]:
    """Convert a config object to a plain, JSON-able dict.

    Nested mappings, dataclasses, namespaces and OmegaConf nodes become dicts, tuples and
    lists become lists; leaves that JSON cannot hold become their ``str``/``repr``. A
    top-level ``ListConfig`` becomes ``{"0": ..., "1": ...}``.

    Args:
        config: A mapping, dataclass instance, ``argparse.Namespace``, OmegaConf
            ``DictConfig``/``ListConfig`` (resolved) or pydantic model.

    Returns:
        The config as a dict with string keys.

    Raises:
        InvalidArgumentError: ``config`` is of another type (the message names it), or an
            OmegaConf interpolation does not resolve.
    """
    if config_source(config) is None:
        kind = f"{type(config).__module__}.{type(config).__qualname__}"
        raise InvalidArgumentError(
            f"unsupported config type {kind}: pass a mapping, dataclass instance, "
            "argparse.Namespace, OmegaConf DictConfig or pydantic model"
        )
    plain = _plain(config)
    if isinstance(plain, list):
        return {str(i): v for i, v in enumerate(plain)}
    if not isinstance(plain, dict):  # defensive: every supported source yields a mapping
        raise InvalidArgumentError(f"config converted to {type(plain).__name__}, not a dict")
    return plain


def redact_args(args: list[str]) -> list[str]:
    """Command-line arguments with the values of secret-looking options replaced.

    ``--api-key=X``, ``--password X``, ``db.password=X`` and ``+hf_token=X`` keep their names
    and lose their values (``***``). Names are matched by whole words, so ``--tokenizer`` or
    ``max_tokens=`` are left alone.

    Args:
        args: Arguments as in ``sys.argv`` or Hydra overrides.

    Returns:
        A new list of the same length.
    """
    out: list[str] = []
    hide_next = False
    for arg in args:
        if hide_next and not arg.startswith("-"):
            out.append(REDACTED)
            hide_next = False
            continue
        hide_next = False
        name, sep, _ = arg.partition("=")
        if _secret_name(name):
            if sep:
                out.append(f"{name}={REDACTED}")
                continue
            hide_next = arg.startswith("-")
        out.append(arg)
    return out


def hydra_context() -> dict[str, Any] | None:
    """What Hydra knows about the running job, when Hydra is active.

    Returns:
        None unless Hydra was imported and has initialised its config; otherwise
        ``{"overrides", "config_name", "config_sources": [{"path", "provider", "schema"}],
        "choices", "job_name", "runtime_cwd", "output_dir"}``, or ``{"error": reason}``
        when Hydra's config cannot be read. Never raises.
    """
    if "hydra" not in sys.modules:
        return None
    try:
        from hydra.core.hydra_config import HydraConfig

        if not HydraConfig.initialized():
            return None
        hc = HydraConfig.get()
        sources = [
            {"path": s.path, "provider": s.provider, "schema": s.schema}
            for s in hc.runtime.config_sources
        ]
        return {
            "overrides": redact_args([str(o) for o in hc.overrides.task]),
            "config_name": hc.job.config_name,
            "config_sources": sources,
            "choices": _plain(hc.runtime.choices),
            "job_name": hc.job.name,
            "runtime_cwd": hc.runtime.cwd,
            "output_dir": hc.runtime.output_dir,
        }
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


def capture_config(config: Any = None) -> Captured:
    """Capture a run's configuration and how the program was invoked.

    Args:
        config: The run's config (see :func:`config_to_dict`), or None for none.

    Returns:
        Kind ``"config"``: ``{"config": dict | None, "argv": [...] (values of secret-looking
        options redacted, see :func:`redact_args`), "source": "dict" |
        "dataclass" | "argparse" | "omegaconf" | "pydantic" | "hydra" | None, "hydra":
        dict | None}``. ``source`` is ``"hydra"`` for an OmegaConf config while Hydra is
        active.

    Raises:
        InvalidArgumentError: ``config`` is of an unsupported type. This is the only error:
            a wrong argument, not a failed probe.
    """
    plain = None if config is None else config_to_dict(config)
    source = None if config is None else config_source(config)
    hydra = hydra_context()
    if source == "omegaconf" and hydra is not None:
        source = "hydra"
    data = {"config": plain, "argv": redact_args(sys.argv), "source": source, "hydra": hydra}
    return Captured(kind="config", data=data)


class ConfigCapturer:
    """:class:`~mltrail.capture.base.Capturer` for a run's config.

    The config is validated when the capturer is built, so ``capture()`` cannot fail on it.
    """

    kind = "config"

    def __init__(self, config: Any = None) -> None:
        """Check and remember the config.

        Args:
            config: As for :func:`capture_config`.

        Raises:
            InvalidArgumentError: ``config`` is of an unsupported type.
        """
        if config is not None:
            config_to_dict(config)
        self._config = config

    def available(self) -> bool:
        """Always true: the command line is always there."""
        return True

    def capture(self) -> Captured:
        """Capture now; see :func:`capture_config`."""
        return capture_config(self._config)
