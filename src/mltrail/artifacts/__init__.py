"""Named, versioned artifacts with aliases and lineage (inputs and outputs of runs).

- :mod:`~mltrail.artifacts.records`: the records (versions, references, lineage graphs) and
  the rules for names, aliases, types and metadata.
- :mod:`~mltrail.artifacts.base`: the ``ArtifactStore`` protocol a tracking store implements
  for versions, aliases and lineage (SQL in ``store/sql/artifacts.py``, HTTP in
  ``store/http_artifacts.py``).
- :mod:`~mltrail.artifacts.storage`: where the bytes live (a content-addressed object store,
  :mod:`mltrail.objects`); :mod:`~mltrail.artifacts.references`: data recorded by digest where
  it is; :mod:`~mltrail.artifacts.access`: checking a version out, verified.

A run logs and uses artifacts through ``Run.log_artifact`` / ``Run.use_artifact``
(:mod:`mltrail.sdk.artifacts`). Importing this package is light.
"""

from mltrail.artifacts.base import ArtifactStore
from mltrail.artifacts.records import (
    Artifact,
    ArtifactRef,
    ArtifactVersion,
    LineageEdge,
    LineageGraph,
    LineageNode,
    parse_ref,
)

__all__ = [
    "Artifact",
    "ArtifactRef",
    "ArtifactStore",
    "ArtifactVersion",
    "LineageEdge",
    "LineageGraph",
    "LineageNode",
    "parse_ref",
]
