"""Named, versioned artifacts with aliases and lineage (inputs and outputs of runs).

- :func:`log_artifact` / ``Run.log_artifact``: a file or directory becomes ``name:vN``, a new
  version only when its content changed; ``latest`` is the newest; aliases move.
- :func:`log_reference`: ``s3://...`` or a local path recorded by digest, bytes not copied.
- :func:`use_artifact` / ``Run.use_artifact``: resolve ``name:alias`` | ``name:vN`` | a digest,
  materialise it (verified) and record it as an input of the run.

The bytes live in a content-addressed object store (:mod:`mltrail.objects`, see
:mod:`mltrail.artifacts.storage`); versions, aliases and lineage in the tracking store
(:mod:`mltrail.store.artifacts`). Importing this package is light.
"""

from mltrail.artifacts.sdk import (
    ArtifactsUnsupportedError,
    artifact_store,
    checkout_version,
    log_artifact,
    log_reference,
    use_artifact,
)
from mltrail.store.artifacts import (
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
    "ArtifactVersion",
    "ArtifactsUnsupportedError",
    "LineageEdge",
    "LineageGraph",
    "LineageNode",
    "artifact_store",
    "checkout_version",
    "log_artifact",
    "log_reference",
    "parse_ref",
    "use_artifact",
]
