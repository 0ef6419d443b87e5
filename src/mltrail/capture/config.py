"""Configuration capture: resolved hyperparameters, the command line, and Hydra's context.

Accepts the config types the field uses: mappings, dataclass instances,
``argparse.Namespace``, OmegaConf ``DictConfig``/``ListConfig`` (resolved) and pydantic models.
OmegaConf, Hydra and pydantic are never imported here unless the program already did.

Every value must have a stable JSON form, so two runs of the same program store the same
config (and params: ``log_params`` converts its values with the same rule). Accepted leaves:
str, bool, int, float (subclasses such as numpy's become the base type), ``None``; enums (their
value); ``pathlib`` paths (their text); numpy scalars and arrays (``tolist()``: Python numbers
and nested lists); ``datetime``/``date``/``time`` (ISO 8601 text); named functions and classes
(``module.qualname``, e.g. argparse's ``set_defaults(func=train)``). Tuples and lists become
lists, sets become lists sorted by their JSON text. Anything else (objects whose text would be
a ``repr`` with a memory address, lambdas, bytes, complex numbers, ``timedelta``) is refused
with :class:`~mltrail.errors.InvalidArgumentError` naming the key, as are cyclic configs and
nesting deeper than :data:`mltrail._validation.MAX_CONFIG_DEPTH`: convert such values to one
of the above yourself.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import numbers
import re
import sys
import types
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

from mltrail._validation import MAX_CONFIG_DEPTH
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


def _plain(value: Any, where: str = "", what: str = "config") -> Any:
    """``value`` as JSON-able data: nested configs become dicts and lists, leaves stay.

    ``where`` names the value's place (``model.layers[1]``) in error messages.

    Raises:
        InvalidArgumentError: a value without a stable JSON form, a cycle, or too deep.
    """
    return _Converter(what).plain(value, where, frozenset(), 0)


class _Converter:
    """One conversion: the error wording (``config``/``param``) and the rules of the module."""

    def __init__(self, what: str) -> None:
        self.what = what

    def plain(self, value: Any, where: str, active: frozenset[int], depth: int) -> Any:
        kind = type(value)
        if value is None or kind is str or kind is int or kind is float or kind is bool:
            return value
        if isinstance(value, enum.Enum):
            return self.plain(value.value, where, active, depth)
        leaf = _leaf(value)
        if leaf is not _NO:
            return leaf
        if _is_numpy(value):
            return self.plain(value.tolist(), where, active, depth)
        if _is_omegaconf(value) and type(value).__name__ in ("DictConfig", "ListConfig"):
            return self.plain(_omegaconf_container(value), where, active, depth)
        if _is_pydantic(value):
            return self.plain(value.model_dump(mode="json"), where, active, depth)
        if (
            isinstance(value, Mapping | list | tuple | set | frozenset)
            or _is_namespace(value)
            or _is_dataclass_instance(value)
        ):
            return self._container(value, where, active, depth)
        if isinstance(value, type | types.FunctionType | types.BuiltinFunctionType):
            name = _qualified_name(value)
            if name is not None:
                return name
        raise InvalidArgumentError(
            f"{self.what} {where or '(the top level)'!r}: {_describe(value)} has no stable JSON "
            "form (its text would differ between runs); convert it to a str, number, bool, "
            "list or dict first"
        )

    def _container(self, value: Any, where: str, active: frozenset[int], depth: int) -> Any:
        if id(value) in active:
            raise InvalidArgumentError(
                f"{self.what} {where!r} contains itself: it refers back to an enclosing "
                f"{type(value).__name__} (a cycle cannot be stored as JSON)"
            )
        if depth >= MAX_CONFIG_DEPTH:
            raise InvalidArgumentError(
                f"{self.what} is nested deeper than {MAX_CONFIG_DEPTH} levels at {where!r}"
            )
        inner, depth = active | {id(value)}, depth + 1
        if isinstance(value, list | tuple):
            return [self.plain(x, f"{where}[{i}]", inner, depth) for i, x in enumerate(value)]
        if isinstance(value, set | frozenset):
            items = [self.plain(x, where, inner, depth) for x in value]
            return sorted(items, key=lambda x: json.dumps(x, sort_keys=True))
        if _is_namespace(value):
            value = vars(value)
        elif _is_dataclass_instance(value):
            value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        out: dict[str, Any] = {}
        given: dict[str, Any] = {}
        for key, item in value.items():
            name = self._key(key, where)
            if name in given:
                raise InvalidArgumentError(
                    f"{self.what} {where or '(the top level)'!r} has keys {given[name]!r} and "
                    f"{key!r}, which are both {name!r} as text"
                )
            given[name] = key
            out[name] = self.plain(item, f"{where}.{name}" if where else name, inner, depth)
        return out

    def _key(self, key: Any, where: str) -> str:
        if isinstance(key, enum.Enum):
            key = key.value
        if isinstance(key, str):
            return str(key)
        if key is None or isinstance(key, bool):
            return str(key)
        if isinstance(key, numbers.Integral):
            return str(int(key))
        if isinstance(key, float):
            return str(float(key))
        raise InvalidArgumentError(
            f"{self.what} {where or '(the top level)'!r}: a key of type "
            f"{type(key).__name__} has no stable text; use str, int or enum keys"
        )


#: "not a leaf" (None is a leaf value)
_NO: Any = object()


def _leaf(value: Any) -> Any:
    """The plain form of a scalar leaf with a stable text, or ``_NO``."""
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    return _NO


def _is_numpy(value: Any) -> bool:
    return type(value).__module__.split(".")[0] == "numpy" and hasattr(value, "tolist")


def _qualified_name(value: Any) -> str | None:
    """``module.qualname`` of a named function or class; None for a lambda."""
    qualname = getattr(value, "__qualname__", None)
    if not isinstance(qualname, str) or "<lambda>" in qualname:
        return None
    module = getattr(value, "__module__", None)
    return f"{module}.{qualname}" if module else qualname


def _describe(value: Any) -> str:
    if isinstance(value, types.FunctionType) and "<lambda>" in value.__qualname__:
        return "a lambda"
    kind = type(value)
    if kind.__module__ == "builtins":
        return f"a value of type {kind.__qualname__}"
    return f"a value of type {kind.__module__}.{kind.__qualname__}"


def config_to_dict(config: Any, *, what: str = "config") -> dict[str, Any]:
    """Convert a config object to a plain, JSON-able dict.

    Nested mappings, dataclasses, namespaces and OmegaConf nodes become dicts, tuples and
    lists become lists, leaves their stable JSON form (see the module docstring). A
    top-level ``ListConfig`` becomes ``{"0": ..., "1": ...}``.

    Args:
        config: A mapping, dataclass instance, ``argparse.Namespace``, OmegaConf
            ``DictConfig``/``ListConfig`` (resolved) or pydantic model.
        what: How messages call it (``"param"`` for ``log_params``).

    Returns:
        The config as a dict with string keys.

    Raises:
        InvalidArgumentError: ``config`` is of another type (the message names it), an
            OmegaConf interpolation does not resolve, a value has no stable JSON form, the
            config contains itself or nests too deeply (each names the key).
    """
    if config_source(config) is None:
        kind = f"{type(config).__module__}.{type(config).__qualname__}"
        raise InvalidArgumentError(
            f"unsupported config type {kind}: pass a mapping, dataclass instance, "
            "argparse.Namespace, OmegaConf DictConfig or pydantic model"
        )
    plain = _plain(config, what=what)
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
