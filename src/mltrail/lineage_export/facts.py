"""What an OpenLineage event says about a run, gathered from the store or from a live run.

:func:`from_store` reads a run as the store has it (the final event, an export of a past run);
:func:`at_start` is what a run knows when it starts (its store is written in the
background, so a START event cannot read it). Both give a :class:`RunFacts`, which
:mod:`mltrail.lineage_export.events` turns into an event.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltrail.lineage_export import naming

if TYPE_CHECKING:
    from mltrail.artifacts.records import ArtifactVersion
    from mltrail.entities import ParamValue, RunStatus
    from mltrail.store.base import TrackingStore

__all__ = ["DatasetFacts", "RunFacts", "at_start", "from_store", "logged_outputs", "table_schema"]

#: Tags that name a run's parent: the run it reproduces, the sweep it is a trial of.
REPRODUCTION_TAG = "reproduction-of"
SWEEP_TAG = "mltrail.sweep"
TRIAL_TAG = "mltrail.trial"
_TABLE_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq")
_MAX_FIELDS = 1000


@dataclass(frozen=True, slots=True)
class DatasetFacts:
    """One input or output dataset.

    Attributes:
        origin: ``data`` (a pointer file in the repository) or ``artifact``.
        ref: mltrail's name for it (``data/train.csv``, ``project/name:v3``).
        schema: ``(column, type)`` pairs when known (a table on disk, an artifact's
            ``schema`` metadata); type may be empty.
    """

    namespace: str
    name: str
    digest: str | None
    origin: str
    ref: str
    size: int | None = None
    files: int | None = None
    version: str | None = None
    schema: tuple[tuple[str, str], ...] | None = None


@dataclass(frozen=True, slots=True)
class RunFacts:
    """What an event says about one run (``status`` None: it is starting)."""

    run_id: str
    project: str
    name: str
    job_namespace: str
    entry: str
    created_ms: int
    status: RunStatus | None = None
    end_ms: int | None = None
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, ParamValue] = field(default_factory=dict)
    user: str = ""
    host: str = ""
    repos: tuple[dict[str, Any], ...] = ()
    inputs: tuple[DatasetFacts, ...] = ()
    outputs: tuple[DatasetFacts, ...] = ()
    error: dict[str, Any] | None = None
    #: when a START happened, if not at creation (a resumed run)
    started_ms: int | None = None


def at_start(
    *,
    run_id: str,
    project: str,
    name: str,
    created_ms: int,
    tags: dict[str, str],
    invocation: dict[str, Any] | None,
    job_namespace: str,
    user: str = "",
    host: str = "",
    started_ms: int | None = None,
) -> RunFacts:
    """A starting (or resuming, ``started_ms``) run's facts, from what it knows in memory
    (no store read)."""
    return RunFacts(
        run_id=run_id,
        project=project,
        name=name,
        job_namespace=job_namespace,
        entry=naming.entry_point(invocation),
        created_ms=created_ms,
        tags=dict(tags),
        user=user,
        host=host,
        started_ms=started_ms,
    )


def from_store(store: TrackingStore, run_id: str, job_namespace: str) -> RunFacts:
    """A run's facts as ``store`` has them.

    Raises:
        NotFoundError: no such run.
    """
    record = store.get_run(run_id)
    state = store.get_state(run_id)
    code = _dict(state.get("code"))
    repo_root = code.get("entry_repo") if isinstance(code.get("entry_repo"), str) else None
    inputs = list(_data_inputs(_dict(state.get("data"))))
    outputs: list[DatasetFacts] = []
    from mltrail.store.optional import HasArtifacts

    if isinstance(store, HasArtifacts):
        arts = store.artifacts()
        inputs += [_artifact(job_namespace, v) for v in arts.run_inputs(run_id)]
        outputs += [_artifact(job_namespace, v) for v in logged_outputs(store, run_id, state)]
    error = state.get("error")
    return RunFacts(
        run_id=record.run_id,
        project=record.project,
        name=record.name,
        job_namespace=job_namespace,
        entry=naming.entry_point(_dict(state.get("invocation")), repo_root)
        if state.get("invocation")
        else _entry_from_command(record.command),
        created_ms=record.created_ms,
        status=record.status,
        end_ms=record.end_ms,
        tags=dict(record.tags),
        params=dict(record.params),
        user=record.user,
        host=record.host,
        repos=tuple(r for r in code.get("repos") or () if isinstance(r, dict)),
        inputs=tuple(inputs),
        outputs=tuple(outputs),
        error=error if isinstance(error, dict) else None,
    )


def logged_outputs(
    store: TrackingStore, run_id: str, state: dict[str, Any] | None = None
) -> list[ArtifactVersion]:
    """The artifact versions a run produced or logged: a version belongs to the first run
    that logged its bytes, so a later run's logging of the same bytes is in its ``outputs``
    state. Oldest first, each once.

    Raises:
        NotFoundError: no such run.
    """
    from mltrail.errors import MltrailError
    from mltrail.store.optional import HasArtifacts

    if not isinstance(store, HasArtifacts):
        return []
    arts = store.artifacts()
    found = {(v.project, v.name, v.version): v for v in arts.run_outputs(run_id)}
    state = store.get_state(run_id) if state is None else state
    for item in _dict(state.get("outputs")).get("outputs") or ():
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str) or not isinstance(item.get("version"), int):
            continue
        qualified = name.removeprefix("artifact:")
        project, _, short = qualified.rpartition("/")
        if (project, short, item["version"]) in found:
            continue
        try:
            v = arts.resolve(f"{qualified}:v{item['version']}")
        except MltrailError:  # removed since: what the state says is all there is
            continue
        found[(v.project, v.name, v.version)] = v
    return sorted(found.values(), key=lambda v: (v.created_ms, v.project, v.name, v.version))


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _entry_from_command(command: str) -> str:
    """A run without an ``invocation`` state (capture off): its recorded command line."""
    return naming.entry_point({"argv": command.split(), "cwd": ""}) if command else "unknown"


def _data_inputs(data: dict[str, Any]) -> list[DatasetFacts]:
    """The pointer files (``*.mltrail``, DVC outs) of the entry point's repository."""
    repo = data.get("repo") if isinstance(data.get("repo"), str) else None
    out: list[DatasetFacts] = []
    for p in data.get("pointers") or ():
        if not isinstance(p, dict) or not isinstance(p.get("path"), str):
            continue
        full = os.path.join(repo, p["path"]) if repo else p["path"]
        namespace, name = naming.uri_dataset(full)
        size = p.get("size") if isinstance(p.get("size"), int) else None
        out.append(
            DatasetFacts(
                namespace=namespace,
                name=name,
                digest=p.get("digest") if isinstance(p.get("digest"), str) else None,
                origin="data",
                ref=p["path"],
                size=size,
                files=p.get("files") if isinstance(p.get("files"), int) else None,
                version=p.get("digest") if isinstance(p.get("digest"), str) else None,
                schema=table_schema(Path(full), size) if p.get("kind") != "tree" else None,
            )
        )
    return out


