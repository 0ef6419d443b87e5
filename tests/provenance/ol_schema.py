"""The OpenLineage 2-0-2 RunEvent schema (and the facets mltrail sends), as JSON Schema.

openlineage-python ships no schema file (its classes are generated from it), so the
structure of the spec (``spec/OpenLineage.json`` and ``spec/facets/*.json`` of the
OpenLineage project) is written down here: the required members, their types and formats
(``uuid``, ``date-time``, ``uri``), the base facet (``_producer`` and ``_schemaURL``
required) that every facet extends, and each standard facet's own required fields.
Validation checks formats (a format checker with uuid, date-time and uri).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any
from urllib.parse import urlsplit

import jsonschema


def _facet(required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "allOf": [
            {"$ref": "#/$defs/BaseFacet"},
            {"type": "object", "properties": properties, "required": required},
        ]
    }


_S = {"type": "string"}
_SCHEMA_FIELD: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": _S,
        "type": _S,
        "description": _S,
        "ordinal_position": {"type": "integer", "minimum": 1},
        "fields": {"type": "array", "items": {"$ref": "#/$defs/SchemaField"}},
    },
    "required": ["name"],
}

RUN_EVENT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$defs": {
        "BaseFacet": {
            "type": "object",
            "properties": {
                "_producer": {"type": "string", "format": "uri"},
                "_schemaURL": {"type": "string", "format": "uri"},
            },
            "additionalProperties": True,
            "required": ["_producer", "_schemaURL"],
        },
        "RunEvent": {
            "type": "object",
            "properties": {
                "eventType": {
                    "type": "string",
                    "enum": ["START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"],
                },
                "eventTime": {"type": "string", "format": "date-time"},
                "run": {"$ref": "#/$defs/Run"},
                "job": {"$ref": "#/$defs/Job"},
                "inputs": {"type": "array", "items": {"$ref": "#/$defs/InputDataset"}},
                "outputs": {"type": "array", "items": {"$ref": "#/$defs/OutputDataset"}},
                "producer": {"type": "string", "format": "uri"},
                "schemaURL": {"type": "string", "format": "uri"},
            },
            "required": ["run", "job", "eventTime", "producer", "schemaURL"],
        },
        "Run": {
            "type": "object",
            "properties": {
                "runId": {"type": "string", "format": "uuid"},
                "facets": {
                    "type": "object",
                    "properties": {
                        "parent": {"$ref": "#/$defs/ParentRunFacet"},
                        "nominalTime": {"$ref": "#/$defs/NominalTimeRunFacet"},
                        "errorMessage": {"$ref": "#/$defs/ErrorMessageRunFacet"},
                        "processing_engine": {"$ref": "#/$defs/ProcessingEngineRunFacet"},
                    },
                    "additionalProperties": {"$ref": "#/$defs/BaseFacet"},
                },
            },
            "required": ["runId"],
        },
        "Job": {
            "type": "object",
            "properties": {
                "namespace": _S,
                "name": _S,
                "facets": {
                    "type": "object",
                    "properties": {
                        "jobType": {"$ref": "#/$defs/JobTypeJobFacet"},
                        "sourceCodeLocation": {"$ref": "#/$defs/SourceCodeLocationJobFacet"},
                    },
                    "additionalProperties": {"$ref": "#/$defs/BaseFacet"},
                },
            },
            "required": ["namespace", "name"],
        },
        "Dataset": {
            "type": "object",
            "properties": {
                "namespace": _S,
                "name": _S,
                "facets": {
                    "type": "object",
                    "properties": {
                        "schema": {"$ref": "#/$defs/SchemaDatasetFacet"},
                        "version": {"$ref": "#/$defs/DatasetVersionDatasetFacet"},
                    },
                    "additionalProperties": {"$ref": "#/$defs/BaseFacet"},
                },
            },
            "required": ["namespace", "name"],
        },
        "InputDataset": {
            "allOf": [
                {"$ref": "#/$defs/Dataset"},
                {
                    "type": "object",
                    "properties": {
                        "inputFacets": {
                            "type": "object",
                            "additionalProperties": {"$ref": "#/$defs/BaseFacet"},
                        }
                    },
                },
            ]
        },
        "OutputDataset": {
            "allOf": [
                {"$ref": "#/$defs/Dataset"},
                {
                    "type": "object",
                    "properties": {
                        "outputFacets": {
                            "type": "object",
                            "additionalProperties": {"$ref": "#/$defs/BaseFacet"},
                        }
                    },
                },
            ]
        },
        "ParentRunFacet": _facet(
            ["run", "job"],
            {
                "run": {
                    "type": "object",
                    "properties": {"runId": {"type": "string", "format": "uuid"}},
                    "required": ["runId"],
                },
                "job": {
                    "type": "object",
                    "properties": {"namespace": _S, "name": _S},
                    "required": ["namespace", "name"],
                },
            },
        ),
        "NominalTimeRunFacet": _facet(
            ["nominalStartTime"],
            {
                "nominalStartTime": {"type": "string", "format": "date-time"},
                "nominalEndTime": {"type": "string", "format": "date-time"},
            },
        ),
        "ErrorMessageRunFacet": _facet(
            ["message", "programmingLanguage"],
            {"message": _S, "programmingLanguage": _S, "stackTrace": _S},
        ),
        "ProcessingEngineRunFacet": _facet(
            ["version"], {"version": _S, "name": _S, "openlineageAdapterVersion": _S}
        ),
        "JobTypeJobFacet": _facet(
            ["processingType", "integration"],
            {"processingType": _S, "integration": _S, "jobType": _S},
        ),
        "SourceCodeLocationJobFacet": _facet(
            ["type", "url"],
            {
                "type": _S,
                "url": {"type": "string", "format": "uri"},
                "repoUrl": _S,
                "path": _S,
                "version": _S,
                "tag": _S,
                "branch": _S,
            },
        ),
        "SchemaField": _SCHEMA_FIELD,
        "SchemaDatasetFacet": _facet(
            [], {"fields": {"type": "array", "items": {"$ref": "#/$defs/SchemaField"}}}
        ),
        "DatasetVersionDatasetFacet": _facet(["datasetVersion"], {"datasetVersion": _S}),
    },
    "$ref": "#/$defs/RunEvent",
}

_formats = jsonschema.FormatChecker(formats=())


@_formats.checks("uuid", raises=ValueError)
def _is_uuid(value: object) -> bool:
    return not isinstance(value, str) or str(uuid.UUID(value)) == value.lower()


@_formats.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return "T" in value and parsed.tzinfo is not None


@_formats.checks("uri", raises=ValueError)
def _is_uri(value: object) -> bool:
    return not isinstance(value, str) or bool(urlsplit(value).scheme)


_VALIDATOR = jsonschema.Draft202012Validator(RUN_EVENT_SCHEMA, format_checker=_formats)
jsonschema.Draft202012Validator.check_schema(RUN_EVENT_SCHEMA)


def errors(event: dict[str, Any]) -> list[str]:
    """Every schema violation of ``event`` (empty: valid)."""
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
        for e in _VALIDATOR.iter_errors(event)
    ]


def validate(event: dict[str, Any]) -> None:
    """Raise AssertionError listing every violation."""
    found = errors(event)
    assert not found, "OpenLineage schema violations:\n" + "\n".join(found)
