"""``mltrail artifacts list|show|get``, ``mltrail lineage``, and artifacts in ``runs show``.

Light to import: Rich, the store and the object layer load inside the commands.
"""

from __future__ import annotations

from pathlib import Path  # noqa: TC003 (Typer reads the annotations at runtime)
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mltrail.cli._common import (
    JsonOption,
    StoreOption,
    cli_errors,
    fail,
    fmt_time,
    open_api,
    print_json,
    stdout_console,
)
from mltrail.cli.runs_view import aliases_text as _aliases_text
from mltrail.cli.runs_view import print_run_artifacts, run_artifacts
from mltrail.formatting import fmt_bytes

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table
    from rich.tree import Tree

    from mltrail.api import Api
    from mltrail.artifacts.base import ArtifactStore
    from mltrail.artifacts.records import ArtifactVersion, LineageGraph

__all__ = [
    "app",
    "get_artifact",
    "lineage",
    "list_artifacts",
    "print_run_artifacts",
    "run_artifacts",
    "show_artifact",
]

app = typer.Typer(help="List, inspect and fetch versioned artifacts.", no_args_is_help=True)

ProjectOption = Annotated[
    str | None,
    typer.Option("--project", "-p", help="Only this project (names are per project)."),
]


def fmt_size(n: int) -> str:
    """Bytes for people: ``512 B``, ``1.5 KiB``, ``3.2 GiB``."""
    return fmt_bytes(n)


def _arts(api: Api) -> ArtifactStore:
    from mltrail.store.registry import open_artifact_store

    return open_artifact_store(api.location)


