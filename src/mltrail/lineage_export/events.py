"""OpenLineage run events from :class:`~mltrail.lineage_export.facts.RunFacts`, built with
``openlineage-python``'s own classes (imported here, inside the functions: the ``lineage``
extra).

Facets used: ``parent`` (the reproduced run, or the sweep of a trial), ``processing_engine``
(mltrail and its version), ``nominalTime``, ``errorMessage`` (a failed run's error),
``jobType`` (``BATCH``/``MLTRAIL``/``TRAINING``), ``sourceCodeLocation`` (the entry
repository's commit), ``datasetVersion`` (the digest, or ``vN`` for artifacts), ``schema``,
and mltrail's own ``mltrail`` run and dataset facets (run id, status, params, tags; digest,
size, file count, origin).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from mltrail.entities import RunStatus
from mltrail.errors import InvalidArgumentError, MissingExtraError
from mltrail.lineage_export import naming
from mltrail.lineage_export.facts import REPRODUCTION_TAG, SWEEP_TAG

if TYPE_CHECKING:
    from mltrail.lineage_export.facts import DatasetFacts, RunFacts

__all__ = ["EVENT_TYPES", "PRODUCER", "build_event", "event_type_for", "to_dict"]

#: The ``producer`` of every event and facet mltrail writes.
PRODUCER = "https://pypi.org/project/mltrail/"
#: Where mltrail's own facets are described (``_schemaURL``).
FACET_SCHEMA = "https://pypi.org/project/mltrail/#openlineage-facets"
EVENT_TYPES = ("START", "COMPLETE", "FAIL", "ABORT", "OTHER")
_MAX_TEXT = 4000
_TERMINAL = {
    RunStatus.FINISHED: "COMPLETE",
    RunStatus.FAILED: "FAIL",
    RunStatus.KILLED: "ABORT",
    RunStatus.CRASHED: "ABORT",
    RunStatus.PRUNED: "ABORT",
}


def event_type_for(status: RunStatus | None) -> str:
    """``START`` for a starting run, ``OTHER`` for one still running, else the terminal type
    (finished: COMPLETE; failed: FAIL; killed, crashed, pruned: ABORT)."""
    if status is None:
        return "START"
    return _TERMINAL.get(status, "OTHER")


def _client() -> Any:
    try:
        from openlineage.client import event_v2
        from openlineage.client.generated import base
    except ImportError:
        raise MissingExtraError(
            "OpenLineage events need openlineage-python: pip install 'mltrail[lineage]'"
        ) from None
    return event_v2, base


def _iso(ms: int) -> str:
    t = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build_event(facts: RunFacts, event_type: str | None = None) -> Any:
    """The ``openlineage.client.event_v2.RunEvent`` for ``facts`` (``event_type`` default:
    from the status, :func:`event_type_for`).

    Raises:
        InvalidArgumentError: an unknown event type.
        MissingExtraError: openlineage-python is not installed.
    """
    event_v2, _ = _client()
    kind = event_type or event_type_for(facts.status)
    if kind not in EVENT_TYPES:
        raise InvalidArgumentError(f"event type {kind!r}: one of {', '.join(EVENT_TYPES)}")
    started = kind == "START"
    if started:
        when = facts.started_ms if facts.started_ms is not None else facts.created_ms
    else:
        when = facts.end_ms if facts.end_ms is not None else facts.created_ms
    return event_v2.RunEvent(
        eventType=event_v2.RunState(kind),
        eventTime=_iso(when),
        run=event_v2.Run(runId=naming.run_uuid(facts.run_id), facets=_run_facets(facts)),
        job=event_v2.Job(
            namespace=facts.job_namespace,
            name=naming.job_name(facts.project, facts.entry),
            facets=_job_facets(facts),
        ),
        inputs=[
            event_v2.InputDataset(d.namespace, d.name, facets=_dataset_facets(d))
            for d in facts.inputs
        ],
        outputs=[
            event_v2.OutputDataset(d.namespace, d.name, facets=_dataset_facets(d))
            for d in facts.outputs
        ],
        producer=PRODUCER,
    )


def to_dict(event: Any) -> dict[str, Any]:
    """The event as the JSON object the transports send."""
    from openlineage.client.serde import Serde

    out: dict[str, Any] = Serde.to_dict(event)
    return out


# -- facets -----------------------------------------------------------------------------------


def _mltrail_facets() -> tuple[type, type]:
    """mltrail's own run and dataset facets (attrs classes, made once)."""
    global _FACETS
    if _FACETS is None:
        import attr
        from openlineage.client.generated.base import DatasetFacet, RunFacet

        @attr.define
        class MltrailRunFacet(RunFacet):
            runId: str  # noqa: N815
            name: str
            project: str
            status: str
            user: str | None = attr.field(default=None)
            host: str | None = attr.field(default=None)
            params: dict[str, Any] | None = attr.field(default=None)
            tags: dict[str, str] | None = attr.field(default=None)

            @staticmethod
            def _get_schema() -> str:
                return f"{FACET_SCHEMA}/MltrailRunFacet"

        @attr.define
        class MltrailDatasetFacet(DatasetFacet):
            origin: str
            ref: str
            digest: str | None = attr.field(default=None)
            size: int | None = attr.field(default=None)
            files: int | None = attr.field(default=None)

            @staticmethod
            def _get_schema() -> str:
                return f"{FACET_SCHEMA}/MltrailDatasetFacet"

        _FACETS = (MltrailRunFacet, MltrailDatasetFacet)
    return _FACETS


