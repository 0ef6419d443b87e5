"""The SDK's seams: the active run per thread, thread failures, and one public map.

- A run started in a thread is that thread's active run; a thread that started none logs into
  the main thread's run (MLflow's fluent API behaves the same).
- An uncaught exception in a thread ends the runs that thread started, failed, with the error.
- ``mltrail``'s public names, ``__all__`` and the type checkers' imports come from one map.
"""

from __future__ import annotations

import ast
import threading
from pathlib import Path

import pytest

import mltrail
from mltrail.entities import RunStatus
from mltrail.store.registry import forget_open_stores


@pytest.fixture(autouse=True)
def _close_stores():
    yield
    forget_open_stores()


def test_the_active_run_is_per_thread(tmp_path: Path) -> None:
    """Each thread's own run is its active run; other threads see the main thread's."""
    store = tmp_path / "store"
    main_run = mltrail.init(project="t", store=store, capture=False)
    seen: dict[str, str | None] = {}

    def worker() -> None:
        with mltrail.init(project="t", store=store, capture=False) as own:
            seen["own"] = own.run_id
            seen["active_in_worker"] = mltrail.active_run().run_id  # type: ignore[union-attr]
            mltrail.log({"w": 1.0})
        seen["after"] = mltrail.active_run().run_id  # type: ignore[union-attr]

    def helper() -> None:  # started no run: logs into the main thread's
        seen["helper"] = mltrail.active_run().run_id  # type: ignore[union-attr]
        mltrail.log({"h": 2.0})

    for target in (worker, helper):
        t = threading.Thread(target=target)
        t.start()
        t.join()
    assert mltrail.active_run() is main_run  # the worker's run never became the main's
    main_run.finish()
    assert seen["active_in_worker"] == seen["own"] != main_run.run_id
    assert seen["after"] == seen["helper"] == main_run.run_id
    api = mltrail.Api(store)
    assert "w" in api.run(seen["own"]).metrics and "h" in api.run(main_run.run_id).metrics  # type: ignore[arg-type]
    assert "w" not in api.run(main_run.run_id).metrics


def test_an_uncaught_exception_in_a_thread_fails_that_threads_runs(tmp_path: Path) -> None:
    """The thread's run ends failed with the error; the main thread's run goes on."""
    import os
    import subprocess
    import sys

    store = tmp_path / "store"
    script = tmp_path / "threads.py"
    script.write_text(
        "import threading, mltrail\n"
        "main = mltrail.init(project='t', capture=False)\n"
        "def worker():\n"
        "    run = mltrail.init(project='t', capture=False, name='worker')\n"
        "    raise RuntimeError('loader died')\n"
        "t = threading.Thread(target=worker); t.start(); t.join()\n"
        "mltrail.log({'x': 1.0})\n"
        "main.finish()\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(MLTRAIL_STORE=str(store), MLTRAIL_ALLOW_DIRTY="1")
    out = subprocess.run(
        [sys.executable, str(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert "loader died" in out.stderr  # the usual thread traceback is still printed
    api = mltrail.Api(store)
    by_name = {r.name: r for r in api.runs()}
    assert by_name["worker"].status is RunStatus.FAILED
    assert api.state(by_name["worker"].run_id)["error"]["message"] == "loader died"
    [main] = [r for n, r in by_name.items() if n != "worker"]
    assert main.status is RunStatus.FINISHED and "x" in main.metrics


def test_public_names_come_from_one_map() -> None:
    """__all__ is the map's keys; the TYPE_CHECKING imports name the same modules."""
    public = mltrail._PUBLIC
    assert mltrail.__all__ == sorted([*public, "__version__"])
    tree = ast.parse(Path(mltrail.__file__).read_text())
    typed: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                typed[alias.asname or alias.name] = node.module
    typed.pop("annotations", None)
    typed.pop("TYPE_CHECKING", None)
    typed.pop("Any", None)
    assert typed == public
    for name, module in public.items():
        assert getattr(mltrail, name) is getattr(__import__(module, fromlist=[name]), name)


def test_run_id_alias() -> None:
    """``Run.id`` is ``Run.run_id`` (the name other trackers' users type)."""
    assert mltrail.Run.id.__doc__ and "run_id" in mltrail.Run.id.__doc__  # type: ignore[attr-defined]


def test_every_error_class_is_drawn_in_the_tree() -> None:
    """Each MltrailError subclass anywhere in the package appears in errors.py's tree."""
    import importlib
    import pkgutil

    import mltrail.errors as errors_mod

    skip = ("mltrail.__main__", "mltrail.integrations")
    for info in pkgutil.walk_packages(mltrail.__path__, "mltrail."):
        if not info.name.startswith(skip):
            try:
                importlib.import_module(info.name)
            except ImportError:  # an optional extra that is not installed
                continue
    found: set[type] = set()
    todo = [errors_mod.MltrailError]
    while todo:
        cls = todo.pop()
        found.add(cls)
        todo.extend(cls.__subclasses__())
    tree = errors_mod.__doc__ or ""
    missing = sorted(c.__name__ for c in found if f"{c.__name__} (" not in tree)
    assert missing == [], f"draw these in mltrail/errors.py: {missing}"
    outside = sorted(c.__qualname__ for c in found if c.__module__ != "mltrail.errors")
    assert outside == [], f"define these in mltrail/errors.py: {outside}"
