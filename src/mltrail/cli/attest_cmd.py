"""``mltrail attest``: signed provenance of models and runs, verified offline.

- ``mltrail attest MODEL@VERSION|MODEL@ALIAS|RUN [-o FILE] [--key KEY]``: a DSSE-signed
  in-toto statement with SLSA provenance (stdout without ``-o``).
- ``mltrail attest verify FILE --public-key KEY [--artifact PATH]``: the signature, and
  that the files at PATH are exactly the subject.
- ``mltrail models sign MODEL@VERSION --key EC_KEY [-o SIG] [--new-key]``: the model's files
  signed in the OpenSSF model-signing format.
- ``mltrail models export-docs MODEL@ALIAS|VERSION [-o DIR|ZIP]``: the documentation pack.
"""

from __future__ import annotations

from pathlib import Path  # noqa: TC003 (Typer reads the annotations at runtime)
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from mltrail.cli._common import JsonOption, StoreOption, cli_errors, print_json, stdout_console

__all__ = ["app", "export_docs", "sign_model"]


class _DefaultToCreate(TyperGroup):
    """``mltrail attest TARGET`` means ``mltrail attest create TARGET``."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["create", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=_DefaultToCreate,
    help=(
        "Signed provenance: `mltrail attest MODEL@VERSION|RUN [-o FILE]` and "
        "`mltrail attest verify FILE --public-key KEY [--artifact PATH]`."
    ),
    no_args_is_help=True,
)

TargetArg = Annotated[
    str,
    typer.Argument(
        metavar="MODEL@VERSION|MODEL@ALIAS|RUN",
        help="A model version ([PROJECT/]NAME@N, NAME@ALIAS, models:/...) or a run id.",
    ),
]
KeyOption = Annotated[
    Path | None,
    typer.Option(
        "--key",
        help="The Ed25519 private key (PEM); default $MLTRAIL_AUDIT_KEY (`mltrail audit init`).",
    ),
]
ProjectOption = Annotated[
    str | None, typer.Option("--project", "-p", help="The project of the model.")
]


@app.command("create")
def create(
    target: TargetArg,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the envelope here (default stdout).")
    ] = None,
    key: KeyOption = None,
    project: ProjectOption = None,
    store: StoreOption = None,
) -> None:
    """Sign the provenance of a model version or a run (DSSE, in-toto, SLSA v1)."""
    from mltrail.attest.api import attest

    with cli_errors():
        got = attest(target, store=store, key=key, project=project)
    text = got.to_json()
    if out is None:
        typer.echo(text, nl=False)
        return
    out.write_text(text)
    n = len(got.statement["subject"])
    stdout_console().print(f"{got.target.label}: {n} file(s) attested, signed into {out}")


@app.command("verify")
def verify(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="The envelope (JSON).")],
    public_key: Annotated[
        Path, typer.Option("--public-key", help="The signer's Ed25519 public key (PEM).")
    ],
    artifact: Annotated[
        Path | None,
        typer.Option("--artifact", help="The files to check against the subject (file or folder)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Check the signature and, with --artifact, the files; offline. Exit 1 on any mismatch."""
    from mltrail.attest.api import verify as verify_envelope

    with cli_errors():
        got = verify_envelope(file, public_key, artifact)
    meta = got.statement["predicate"].get("runDetails", {}).get("metadata", {})
    if as_json:
        print_json(
            {
                "ok": True,
                "key_id": got.key_id,
                "subjects": got.subjects,
                "files_checked": got.files_checked,
                "invocation_id": meta.get("invocationId"),
            }
        )
        return
    checked = f", {len(got.files_checked)} file(s) match" if artifact is not None else ""
    stdout_console().print(
        f"ok: signed by key {got.key_id[:16]}, {len(got.subjects)} subject(s){checked}; "
        f"run {meta.get('invocationId') or 'not recorded'}"
    )


def sign_model(
    target: TargetArg,
    key: Annotated[Path, typer.Option("--key", help="A NIST P-256/384/521 private key (PEM).")],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="The signature file (default NAME-vN.sig)."),
    ] = None,
    new_key: Annotated[
        bool, typer.Option("--new-key", help="Create a P-256 key pair at --key first.")
    ] = False,
    to: Annotated[
        Path | None,
        typer.Option("--to", help="Check the model's files out here (default: the cache)."),
    ] = None,
    project: ProjectOption = None,
    store: StoreOption = None,
) -> None:
    """Sign a model version's files in the OpenSSF model-signing format; check them with
    `model_signing verify key FILES --signature SIG --public_key KEY.pub`."""
    from mltrail.attest.openssf import generate_ec_key, model_files, sign_files
    from mltrail.attest.target import resolve_target
    from mltrail.errors import InvalidArgumentError
    from mltrail.store.registry import open_store, resolve_location

    with cli_errors():
        if new_key:
            generate_ec_key(key)
        location = resolve_location(store)
        found = resolve_target(open_store(location), target, project)
        if found.model is None:
            raise InvalidArgumentError(f"models sign: {target!r} is a run, not a model version")
        files = model_files(found, location, to)
        sig = out or Path(f"{found.model.name}-v{found.model.version}.sig")
        sign_files(files, sig, key)
    stdout_console().print(f"{found.label}: {files} signed into {sig}")


def export_docs(
    target: TargetArg,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="A folder, or a .zip (default ./PROJECT-NAME-vN-docs)."),
    ] = None,
    key: KeyOption = None,
    project: ProjectOption = None,
    store: StoreOption = None,
) -> None:
    """The technical documentation pack of a model version: card, signed provenance,
    evaluation, data inputs, audit proof."""
    from mltrail.attest.docs_pack import export_docs as write_pack

    with cli_errors():
        dest = write_pack(target, out, store=store, key=key, project=project)
    stdout_console().print(f"documentation pack written to {dest}")
