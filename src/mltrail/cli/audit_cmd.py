"""``mltrail audit``: the tamper-evident audit trail (docs/provenance.md).

``init`` creates the Ed25519 signing key (outside any store) and signs a first checkpoint;
``checkpoint`` signs one now; ``verify`` checks the whole trail against the live database, the
signed checkpoints (the store's, the off-box ones, a given file) and a public key, and prints
``ok`` or the first bad sequence number and why (exit 1); ``log`` lists entries; ``prove RUN``
prints the inclusion proofs of a run's entries against the latest checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path  # noqa: TC003 (Typer reads the annotations at runtime)
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mltrail.cli._common import JsonOption, StoreOption, cli_errors, fail, fmt_time, print_json

if TYPE_CHECKING:
    from mltrail.store.sql.store import SqlTrackingStore

__all__ = ["app"]

app = typer.Typer(help="The tamper-evident audit trail: keys, checkpoints, verify, proofs.")

KeyOption = Annotated[
    Path | None,
    typer.Option(
        "--key",
        metavar="PATH",
        help="The private key (default: $MLTRAIL_AUDIT_KEY, else ~/.config/mltrail/audit/).",
        show_default=False,
    ),
]


def _open(store: str | None) -> SqlTrackingStore:
    from mltrail.audit.base import AuditLog
    from mltrail.store.registry import open_store

    opened = open_store(store, shared=False)
    if not isinstance(opened, AuditLog):
        fail(
            "the audit trail lives in the database: give a folder, sqlite:/// or "
            "postgresql:// store (a server's trail is verified where its database is)"
        )
    from mltrail.store.sql.store import SqlTrackingStore

    assert isinstance(opened, SqlTrackingStore)
    return opened


@app.command("init")
def init(
    key: KeyOption = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing key (old checkpoints stay).")
    ] = False,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create the signing key, record what the store already holds, sign a checkpoint."""
    from mltrail.audit import keys

    with cli_errors():
        path = key.expanduser() if key is not None else keys.default_key_path()
        if path.exists() and not force:
            created = False
            pub_path = keys.public_key_path(path)
        else:
            pub_path = keys.generate_key(path, overwrite=force)
            created = True
        key_id = keys.public_key_id(keys.load_private_key(path).public_key())
        opened = _open(store)
        try:
            baseline = opened.audit_log().audit_baseline()
            cp = opened.audit_log().audit_checkpoint("init", key_path=path)
        finally:
            opened.close()
    out: dict[str, Any] = {
        "key": str(path),
        "public_key": str(pub_path),
        "key_id": key_id,
        "created": created,
        "baseline_seq": baseline or None,
        "checkpoint": cp.to_dict() if cp else None,
    }
    if as_json:
        print_json(out)
        return
    typer.echo(f"{'created' if created else 'using'} the signing key {path} (keep it private)")
    typer.echo(f"public key: {pub_path} (give this to auditors)")
    typer.echo(f"key id: {key_id}")
    if baseline:
        typer.echo(f"recorded what the store already held as entry {baseline} (audit.baseline)")
    if cp is not None:
        typer.echo(f"checkpoint: {cp.tree_size} entries, root {cp.root}")


