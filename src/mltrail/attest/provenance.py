"""The in-toto Statement (v1) with a SLSA Provenance (v1) predicate of a model or a run.

- ``subject``: the files, by SHA-256.
- ``buildDefinition.externalParameters``: the params, the entry point, the command, the
  working directory and the code (repository, commit, branch, whether uncommitted changes
  were recorded).
- ``buildDefinition.internalParameters``: the mltrail version, the captured environment
  (Python, packages, container, numerics variables) and hardware.
- ``buildDefinition.resolvedDependencies``: tracked datasets and used artifacts (base
  models among them, ``annotations.type``) by digest, code repositories (``gitCommit``), lock
  files and the frozen requirements (``sha256``).
- ``runDetails.builder.id``: the store (or server) URI, without password;
  ``metadata.invocationId``: the run id; ``byproducts``: the digest of the run's metrics
  and, when the store keeps an audit trail with a signed checkpoint, the checkpoint and the
  inclusion proofs of the run's entries.

mltrail digests (``blake3:<hex>``, ``.tree`` for folders) become DigestSets
``{"blake3": hex}`` and ``{"blake3Tree": hex}``; ``sha256:<hex>`` becomes ``{"sha256": hex}``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import math
from typing import TYPE_CHECKING, Any

from mltrail.errors import NotFoundError

if TYPE_CHECKING:
    from mltrail.attest.target import Target
    from mltrail.store.base import TrackingStore

__all__ = [
    "BUILD_TYPE",
    "PREDICATE_TYPE",
    "STATEMENT_TYPE",
    "build_statement",
    "canonical_json",
    "digest_set",
    "metrics_digest",
]

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
#: What an mltrail "build" is: a tracked training run (its parameters documented above).
BUILD_TYPE = "https://pypi.org/project/mltrail/#attestation-training-run-v1"


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8; what is signed and digested."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def digest_set(digest: str | None) -> dict[str, str]:
    """An in-toto DigestSet from an mltrail digest (empty when there is none)."""
    if not digest or ":" not in digest:
        return {}
    algo, _, hexpart = digest.partition(":")
    if hexpart.endswith(".tree"):
        return {f"{algo}Tree": hexpart[: -len(".tree")]}
    return {algo: hexpart}


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    t = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _finite(x: float) -> float | str:
    return x if math.isfinite(x) else str(x)


def metrics_digest(store: TrackingStore, run_id: str) -> tuple[str, dict[str, Any]]:
    """SHA-256 over every metric series of the run (``system/`` ones left out), and a
    summary (keys, points, the last value of each key).

    The digest hashes, for each key in sorted order: the key (UTF-8), a NUL byte, the steps
    as little-endian int64 and the values as little-endian float64, as the store returns
    the series; anyone with read access to the store recomputes it.
    """
    import numpy as np

    record = store.get_run(run_id)
    h = hashlib.sha256()
    points = 0
    last: dict[str, float | str] = {}
    for key in sorted(k for k in record.metrics if not k.startswith("system/")):
        series = store.metric_history(run_id, key)
        h.update(key.encode() + b"\x00")
        h.update(np.ascontiguousarray(series.steps, dtype="<i8").tobytes())
        h.update(np.ascontiguousarray(series.values, dtype="<f8").tobytes())
        points += len(series)
        last[key] = _finite(record.metrics[key].last)
    return h.hexdigest(), {"keys": len(last), "points": points, "last": last}


def build_statement(
    store: TrackingStore, target: Target, subjects: dict[str, str], builder_id: str
) -> dict[str, Any]:
    """The statement (a JSON-ready dict).

    Raises:
        NotFoundError: the target's source run is not in the store.
    """
    import mltrail

    subject = [{"name": n, "digest": {"sha256": d}} for n, d in sorted(subjects.items())]
    if target.run_id is None:  # a model registered from a path, without a run
        return {
            "_type": STATEMENT_TYPE,
            "subject": subject,
            "predicateType": PREDICATE_TYPE,
            "predicate": {
                "buildDefinition": {
                    "buildType": BUILD_TYPE,
                    "externalParameters": {"model": _model_params(target)},
                    "internalParameters": {"mltrailVersion": mltrail.__version__},
                },
                "runDetails": {"builder": {"id": builder_id}, "metadata": {}},
            },
        }
    try:
        record = store.get_run(target.run_id)
    except NotFoundError:
        raise NotFoundError(
            f"{target.label}: its source run {target.run_id} is not in the store"
        ) from None
    state = store.get_state(record.run_id)
    external = _external(record, state)
    if target.model is not None:
        external["model"] = _model_params(target)
    return {
        "_type": STATEMENT_TYPE,
        "subject": subject,
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": external,
                "internalParameters": {
                    "mltrailVersion": mltrail.__version__,
                    "environment": state.get("environment"),
                    "hardware": state.get("hardware"),
                },
                "resolvedDependencies": _dependencies(store, record.run_id, state),
            },
            "runDetails": {
                "builder": {"id": builder_id, "version": {"mltrail": mltrail.__version__}},
                "metadata": {
                    "invocationId": record.run_id,
                    "startedOn": _iso(record.created_ms),
                    **({"finishedOn": _iso(record.end_ms)} if record.end_ms else {}),
                },
                "byproducts": _byproducts(store, record.run_id),
            },
        },
    }


def _model_params(target: Target) -> dict[str, Any]:
    v = target.model
    assert v is not None
    return {
        "ref": v.ref,
        "artifact": v.artifact,
        "digest": v.digest,
        "aliases": [a for a in v.aliases if a != "latest"],
        "signature": v.signature or None,
    }


def _external(record: Any, state: dict[str, Any]) -> dict[str, Any]:
    from mltrail.lineage_export import naming

    inv = _dict(state.get("invocation"))
    code = _dict(state.get("code"))
    root = code.get("entry_repo") if isinstance(code.get("entry_repo"), str) else None
    repos = [r for r in code.get("repos") or () if isinstance(r, dict)]
    return {
        "project": record.project,
        "runName": record.name,
        "params": dict(record.params),
        "entryPoint": naming.entry_point(inv, root) if inv else None,
        "command": inv.get("argv") if inv else record.command,
        "workingDirectory": inv.get("cwd") if inv else None,
        "code": [
            {
                "repository": _remote(r) or r.get("root"),
                "commit": r.get("sha"),
                "branch": r.get("branch"),
                "uncommittedChanges": bool(r.get("dirty")),
            }
            for r in repos
        ],
    }


def _remote(repo: dict[str, Any]) -> str | None:
    remotes = _dict(repo.get("remotes"))
    found = remotes.get("origin") or next(iter(remotes.values()), None)
    return str(found) if found else None


def _dependencies(store: TrackingStore, run_id: str, state: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    data = _dict(state.get("data"))
    repo = data.get("repo") if isinstance(data.get("repo"), str) else None
    for p in data.get("pointers") or ():
        if isinstance(p, dict) and isinstance(p.get("path"), str):
            out.append(
                {
                    "name": p["path"],
                    "uri": f"file://{repo}/{p['path']}" if repo else p["path"],
                    "digest": digest_set(p.get("digest")),
                    "annotations": {
                        "kind": "dataset",
                        "tool": p.get("source"),
                        "size": p.get("size"),
                        "files": p.get("files"),
                    },
                }
            )
    from mltrail.store.optional import HasArtifacts

    if isinstance(store, HasArtifacts):
        for v in store.artifacts().run_inputs(run_id):
            out.append(
                {
                    "name": f"{v.project}/{v.name}:v{v.version}",
                    "uri": v.uri or f"mltrail:artifact:{v.project}/{v.name}:v{v.version}",
                    "digest": digest_set(v.digest),
                    "annotations": {"kind": "artifact", "type": v.type, "size": v.size},
                }
            )
    code = _dict(state.get("code"))
    for r in code.get("repos") or ():
        if isinstance(r, dict) and isinstance(r.get("sha"), str):
            remote = _remote(r)
            out.append(
                {
                    "name": str(r.get("root") or remote),
                    "uri": f"git+{remote}" if remote else f"git+file://{r.get('root')}",
                    "digest": {"gitCommit": r["sha"]},
                    "annotations": {
                        "kind": "code",
                        "branch": r.get("branch"),
                        "dirty": bool(r.get("dirty")),
                    },
                }
            )
    env = _dict(state.get("environment"))
    for lock in env.get("lock_files") or ():
        if isinstance(lock, dict) and lock.get("digest"):
            out.append(
                {
                    "name": str(lock.get("path")),
                    "digest": digest_set(lock["digest"]),
                    "annotations": {"kind": "lockfile", "size": lock.get("size")},
                }
            )
    if isinstance(env.get("requirements"), str):
        out.append(
            {
                "name": "requirements (frozen from the environment)",
                "digest": digest_set(env["requirements"]),
                "annotations": {"kind": "lockfile"},
            }
        )
    return out


def _byproducts(store: TrackingStore, run_id: str) -> list[dict[str, Any]]:
    digest, summary = metrics_digest(store, run_id)
    out: list[dict[str, Any]] = [
        {
            "name": "metrics",
            "digest": {"sha256": digest},
            "annotations": {
                "method": "sha256 over key NUL steps<i8 values<f8, keys sorted",
                **summary,
            },
        }
    ]
    proof = audit_inclusion(store, run_id)
    if proof is not None:
        content = canonical_json(proof)
        out.append(
            {
                "name": "audit-inclusion",
                "mediaType": "application/json",
                "digest": {"sha256": hashlib.sha256(content).hexdigest()},
                "content": base64.b64encode(content).decode(),
            }
        )
    return out


def audit_inclusion(store: TrackingStore, run_id: str) -> dict[str, Any] | None:
    """The audit trail's latest signed checkpoint and the run's inclusion proofs, or None
    (no trail, or no checkpoint yet)."""
    from mltrail.audit.api import run_inclusion

    got = run_inclusion(store, run_id)
    return got if isinstance(got, dict) else None