_FACETS: tuple[type, type] | None = None


def _parent(facts: RunFacts) -> Any:
    from openlineage.client.generated import parent_run

    original = facts.tags.get(REPRODUCTION_TAG)
    if original:  # the same program re-run: the parent is the original run of this job
        return parent_run.ParentRunFacet(
            run=parent_run.Run(runId=naming.run_uuid(original)),
            job=parent_run.Job(
                namespace=facts.job_namespace, name=naming.job_name(facts.project, facts.entry)
            ),
            producer=PRODUCER,
        )
    sweep = facts.tags.get(SWEEP_TAG)
    if sweep:
        return parent_run.ParentRunFacet(
            run=parent_run.Run(runId=naming.sweep_uuid(sweep)),
            job=parent_run.Job(
                namespace=facts.job_namespace, name=f"{facts.project}/sweeps/{sweep}"
            ),
            producer=PRODUCER,
        )
    return None


def _run_facets(facts: RunFacts) -> dict[str, Any]:
    from openlineage.client.generated import (
        error_message_run,
        nominal_time_run,
        processing_engine_run,
    )

    import mltrail

    run_facet, _ = _mltrail_facets()
    facets: dict[str, Any] = {
        "processing_engine": processing_engine_run.ProcessingEngineRunFacet(
            version=mltrail.__version__, name="mltrail", producer=PRODUCER
        ),
        "nominalTime": nominal_time_run.NominalTimeRunFacet(
            nominalStartTime=_iso(facts.created_ms),
            nominalEndTime=_iso(facts.end_ms) if facts.end_ms is not None else None,
            producer=PRODUCER,
        ),
        "mltrail": run_facet(
            runId=facts.run_id,
            name=facts.name,
            project=facts.project,
            status=str(facts.status or RunStatus.RUNNING),
            user=facts.user or None,
            host=facts.host or None,
            params=dict(facts.params) or None,
            tags=dict(facts.tags) or None,
            producer=PRODUCER,
        ),
    }
    parent = _parent(facts)
    if parent is not None:
        facets["parent"] = parent
    if facts.error and facts.status is not RunStatus.FINISHED:
        message = " ".join(
            str(facts.error.get(k) or "") for k in ("type", "message") if facts.error.get(k)
        )
        facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
            message=message[:_MAX_TEXT] or "failed",
            programmingLanguage="python",
            stackTrace=str(facts.error.get("traceback") or "")[-_MAX_TEXT:] or None,
            producer=PRODUCER,
        )
    return facets


def _job_facets(facts: RunFacts) -> dict[str, Any]:
    from openlineage.client.generated import job_type_job, source_code_location_job

    facets: dict[str, Any] = {
        "jobType": job_type_job.JobTypeJobFacet(
            processingType="BATCH", integration="MLTRAIL", jobType="TRAINING", producer=PRODUCER
        )
    }
    repo = facts.repos[0] if facts.repos else None
    if repo and isinstance(repo.get("sha"), str):
        raw = repo.get("remotes")
        remotes: dict[str, Any] = raw if isinstance(raw, dict) else {}
        remote = remotes.get("origin") or next(iter(remotes.values()), None)
        url = str(remote or f"file://{repo.get('root') or ''}")
        facets["sourceCodeLocation"] = source_code_location_job.SourceCodeLocationJobFacet(
            type="git",
            url=url,
            repoUrl=str(remote) if remote else None,
            path=facts.entry if "/" in facts.entry or facts.entry.endswith(".py") else None,
            version=repo["sha"],
            branch=repo.get("branch") if isinstance(repo.get("branch"), str) else None,
            producer=PRODUCER,
        )
    return facets


def _dataset_facets(d: DatasetFacts) -> dict[str, Any]:
    from openlineage.client.generated import dataset_version_dataset, schema_dataset

    _, dataset_facet = _mltrail_facets()
    facets: dict[str, Any] = {
        "mltrail": dataset_facet(
            origin=d.origin,
            ref=d.ref,
            digest=d.digest,
            size=d.size,
            files=d.files,
            producer=PRODUCER,
        )
    }
    if d.version:
        facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(
            datasetVersion=d.version, producer=PRODUCER
        )
    if d.schema:
        facets["schema"] = schema_dataset.SchemaDatasetFacet(
            fields=[
                schema_dataset.SchemaDatasetFacetFields(
                    name=col, type=typ or None, ordinal_position=i + 1
                )
                for i, (col, typ) in enumerate(d.schema)
            ],
            producer=PRODUCER,
        )
    return facets
