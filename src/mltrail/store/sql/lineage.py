"""Lineage of runs and artifact versions on the SQL store: a breadth-first walk.

Runs consume versions (``run_inputs``) and produce them (``artifact_versions.run_id``); the
walk follows those edges upstream and/or downstream, one query per level and direction, up to
:data:`~mltrail.artifacts.records.MAX_LINEAGE_NODES` nodes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from mltrail.artifacts.records import (
    MAX_LINEAGE_NODES,
    LineageEdge,
    LineageGraph,
    LineageNode,
    run_node_id,
    version_node_id,
)
from mltrail.errors import NotFoundError
from mltrail.store.sql.artifacts import _chunks, _versions_select, ic, pc, rc, vc
from mltrail.store.sql.schema import projects

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mltrail.artifacts.records import ArtifactVersion, Direction
    from mltrail.store.sql.artifacts import SqlArtifactStore

__all__ = ["LineageWalk", "lineage_graph"]


def lineage_graph(
    conn: sa.Connection,
    store: SqlArtifactStore,
    run_id: str | None,
    version: ArtifactVersion | None,
    direction: Direction,
    max_depth: int | None,
) -> LineageGraph:
    """The graph around one run or one version (arguments already checked)."""
    walk = LineageWalk(conn, store)
    if run_id is not None:
        if conn.execute(sa.select(rc.run_id).where(rc.run_id == run_id)).first() is None:
            raise NotFoundError(f"run {run_id!r} does not exist")
        root = run_node_id(run_id)
        walk.add_runs([run_id])
        start_runs, start_versions = [run_id], []
    else:
        assert version is not None
        key = (store._artifact_id(conn, version.project, version.name), version.version)
        fresh = store._load_one(conn, key[0], key[1], version.name)
        root = version_node_id(fresh)
        walk.add_versions({key: fresh})
        start_runs, start_versions = [], [key]
    directions = ("upstream", "downstream") if direction == "both" else (direction,)
    for way in directions:
        walk.run(way, list(start_runs), list(start_versions), max_depth)
    return LineageGraph(
        root=root,
        direction=direction,
        nodes=tuple(walk.nodes.values()),
        edges=tuple(walk.edges),
        truncated=walk.truncated,
    )


class LineageWalk:
    """Breadth-first lineage walk, one query per level and direction."""

    def __init__(self, conn: sa.Connection, store: SqlArtifactStore) -> None:
        self.conn = conn
        self.store = store
        self.nodes: dict[str, LineageNode] = {}
        self.edges: list[LineageEdge] = []
        self._edge_keys: set[tuple[str, str]] = set()
        self._vid: dict[tuple[str, int], str] = {}
        self.truncated = False

    def _full(self) -> bool:
        if len(self.nodes) >= MAX_LINEAGE_NODES:
            self.truncated = True
            return True
        return False

    def add_runs(self, run_ids: list[str]) -> None:
        missing = [r for r in dict.fromkeys(run_ids) if run_node_id(r) not in self.nodes]
        for chunk in _chunks(missing):
            rows = self.conn.execute(
                sa.select(rc.run_id, rc.name, rc.status, rc.created_ms, pc.name.label("project"))
                .join(projects, pc.project_id == rc.project_id)
                .where(rc.run_id.in_(chunk))
            ).all()
            for r in rows:
                if self._full():
                    return
                self.nodes[run_node_id(r.run_id)] = LineageNode(
                    run_node_id(r.run_id),
                    "run",
                    f"{r.name} ({r.run_id})",
                    {
                        "run_id": r.run_id,
                        "name": r.name,
                        "project": r.project,
                        "status": r.status,
                        "created_ms": int(r.created_ms),
                    },
                )

    def add_versions(self, versions: dict[tuple[str, int], ArtifactVersion]) -> None:
        for key, v in versions.items():
            node_id = version_node_id(v)
            self._vid[key] = node_id
            if node_id not in self.nodes and not self._full():
                data = {k: x for k, x in v.to_dict().items() if k not in ("metadata", "source")}
                data["artifact_type"] = data.pop("type")  # "type" names the node's kind
                self.nodes[node_id] = LineageNode(node_id, "artifact", v.qualified, data)

    def edge(self, source: str, target: str, relation: Any) -> None:
        if (source, target) in self._edge_keys:
            return
        if source in self.nodes and target in self.nodes:
            self._edge_keys.add((source, target))
            self.edges.append(LineageEdge(source, target, relation))

    def _versions_where(self, clause: Any) -> dict[tuple[str, int], ArtifactVersion]:
        rows = self.conn.execute(_versions_select().where(clause)).all()
        records = self.store._records(self.conn, rows)
        return {(r.artifact_id, int(r.version)): rec for r, rec in zip(rows, records, strict=True)}

    def run(
        self,
        way: str,
        runs_: list[str],
        versions: list[tuple[str, int]],
        max_depth: int | None,
    ) -> None:
        seen_runs: set[str] = set(runs_)
        seen_versions: set[tuple[str, int]] = set(versions)
        depth = 0
        while (runs_ or versions) and (max_depth is None or depth < max_depth):
            if self._full():
                return
            next_runs: list[str] = []
            next_versions: list[tuple[str, int]] = []
            if way == "upstream":
                # a run's inputs; a version's producing run
                for chunk in _chunks(runs_):
                    inputs = self.conn.execute(
                        sa.select(ic.run_id, ic.artifact_id, ic.version).where(ic.run_id.in_(chunk))
                    ).all()
                    self._link_inputs(inputs, next_versions, seen_versions)
                if versions:
                    producers = self._producers(versions)
                    self.add_runs([p for p in producers.values() if p is not None])
                    for key, run_id in producers.items():
                        if run_id is None:
                            continue
                        self.edge(run_node_id(run_id), self._vid[key], "produced")
                        if run_id not in seen_runs:
                            seen_runs.add(run_id)
                            next_runs.append(run_id)
            else:
                # a run's outputs; a version's consumers
                for chunk in _chunks(runs_):
                    outs = self._versions_where(vc.run_id.in_(chunk))
                    self.add_versions(outs)
                    for key, v in outs.items():
                        assert v.run_id is not None
                        self.edge(run_node_id(v.run_id), self._vid[key], "produced")
                        if key not in seen_versions:
                            seen_versions.add(key)
                            next_versions.append(key)
                pairs: list[Any] = []
                for key in versions:
                    pairs.extend(
                        self.conn.execute(
                            sa.select(ic.run_id, ic.artifact_id, ic.version).where(
                                ic.artifact_id == key[0], ic.version == key[1]
                            )
                        ).all()
                    )
                self.add_runs([p.run_id for p in pairs])
                for p in pairs:
                    key = (p.artifact_id, int(p.version))
                    self.edge(self._vid[key], run_node_id(p.run_id), "used")
                    if p.run_id not in seen_runs:
                        seen_runs.add(p.run_id)
                        next_runs.append(p.run_id)
            runs_, versions = next_runs, next_versions
            depth += 1

    def _link_inputs(
        self,
        pairs: Sequence[Any],
        next_versions: list[tuple[str, int]],
        seen_versions: set[tuple[str, int]],
    ) -> None:
        wanted = {(p.artifact_id, int(p.version)) for p in pairs} - set(self._vid)
        if wanted:
            clause = sa.or_(
                *(sa.and_(vc.artifact_id == a, vc.version == n) for a, n in sorted(wanted))
            )
            self.add_versions(self._versions_where(clause))
        for p in pairs:
            key = (p.artifact_id, int(p.version))
            if key in self._vid:
                self.edge(self._vid[key], run_node_id(p.run_id), "used")
                if key not in seen_versions:
                    seen_versions.add(key)
                    next_versions.append(key)

    def _producers(self, versions: list[tuple[str, int]]) -> dict[tuple[str, int], str | None]:
        clause = sa.or_(*(sa.and_(vc.artifact_id == a, vc.version == n) for a, n in versions))
        rows = self.conn.execute(
            sa.select(vc.artifact_id, vc.version, vc.run_id).where(clause)
        ).all()
        return {(r.artifact_id, int(r.version)): r.run_id for r in rows}
