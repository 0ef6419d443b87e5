"""``mltrail db upgrade``: apply the schema migrations of a database explicitly.

A server never migrates its database by itself (it refuses to start on an older schema and
names this command); an embedded SQLite store is still upgraded on open, like the SDK always
did. Light to import: the store loads inside the command.
"""

from __future__ import annotations

import typer

from mltrail.cli._common import JsonOption, StoreOption, cli_errors, fail, print_json

__all__ = ["app", "upgrade"]

app = typer.Typer(help="Database schema maintenance (migrations).", no_args_is_help=True)


@app.command("upgrade")
def upgrade(store: StoreOption = None, as_json: JsonOption = False) -> None:
    """Apply every pending migration to the store's database (stop servers first)."""
    from mltrail.store.registry import resolve_location

    with cli_errors():
        location = resolve_location(store)
        if location.scheme not in ("sqlite", "postgresql"):
            fail(
                f"db upgrade needs a database (a folder, sqlite:/// or postgresql://), not "
                f"{location.display}: a server's database is upgraded where the server runs"
            )
        from mltrail.store.sql.maintenance import upgrade_database

        done = upgrade_database(location.uri)
    if as_json:
        print_json({"store": done.store, "before": done.before, "after": done.after})
        return
    if not done.changed:
        typer.echo(f"{done.store}: already at schema revision {done.after}; nothing to do")
    elif done.before is None:
        typer.echo(f"{done.store}: created the schema at revision {done.after}")
    else:
        typer.echo(f"{done.store}: upgraded the schema from revision {done.before} to {done.after}")
