"""Put first on a Python child's ``PYTHONPATH`` by ``mltrail run``: records the config the
program parses, with no change to the program.

When ``argparse`` is first imported, ``ArgumentParser.parse_known_args`` (behind
``parse_args``) is wrapped: the namespace of the first outermost call in any process of the
run is written to ``$MLTRAIL_AUTOCONFIG_DIR/argparse.json``. When ``click`` (or Typer's own
copy of it) is first imported, ``Command.make_context`` is wrapped: the parameters of the
command and of each subcommand invoked are written to ``click.json`` when the process
exits. At exit, a process that imported the mltrail SDK says so (``sdk.json``), so the
wrapper leaves the config to ``init()``, and the first process to exit lists the
random-number libraries it imported (``modules.json``).
Then any ``sitecustomize`` this one shadows is run. Imports nothing from mltrail; never
raises.
"""

from __future__ import annotations

import os
import sys

_DIR = os.environ.get("MLTRAIL_AUTOCONFIG_DIR", "")
_HERE = os.path.dirname(os.path.abspath(__file__))


def _plain(value: object, depth: int = 0) -> object:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if depth < 8 and isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [_plain(v, depth + 1) for v in items]
    if depth < 8 and isinstance(value, dict):
        return {str(k): _plain(v, depth + 1) for k, v in value.items()}
    if callable(value) and hasattr(value, "__qualname__"):
        return f"{getattr(value, '__module__', '?')}.{value.__qualname__}"
    return os.fspath(value) if isinstance(value, os.PathLike) else str(value)


def _write(name: str, doc: object) -> None:
    import json

    path = os.path.join(_DIR, name)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError:
        return  # another process of the run was first
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(doc, f)


def _patch(argparse: object) -> None:
    cls = argparse.ArgumentParser  # type: ignore[attr-defined]
    original = cls.parse_known_args
    depth = [0]

    def parse_known_args(self: object, *args: object, **kwargs: object) -> object:
        depth[0] += 1
        try:
            result = original(self, *args, **kwargs)
        finally:
            depth[0] -= 1
        if depth[0] == 0:
            try:
                namespace = result[0]
                doc = {"prog": getattr(self, "prog", None), "pid": os.getpid()}
                doc["args"] = {k: _plain(v) for k, v in vars(namespace).items()}
                _write("argparse.json", doc)
            except Exception:  # noqa: S110 - recording must never break the program
                pass
        return result

    cls.parse_known_args = parse_known_args


#: what Click parsed in this process: the command path and the merged parameters
_click: dict[str, object] = {}


def _patch_click(core: object) -> None:
    cls = core.Command  # type: ignore[attr-defined]
    original = cls.make_context

    def make_context(
        self: object, info_name: object, args: object, *a: object, **kw: object
    ) -> object:
        ctx = original(self, info_name, args, *a, **kw)
        try:
            params = _click.setdefault("args", {})
            assert isinstance(params, dict)
            path = _click.setdefault("command", [])
            assert isinstance(path, list)
            path.append(str(info_name))
            _click.setdefault("prog", str(info_name))
            _click["pid"] = os.getpid()
            for key, value in ctx.params.items():
                name = key if key not in params else f"{info_name}.{key}"
                params[name] = _plain(value)
        except Exception:  # noqa: S110 - recording must never break the program
            pass
        return ctx

    cls.make_context = make_context


#: module -> what patches it once it has been imported
_PATCHES = {"argparse": _patch, "click.core": _patch_click, "typer._click.core": _patch_click}


class _Finder:
    """Patches argparse and click when first imported (nothing is imported before that)."""

    @staticmethod
    def find_spec(name: str, path: object = None, target: object = None) -> object:
        patch = _PATCHES.pop(name, None)
        if patch is None:
            return None
        import importlib.machinery

        if not _PATCHES:
            sys.meta_path.remove(_Finder)  # type: ignore[arg-type]
        spec = importlib.machinery.PathFinder.find_spec(name, path)  # type: ignore[arg-type]
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        exec_module = loader.exec_module

        def exec_and_patch(module: object) -> None:
            exec_module(module)  # type: ignore[arg-type]
            try:
                patch(module)
            except Exception:  # noqa: S110
                pass

        loader.exec_module = exec_and_patch  # type: ignore[method-assign]
        return spec


#: libraries whose randomness a verdict can explain (seeded through their own arguments)
_WATCHED = ("numpy", "torch", "tensorflow", "jax", "sklearn", "optuna", "random", "xgboost")


def _at_exit() -> None:
    if _click.get("args"):
        path = _click.get("command")
        command = " ".join(path) if isinstance(path, list) else ""
        _write("click.json", {**_click, "command": command})
    if "mltrail.sdk.init" in sys.modules:
        _write(f"sdk-{os.getpid()}.json", {"pid": os.getpid()})
    imported = [m for m in _WATCHED if m in sys.modules]
    _write("modules.json", {"pid": os.getpid(), "imported": imported})


def _chain() -> None:
    """Run the ``sitecustomize`` this one shadows, if any."""
    import importlib.machinery
    import importlib.util

    rest = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is None or spec.loader is None or spec.origin == __file__:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules["sitecustomize"] = module
    spec.loader.exec_module(module)


if _DIR and os.path.isdir(_DIR):
    import atexit

    for _name in list(_PATCHES):
        if _name in sys.modules:
            _PATCHES.pop(_name)(sys.modules[_name])
    if _PATCHES:
        sys.meta_path.insert(0, _Finder)  # type: ignore[arg-type]
    atexit.register(_at_exit)
try:
    _chain()
except Exception as exc:  # a broken sitecustomize of the user's: say so, as Python would
    print(f"Error in sitecustomize; set PYTHONVERBOSE for traceback:\n{exc!r}", file=sys.stderr)
