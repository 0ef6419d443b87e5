"""The object layer's own architecture: no import cycle between its modules."""

from __future__ import annotations

import pytest


def test_no_import_cycle_inside_objects() -> None:
    """No module of mltrail.objects reaches itself through the others (lazy and
    TYPE_CHECKING imports included): backends import the leaf modules, never each other."""
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph("mltrail", cache_dir=None)
    inside = {m for m in graph.modules if m.startswith("mltrail.objects.")}
    edges = {
        m: {i for i in graph.find_modules_directly_imported_by(m) if i in inside} for m in inside
    }
    cycles = []
    for start in sorted(inside):
        seen: set[str] = set()
        todo = list(edges[start])
        while todo:
            node = todo.pop()
            if node == start:
                cycles.append(start)
                break
            if node not in seen:
                seen.add(node)
                todo.extend(edges[node])
    assert cycles == [], f"modules of mltrail.objects in an import cycle: {cycles}"
