"""``mltrail models``: the model registry from the command line.

``list``, ``show NAME``, ``versions NAME``, ``history NAME``, ``register NAME --artifact
REF|PATH [--run RUN]``, ``alias NAME ALIAS VERSION [--expect N] [--reason ...]
[--override REASON] [--remove]`` and ``card NAME VERSION [--set SECTION=TEXT ...] [--from
card.md] [--edit] [--export md|html|json]``. Every command takes ``--json``; errors are one
``error: ...`` line (a refused alias move lists every unmet rule) and exit status 1.
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
    print_json,
    stdout_console,
)

if TYPE_CHECKING:
    from mltrail.registry.records import HistoryEvent, ModelVersion

__all__ = ["app"]

app = typer.Typer(help="The model registry: versions, aliases, cards and their history.")

NameArg = Annotated[str, typer.Argument(metavar="NAME", help="The registered model.")]
ProjectOption = Annotated[
    str | None,
    typer.Option("--project", "-p", help="The project (needed when the name is in several)."),
]


def _table(*columns: str) -> Any:
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False)
    for col in columns:
        table.add_column(col, overflow="fold")
    return table


def _aliases(v: ModelVersion) -> str:
    return ", ".join(a for a in v.aliases if a != "latest")


@app.command("list")
def list_models(
    project: ProjectOption = None,
    archived: Annotated[bool, typer.Option("--archived", help="Include archived models.")] = False,
    as_json: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """List registered models: project, name, latest version, versions, aliases, updated."""
    from mltrail.sdk.models import models

    with cli_errors():
        found = models.list(project, include_archived=archived, store=store)
    if as_json:
        print_json([m.to_dict() for m in found])
        return
    console = stdout_console()
    if not found:
        console.print("no registered models")
        return
    from rich.text import Text

    table = _table("project", "name", "latest", "versions", "aliases", "updated")
    for m in found:
        aliases = ", ".join(f"{k}=v{v}" for k, v in sorted(m.aliases.items()))
        name = Text(m.name + (" (archived)" if m.archived else ""))
        table.add_row(
            Text(m.project),
            name,
            f"v{m.latest_version}" if m.latest_version else "-",
            str(m.version_count),
            Text(aliases),
            fmt_time(m.updated_ms),
        )
    console.print(table)


@app.command("show")
def show_model(
    name: NameArg,
    project: ProjectOption = None,
    as_json: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """Show a model: description, owner, tags, aliases and its versions."""
    from mltrail.sdk.models import models

    with cli_errors():
        model = models.get(name, project=project, store=store)
        versions = models.versions(name, project=model.project, store=store)
    if as_json:
        print_json({**model.to_dict(), "versions": [v.to_dict() for v in versions]})
        return
    from rich.text import Text

    console = stdout_console()
    console.print(Text(f"{model.project}/{model.name}", style="bold"))
    for label, value in (
        ("description", model.description or "-"),
        ("owner", model.owner or "-"),
        ("tags", ", ".join(f"{k}={v}" for k, v in model.tags.items()) or "-"),
        ("aliases", ", ".join(f"{k}=v{v}" for k, v in sorted(model.aliases.items())) or "-"),
        ("archived", "yes" if model.archived else "no"),
    ):
        console.print(Text(f"  {label:<12}{value}"))
    _print_versions(versions)


def _print_versions(versions: list[ModelVersion]) -> None:
    from rich.text import Text

    table = _table("version", "aliases", "artifact", "digest", "run", "card", "created")
    for v in versions:
        table.add_row(
            f"v{v.version}" + (" (archived)" if v.archived else ""),
            Text(_aliases(v)),
            Text(v.artifact),
            Text(v.digest[:23]),
            Text(v.run_id or "-"),
            f"rev {v.card_revision}" if v.card_revision else "-",
            fmt_time(v.created_ms),
        )
    stdout_console().print(table)


@app.command("versions")
def list_versions(
    name: NameArg,
    project: ProjectOption = None,
    as_json: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """List a model's versions, oldest first."""
    from mltrail.sdk.models import models

    with cli_errors():
        versions = models.versions(name, project=project, store=store)
    if as_json:
        print_json([v.to_dict() for v in versions])
        return
    _print_versions(versions)


def _change(e: HistoryEvent) -> str:
    import json

    def short(x: Any) -> str:
        return "-" if x is None else json.dumps(x, sort_keys=True, default=str)[:120]

    return f"{short(e.before)} -> {short(e.after)}"