@app.command("list")
def list_artifacts(
    project: ProjectOption = None,
    as_json: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """List artifacts: project, name, type, latest version, number of versions, aliases."""
    with cli_errors():
        api = open_api(store)
        found = _arts(api).list_artifacts(project)
    if as_json:
        print_json([a.to_dict() for a in found])
        return
    console = stdout_console()
    if not found:
        console.print("no artifacts")
        return
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("project", "name", "type", "latest", "versions", "aliases", "created"):
        table.add_column(col, overflow="fold")
    for a in found:
        aliases = {k: v for k, v in a.aliases.items() if k != "latest"}
        table.add_row(
            Text(a.project),
            Text(a.name, style="cyan"),
            Text(a.type),
            f"v{a.latest_version}",
            str(a.version_count),
            Text(", ".join(f"{k}→v{v}" for k, v in sorted(aliases.items()))),
            fmt_time(a.created_ms),
        )
    console.print(table)


@app.command("show")
def show_artifact(
    ref: Annotated[
        str,
        typer.Argument(
            metavar="NAME[:vN|:ALIAS]", help="An artifact, a version, an alias or a digest."
        ),
    ],
    project: ProjectOption = None,
    as_json: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """Show one artifact version (default ``latest``) and the list of its versions."""
    with cli_errors():
        api = open_api(store)
        arts = _arts(api)
        version = arts.resolve(ref, project=project)
        versions = arts.list_versions(version.project, version.name)
        consumers = arts.consumers(version)
    if as_json:
        print_json(
            {
                **version.to_dict(),
                "used_by": consumers,
                "versions": [v.to_dict() for v in versions],
            }
        )
        return
    console = stdout_console()
    _print_version(console, version, consumers)
    console.print()
    console.print(_versions_table(versions, version.version))


def _print_version(console: Console, v: ArtifactVersion, consumers: list[str]) -> None:
    import json

    from rich.table import Table
    from rich.text import Text

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row("artifact", Text(v.qualified, style="cyan"))
    grid.add_row("type", Text(v.type))
    grid.add_row("kind", Text(v.kind))
    grid.add_row("digest", Text(v.digest))
    grid.add_row("size", f"{fmt_size(v.size)} in {v.file_count} file(s)")
    if v.uri:
        grid.add_row("uri", Text(v.uri))
    grid.add_row("aliases", Text(_aliases_text(v.aliases) or "-"))
    grid.add_row("created", fmt_time(v.created_ms))
    grid.add_row("produced by", Text(v.run_id or "-", style="cyan"))
    grid.add_row("used by", Text(", ".join(consumers) or "-", style="cyan"))
    if v.metadata:
        grid.add_row("metadata", Text(json.dumps(v.metadata, sort_keys=True, ensure_ascii=False)))
    console.print(grid)


def _versions_table(versions: list[ArtifactVersion], current: int) -> Table:
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("version", "digest", "size", "files", "aliases", "run", "created"):
        table.add_column(col, overflow="fold")
    for v in versions:
        table.add_row(
            Text(f"v{v.version}", style="bold" if v.version == current else ""),
            Text(v.digest[:23]),
            fmt_size(v.size),
            str(v.file_count),
            Text(_aliases_text(v.aliases)),
            Text(v.run_id or ""),
            fmt_time(v.created_ms),
        )
    return table


@app.command("get")
def get_artifact(
    ref: Annotated[
        str,
        typer.Argument(
            metavar="NAME[:vN|:ALIAS]",
            help="What to fetch (or models:/NAME@ALIAS, models:/NAME/N).",
        ),
    ],
    to: Annotated[
        Path, typer.Option("--to", metavar="DIR", help="The directory to check it out into.")
    ],
    project: ProjectOption = None,
    as_json: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """Check an artifact version out into DIR, verifying every object's digest."""
    from mltrail.artifacts.access import checkout_version

    with cli_errors():
        api = open_api(store)
        if ref.startswith("models:/"):  # a registered model's version: its artifact
            from mltrail.sdk.models import model_artifact

            version = model_artifact(ref, project=project, store=store)
        else:
            version = _arts(api).resolve(ref, project=project)
        path = checkout_version(version, api.location, to, progress=not as_json)
    if as_json:
        print_json({"artifact": version.qualified, "digest": version.digest, "path": str(path)})
        return
    from rich.text import Text

    stdout_console().print(Text(f"{version.qualified} ({version.digest[:23]}) → {path}"))


# -- lineage -------------------------------------------------------------------------------


def lineage(
    target: Annotated[
        str,
        typer.Argument(
            metavar="RUN|ARTIFACT",
            help="A run id (or prefix) or an artifact reference (NAME:vN, NAME:ALIAS, digest); "
            "prefix with run: or artifact: when a name could be read both ways.",
        ),
    ],
    upstream: Annotated[
        bool, typer.Option("--upstream", help="Only what it came from (inputs, producers).")
    ] = False,
    downstream: Annotated[
        bool, typer.Option("--downstream", help="Only what came of it (outputs, consumers).")
    ] = False,
    depth: Annotated[
        int | None, typer.Option("--depth", min=0, help="Follow at most this many edges.")
    ] = None,
    project: ProjectOption = None,
    as_json: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """Show the lineage graph of a run or an artifact version.

    Humans get a tree (upstream: what it was made from; downstream: what was made from it);
    ``--json`` prints the graph ``{root, direction, nodes, edges, truncated}``.
    """
    if upstream and downstream:
        fail("--upstream and --downstream exclude each other (give neither for both)")
    direction: Any = "upstream" if upstream else "downstream" if downstream else "both"
    with cli_errors():
        api = open_api(store)
        arts = _arts(api)
        run_id, version = _lineage_root(api, arts, target, project)
        graph = arts.lineage(run_id=run_id, version=version, direction=direction, max_depth=depth)
    if as_json:
        print_json(graph.to_dict())
        return
    console = stdout_console()
    ways = ("upstream", "downstream") if direction == "both" else (direction,)
    for i, way in enumerate(ways):
        if i:
            console.print()
        console.print(_lineage_tree(graph, way))
    if graph.truncated:
        console.print("[yellow]the graph was cut at 10,000 nodes[/yellow]")


def _lineage_root(
    api: Api, arts: ArtifactStore, target: str, project: str | None
) -> tuple[str | None, ArtifactVersion | None]:
    from mltrail.errors import NotFoundError

    if target.startswith("run:"):
        return api.store.resolve_run_id(target[4:]), None
    if target.startswith("artifact:"):
        return None, arts.resolve(target[len("artifact:") :], project=project)
    if ":" not in target and "/" not in target:
        try:
            return api.store.resolve_run_id(target), None
        except NotFoundError:
            pass
    try:
        return None, arts.resolve(target, project=project)
    except NotFoundError:
        raise NotFoundError(f"{target!r} is neither a run id nor an artifact") from None


def _node_label(graph: LineageGraph, node_id: str, relation: str | None, way: str) -> Any:
    from rich.text import Text

    node = graph.node(node_id)
    text = Text()
    if relation is not None:
        verb = {
            ("upstream", "produced"): "produced by ",
            ("upstream", "used"): "used ",
            ("downstream", "produced"): "produced ",
            ("downstream", "used"): "used by ",
        }[(way, relation)]
        text.append(verb, style="dim")
    if node.type == "run":
        text.append("run ", style="bold")
        text.append(str(node.data.get("run_id")), style="cyan")
        text.append(f" {node.data.get('name')} [{node.data.get('status')}]", style="")
    else:
        text.append("artifact ", style="bold")
        text.append(node.label, style="green")
        aliases = node.data.get("aliases") or []
        if aliases:
            text.append(f" ({', '.join(aliases)})", style="dim")
        text.append(f" {str(node.data.get('digest'))[:23]}", style="dim")
    return text


def _lineage_tree(graph: LineageGraph, way: str) -> Tree:
    from rich.tree import Tree

    nxt: dict[str, list[tuple[str, str]]] = {}
    for e in graph.edges:
        if way == "upstream":
            nxt.setdefault(e.target, []).append((e.source, e.relation))
        else:
            nxt.setdefault(e.source, []).append((e.target, e.relation))
    label = _node_label(graph, graph.root, None, way)
    label.append(f"  ({way})", style="magenta")
    root = Tree(label)
    on_path = {graph.root}
    budget = [5000]  # lines; a dense graph prints as a DAG unfolded, so bound it

    def grow(branch: Tree, node_id: str) -> None:
        for child, relation in sorted(nxt.get(node_id, [])):
            if budget[0] <= 0:
                branch.add("[dim]...[/dim]")
                return
            budget[0] -= 1
            sub = branch.add(_node_label(graph, child, relation, way))
            if child not in on_path:
                on_path.add(child)
                grow(sub, child)
                on_path.discard(child)

    grow(root, graph.root)
    if not nxt.get(graph.root):
        root.add("[dim](nothing recorded)[/dim]")
    return root