def _artifact(job_namespace: str, v: ArtifactVersion) -> DatasetFacts:
    namespace, name = naming.artifact_dataset(job_namespace, v.project, v.name, v.uri)
    return DatasetFacts(
        namespace=namespace,
        name=name,
        digest=v.digest,
        origin="artifact",
        ref=f"{v.project}/{v.name}:v{v.version}",
        size=v.size,
        files=v.file_count,
        version=f"v{v.version}",
        schema=_metadata_schema(v.metadata.get("schema")),
    )


def _metadata_schema(value: Any) -> tuple[tuple[str, str], ...] | None:
    """An artifact's ``schema`` metadata: ``{"col": "type"}`` or ``[{"name", "type"}]``."""
    if isinstance(value, dict):
        return tuple((str(k), str(t)) for k, t in list(value.items())[:_MAX_FIELDS])
    if isinstance(value, list):
        cols = [c for c in value if isinstance(c, dict) and isinstance(c.get("name"), str)]
        return tuple((c["name"], str(c.get("type") or "")) for c in cols[:_MAX_FIELDS]) or None
    return None


def table_schema(path: Path, size: int | None = None) -> tuple[tuple[str, str], ...] | None:
    """The columns of a CSV/TSV header or a Parquet footer at ``path``, when it is there
    with the recorded ``size`` (anything unreadable: None)."""
    if path.suffix.lower() not in _TABLE_SUFFIXES:
        return None
    try:
        if size is not None and path.stat().st_size != size:
            return None  # not the recorded bytes
        if path.suffix.lower() in (".parquet", ".pq"):
            return _parquet_schema(path)
        delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
        with path.open(newline="", encoding="utf-8", errors="replace") as f:
            header = next(csv.reader(f, delimiter=delimiter), None)
    except (OSError, csv.Error, UnicodeError):
        return None
    return tuple((h, "") for h in header[:_MAX_FIELDS]) if header else None


def _parquet_schema(path: Path) -> tuple[tuple[str, str], ...] | None:
    try:
        import pyarrow.parquet as pq
    except ImportError:  # the `tables` extra is not installed: no schema
        return None
    try:
        schema = pq.read_schema(path)
    except Exception:  # not a Parquet file after all
        return None
    return tuple((f.name, str(f.type)) for f in list(schema)[:_MAX_FIELDS])
