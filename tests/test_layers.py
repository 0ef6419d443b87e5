"""The architecture, checked: no import cycle between packages, modules stay small.

The layering contracts themselves are in ``pyproject.toml`` (``[tool.importlinter]``) and run
by ``lint-imports`` in ``.ci/run``; this test runs them too, and checks what import-linter
cannot say: no cycle between modules of different packages (top-level modules count as
their own package), and no module over 600 lines.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "mltrail"
MAX_LINES = 600


def _package(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2])


def test_no_import_cycle_between_packages() -> None:
    """The package-level import graph (TYPE_CHECKING imports aside) has no cycle."""
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph("mltrail", exclude_type_checking_imports=True)
    edges: dict[str, set[str]] = {}
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            a, b = _package(module), _package(imported)
            if a != b and a != "mltrail" and b != "mltrail":
                edges.setdefault(a, set()).add(b)
    cycles = []
    for a, targets in edges.items():
        for b in targets:
            if a < b and a in edges.get(b, set()):
                cycles.append((a, b))
    # longer cycles: a package reaches itself through others
    for start in edges:
        seen: set[str] = set()
        todo = list(edges[start])
        while todo:
            node = todo.pop()
            if node == start:
                cycles.append((start, "..."))
                break
            if node not in seen:
                seen.add(node)
                todo.extend(edges.get(node, ()))
    assert cycles == [], f"import cycles between packages: {sorted(set(cycles))}"


def test_import_linter_contracts_hold() -> None:
    """`lint-imports` keeps every contract of pyproject.toml."""
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    out = subprocess.run([exe], capture_output=True, text=True, timeout=300, cwd=SRC.parents[1])
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]


def test_no_module_over_600_lines() -> None:
    """Every module of the package has at most 600 lines."""
    big = {
        str(p.relative_to(SRC)): n
        for p in SRC.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert big == {}, f"split these modules: {big}"
