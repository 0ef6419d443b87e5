"""The MLflow compatibility tests on PostgreSQL: the core of them by default, the rest with
``pytest -m slow`` (the real client is slow to drive; CI's budget is tight)."""

from __future__ import annotations

import pytest

#: run on PostgreSQL by default too (the rest of the module's tests: SQLite by default)
_PG_DEFAULT = ("test_fluent_run_lands_as_an_ordinary_run",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "mlflow_compat/" not in item.nodeid or "[postgres]" not in item.nodeid:
            continue
        if item.nodeid.split("::")[-1].split("[")[0] not in _PG_DEFAULT:
            item.add_marker(pytest.mark.slow)