@app.command("checkpoint")
def checkpoint(
    key: KeyOption = None,
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            metavar="DIR|URL",
            help="Where the off-box copy goes (default: $MLTRAIL_AUDIT_CHECKPOINTS).",
            show_default=False,
        ),
    ] = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Sign a checkpoint of the whole log now (and write it off-box)."""
    from mltrail.audit import keys

    with cli_errors():
        path = key.expanduser() if key is not None else keys.default_key_path()
        if not path.exists():
            fail(f"no audit key at {path}: create one with `mltrail audit init`")
        opened = _open(store)
        try:
            cp = opened.audit_log().audit_checkpoint("manual", key_path=path, offbox=to)
        finally:
            opened.close()
    if cp is None:
        fail("the audit log is empty: nothing to checkpoint")
    if as_json:
        print_json(cp.to_dict())
        return
    typer.echo(f"checkpoint: {cp.tree_size} entries, root {cp.root}, key {cp.key_id[:16]}")


@app.command("verify")
def verify(
    checkpoint: Annotated[
        list[str] | None,
        typer.Option(
            "--checkpoint",
            metavar="FILE|DIR|URL",
            help="Signed checkpoints kept elsewhere (repeatable; $MLTRAIL_AUDIT_CHECKPOINTS "
            "is always read).",
            show_default=False,
        ),
    ] = None,
    public_key: Annotated[
        Path | None,
        typer.Option(
            "--public-key",
            metavar="KEY",
            help="The public key checkpoints must be signed with (default: the local key's).",
            show_default=False,
        ),
    ] = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check the whole trail; print ok, or the first bad sequence number and why (exit 1)."""
    from mltrail.audit import keys
    from mltrail.audit.checkpoints import read_checkpoints
    from mltrail.audit.verify import verify_log
    from mltrail.settings import settings

    with cli_errors():
        pub = None
        if public_key is not None:
            pub = keys.load_public_key(public_key)
        else:
            default_pub = keys.public_key_path(keys.default_key_path())
            if default_pub.exists():
                pub = keys.load_public_key(default_pub)
        extra = []
        sources = list(checkpoint or [])
        offbox = settings().audit_checkpoints
        if offbox and offbox not in sources:
            sources.append(offbox)
        for source in sources:
            if "://" in source or Path(source).expanduser().exists():
                extra.extend(read_checkpoints(source))
            elif source in (checkpoint or []):
                fail(f"--checkpoint {source}: no such file or directory")
        opened = _open(store)
        try:
            report = verify_log(opened, extra_checkpoints=extra, public_key=pub)
        finally:
            opened.close()
    if as_json:
        print_json(report.to_dict())
    else:
        for note in report.notes:
            typer.echo(f"note: {note}", err=True)
        first = report.first
        if first is None:
            typer.echo(
                f"ok: {report.entries} entries, {report.checkpoints} checkpoints "
                f"({report.signatures_checked} signatures checked), {report.rows} rows, "
                f"{report.series} metric series, {report.blobs} blobs"
            )
        else:
            where = f"entry {first.seq}" if first.seq is not None else "a row with no entry"
            typer.echo(f"FAILED at {where}: {first.reason}")
            more = len(report.problems) - 1
            if more:
                typer.echo(f"({more} more problem{'s' if more > 1 else ''}: --json lists them)")
    if not report.ok:
        raise typer.Exit(1)


@app.command("log")
def log(
    subject: Annotated[
        str | None,
        typer.Option(
            "--subject",
            metavar="RUN|MODEL",
            help="Only entries about this run id, model (name or project/name), token...",
            show_default=False,
        ),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many (newest).")] = 100,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """List audit entries, oldest first (the newest ``--limit``)."""
    from collections import deque

    with cli_errors():
        opened = _open(store)
        try:
            log_ = opened.audit_log()
            subjects: list[str | None] = [None]
            if subject is not None:
                found = log_.audit_subjects(subject)
                if not found:
                    try:
                        found = log_.audit_subjects(opened.resolve_run_id(subject))
                    except LookupError:
                        found = []
                if not found:
                    fail(f"--subject {subject}: no audit entry is about it")
                subjects = list(found)
            picked: deque[Any] = deque(maxlen=limit)
            merged = sorted(
                (e for s in subjects for e in log_.audit_entries(subject=s)),
                key=lambda e: e.seq,
            )
            picked.extend(merged)
        finally:
            opened.close()
    if as_json:
        print_json([e.to_dict() for e in picked])
        return
    if not picked:
        typer.echo("the audit log is empty")
        return
    for e in picked:
        typer.echo(
            f"{e.seq:>8}  {fmt_time(e.ts_ms)}  {e.actor}  {e.action}  {e.subject}  "
            f"{e.payload_digest[:16]}"
        )


@app.command("prove")
def prove(
    run: Annotated[str, typer.Argument(metavar="RUN", help="A run id (or unique prefix).")],
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Print the inclusion proofs of a run's entries against the latest checkpoint."""
    from mltrail.audit.api import run_inclusion
    from mltrail.audit.merkle import leaf_hash, verify_inclusion

    with cli_errors():
        opened = _open(store)
        try:
            run_id = opened.resolve_run_id(run)
            got = run_inclusion(opened, run_id)
        finally:
            opened.close()
    if got is None:
        fail("no signed checkpoint yet: `mltrail audit init` or `mltrail audit checkpoint`")
    root = bytes.fromhex(got["checkpoint"]["root"])
    for item in got["entries"]:
        leaf = leaf_hash(bytes.fromhex(item["entry_hash"]))
        proof = [bytes.fromhex(p) for p in item["proof"]]
        if not verify_inclusion(leaf, item["leaf_index"], got["tree_size"], proof, root):
            fail(f"entry {item['seq']}: its proof does not reach the checkpoint's root")
    if as_json:
        print_json(got)
        return
    cp = got["checkpoint"]
    typer.echo(
        f"checkpoint: {cp['tree_size']} entries, root {cp['root']}, key {cp['key_id'][:16]}, "
        f"signed {fmt_time(cp['timestamp_ms'])}"
    )
    for item in got["entries"]:
        e = item["entry"]
        typer.echo(f"entry {item['seq']} {e['action']}: hash {item['entry_hash']}")
        typer.echo(f"  proof ({len(item['proof'])}): {json.dumps(item['proof'])}")
    if got["uncovered"]:
        typer.echo(f"{got['uncovered']} later entries are not covered by this checkpoint yet")
