"""The technical documentation pack of a model version (EU AI Act, Annex IV): one folder or
zip an auditor can read and check offline.

Files::

    README.md                 what is here, the model version, how to verify it
    model_card.md / .html / .json   the card (empty sections the record can tell are filled
                              from the source run: model details, training data, results)
    provenance.intoto.json    the DSSE-signed in-toto statement (SLSA provenance)
    public_key.pem            the Ed25519 public key that signed it (check its id against
                              the one you were given out of band)
    evaluation.json           the source run's metrics (last, min, max, count; ``system/``
                              left out) and their digest
    data_inputs.json          tracked datasets and used artifacts, with digests
    audit_proof.json          the audit checkpoint and the run's inclusion proofs (when the
                              store keeps an audit trail with a signed checkpoint)
    SHA256SUMS                the SHA-256 of every file above
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltrail.attest.api import attest
from mltrail.attest.provenance import audit_inclusion, metrics_digest
from mltrail.errors import AlreadyExistsError, InvalidArgumentError

if TYPE_CHECKING:
    import os

    from mltrail.registry.records import ModelVersion
    from mltrail.store.base import TrackingStore

__all__ = ["export_docs"]


def _json(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _finite(x: float) -> float | str:
    return x if math.isfinite(x) else str(x)


def export_docs(
    target: str,
    out: str | os.PathLike[str] | None = None,
    *,
    store: str | os.PathLike[str] | None = None,
    key: str | os.PathLike[str] | None = None,
    project: str | None = None,
) -> Path:
    """Write the pack of the model version ``target`` (``MODEL@ALIAS``, ``MODEL@VERSION``,
    ``models:/...``) to ``out``: a folder, or a zip when it ends in ``.zip`` (default
    ``./PROJECT-NAME-vN-docs``). Returns where it was written.

    Raises:
        InvalidArgumentError: the target is not a model version.
        AlreadyExistsError: ``out`` exists and is not an empty folder.
        NotFoundError: no such model, version or signing key.
    """
    from mltrail.audit import keys
    from mltrail.store.registry import open_store

    signed = attest(target, store=store, key=key, project=project)
    version = signed.target.model
    if version is None:
        raise InvalidArgumentError(f"export-docs: {target!r} is a run, not a model version")
    dest = (
        Path(out)
        if out is not None
        else Path(f"{version.project}-{version.name}-v{version.version}-docs")
    )
    _check_free(dest)
    from mltrail.store.registry import resolve_location

    tracking = open_store(resolve_location(store))
    files: dict[str, bytes] = {}
    pub = keys.load_private_key(Path(key) if key is not None else None).public_key()
    files["provenance.intoto.json"] = signed.to_json().encode()
    files["public_key.pem"] = keys.public_key_pem(pub)
    card_version, data = _card_version(tracking, version)
    from mltrail.registry.cards import render

    files["model_card.md"] = render(card_version, "md").encode()
    files["model_card.html"] = render(card_version, "html").encode()
    files["model_card.json"] = render(card_version, "json").encode()
    files["data_inputs.json"] = _json(data)
    if version.run_id is not None:
        files["evaluation.json"] = _json(_evaluation(tracking, version.run_id))
        proof = audit_inclusion(tracking, version.run_id)
        if proof is not None:
            files["audit_proof.json"] = _json(proof)
    files["README.md"] = _readme(version, files, keys.public_key_id(pub)).encode()
    sums = "".join(f"{hashlib.sha256(b).hexdigest()}  {n}\n" for n, b in sorted(files.items()))
    files["SHA256SUMS"] = sums.encode()
    _write(dest, files)
    return dest


def _check_free(dest: Path) -> None:
    if dest.suffix.lower() == ".zip":
        if dest.exists():
            raise AlreadyExistsError(f"{dest} exists already")
    elif dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise AlreadyExistsError(f"{dest} exists and is not an empty folder")


def _write(dest: Path, files: dict[str, bytes]) -> None:
    if dest.suffix.lower() == ".zip":
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".part")
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
            for name, data in sorted(files.items()):
                z.writestr(name, data)
        tmp.replace(dest)
        return
    dest.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (dest / name).write_bytes(data)


def _card_version(
    tracking: TrackingStore, version: ModelVersion
) -> tuple[ModelVersion, list[dict[str, Any]]]:
    """The version with its card filled from the run (not stored), and the run's data inputs."""
    from mltrail.errors import NotFoundError
    from mltrail.registry.cards import autofill
    from mltrail.store.optional import HasArtifacts

    run = None
    data: list[dict[str, Any]] = []
    if version.run_id is not None:
        try:
            run = tracking.get_run(version.run_id)
        except NotFoundError:
            run = None
    if run is not None:
        state = tracking.get_state(run.run_id).get("data")
        for p in state.get("pointers", []) if isinstance(state, dict) else []:
            if isinstance(p, dict) and p.get("digest"):
                data.append({"path": p.get("path"), "digest": p["digest"], "size": p.get("size")})
        if isinstance(tracking, HasArtifacts):
            for a in tracking.artifacts().run_inputs(run.run_id):
                data.append(
                    {"name": a.qualified, "digest": a.digest, "size": a.size, "type": a.type}
                )
    card = autofill(version.card, version, run, data)
    return dataclasses.replace(version, card=card), data


def _evaluation(tracking: TrackingStore, run_id: str) -> dict[str, Any]:
    run = tracking.get_run(run_id)
    digest, summary = metrics_digest(tracking, run_id)
    return {
        "run_id": run_id,
        "status": str(run.status),
        "metrics": {
            k: {
                "last": _finite(m.last),
                "step": m.last_step,
                "min": _finite(m.min),
                "max": _finite(m.max),
                "count": m.count,
            }
            for k, m in sorted(run.metrics.items())
            if not k.startswith("system/")
        },
        "metrics_sha256": digest,
        "points": summary["points"],
    }


def _readme(version: ModelVersion, files: dict[str, bytes], key_id: str) -> str:
    lines = [
        f"# Technical documentation: {version.project}/{version.name} v{version.version}",
        "",
        f"- Model reference: `{version.ref}`; artifact `{version.artifact}`",
        f"- Digest of its files: `{version.digest}`",
        f"- Source run: `{version.run_id or 'none recorded'}`",
        f"- Aliases: {', '.join(a for a in version.aliases if a != 'latest') or 'none'}",
        f"- Signing key id (SHA-256 of the raw Ed25519 public key): `{key_id}`",
        "",
        "## Files",
        "",
    ]
    lines += [f"- `{name}`" for name in sorted(files)]
    lines += [
        "- `SHA256SUMS`: `sha256sum -c SHA256SUMS` checks every file of this pack",
        "",
        "## Verify offline",
        "",
        "```",
        "mltrail attest verify provenance.intoto.json --public-key public_key.pem \\",
        "    --artifact MODEL_FILES   # the model's files, e.g. from `mltrail artifacts get`",
        "```",
        "",
        "Compare the key id above with the one the model's owner gave you out of band: the",
        "public key in this pack proves only that the pack is consistent with itself.",
    ]
    if "audit_proof.json" not in files:
        lines += [
            "",
            "No audit proof: the store keeps no audit trail with a signed checkpoint yet.",
        ]
    return "\n".join(lines) + "\n"