@app.command("history")
def history(
    name: NameArg,
    project: ProjectOption = None,
    as_json: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """Every change of a model, oldest first: when, who, what, why, before -> after."""
    from mltrail.sdk.models import models

    with cli_errors():
        events = models.history(name, project=project, store=store)
    if as_json:
        print_json([e.to_dict() for e in events])
        return
    from rich.text import Text

    table = _table("#", "when", "who", "action", "version", "alias", "reason", "change")
    for e in events:
        table.add_row(
            str(e.seq),
            fmt_time(e.created_ms),
            Text(e.actor or "-"),
            e.action,
            f"v{e.version}" if e.version is not None else "-",
            Text(e.alias or "-"),
            Text(e.reason or "-"),
            Text(_change(e)),
        )
    stdout_console().print(table)


@app.command("register")
def register(
    name: NameArg,
    artifact: Annotated[
        str,
        typer.Option("--artifact", "-a", help="An artifact reference (model:v3) or a path."),
    ],
    run: Annotated[str | None, typer.Option("--run", help="The source run's id.")] = None,
    project: ProjectOption = None,
    description: Annotated[str, typer.Option("--description", help="About this version.")] = "",
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the history).")] = "",
    as_json: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """Register the next version of NAME from an artifact version or a path."""
    from mltrail.sdk.models import register_model

    with cli_errors():
        if run is not None:
            from mltrail.store.registry import open_store

            run = open_store(store).resolve_run_id(run)
        v = register_model(
            name,
            run=run,
            artifact=artifact,
            project=project,
            description=description,
            reason=reason,
            store=store,
        )
    if as_json:
        print_json(v.to_dict())
        return
    stdout_console().print(f"registered {v.project}/{v.name} v{v.version} ({v.digest})")


@app.command("alias")
def alias(
    name: NameArg,
    alias_name: Annotated[str, typer.Argument(metavar="ALIAS", help="e.g. production.")],
    version: Annotated[
        int | None, typer.Argument(metavar="VERSION", help="The version to point at.")
    ] = None,
    expect: Annotated[
        int | None,
        typer.Option("--expect", help="Move only if the alias is at this version (0: unset)."),
    ] = None,
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the history).")] = "",
    override: Annotated[
        str | None,
        typer.Option("--override", metavar="REASON", help="Override unmet policy rules (admin)."),
    ] = None,
    remove: Annotated[bool, typer.Option("--remove", help="Remove the alias.")] = False,
    project: ProjectOption = None,
    as_json: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """Point ALIAS of NAME at VERSION (under the registry policy), or --remove it."""
    from mltrail.sdk.models import _open, _project, set_alias
    from mltrail.store.registry import resolve_location

    if remove == (version is not None):
        fail("give VERSION to set the alias, or --remove (not both)")
    with cli_errors():
        if remove:
            _, reg = _open(resolve_location(store))
            proj = _project(reg, name, project)
            removed = reg.remove_alias(
                proj, name, alias_name, expected_version=expect, reason=reason
            )
            if as_json:
                print_json({"removed": removed})
            else:
                said = "removed" if removed else "was not set:"
                stdout_console().print(f"{said} alias {alias_name} of {proj}/{name}")
            return
        assert version is not None
        got = set_alias(
            name,
            alias_name,
            version,
            expected_version=expect,
            reason=reason,
            override_reason=override,
            project=project,
            store=store,
        )
    if as_json:
        print_json(got.to_dict())
        return
    stdout_console().print(f"{got.project}/{got.name}@{alias_name} -> v{got.version}")


@app.command("card")
def card(
    name: NameArg,
    version: Annotated[int, typer.Argument(metavar="VERSION")],
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", metavar="SECTION=TEXT", help="Set a section (repeatable)."),
    ] = None,
    from_file: Annotated[
        Path | None,
        typer.Option("--from", metavar="FILE", help="Sections from Markdown (## headings)."),
    ] = None,
    edit: Annotated[bool, typer.Option("--edit", help="Edit the card in $EDITOR.")] = False,
    export: Annotated[
        str | None, typer.Option("--export", metavar="md|html|json", help="Print the card.")
    ] = None,
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the history).")] = "",
    project: ProjectOption = None,
    as_json: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """Show, update (--set, --from, --edit) or export a version's model card."""
    from mltrail.registry.cards import card_from_markdown
    from mltrail.sdk.models import models

    with cli_errors():
        c = models.card(name, version, project=project, store=store)
        sections: dict[str, Any] = {}
        for item in set_ or []:
            key, sep, value = item.partition("=")
            if not sep:
                fail(f"--set {item!r}: expected SECTION=TEXT")
            sections[key.strip()] = value
        if from_file is not None:
            try:
                sections.update(card_from_markdown(from_file.read_text(encoding="utf-8")))
            except OSError as exc:
                fail(f"--from {from_file}: {exc.strerror or exc}")
        if edit:
            import click

            edited = click.edit(c.export("md"), extension=".md")
            if edited is not None:
                sections.update(card_from_markdown(edited))
        if sections:
            c.update(reason=reason, **sections)
        out = c.export(export or ("json" if as_json else "md"))
    if export is None and not as_json:
        from rich.markdown import Markdown

        stdout_console().print(Markdown(out))
        return
    typer.echo(out, nl=False)
