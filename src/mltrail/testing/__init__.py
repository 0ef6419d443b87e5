"""Contract test suites shipped with mltrail, run over every backend.

Subclass :class:`TrackingStoreContract` in a test module and provide a ``store`` fixture
that yields a fresh, empty :class:`~mltrail.store.base.TrackingStore`.
"""

from collections.abc import Mapping

from mltrail.testing.artifacts import ArtifactStoreContract
from mltrail.testing.contract import TrackingStoreContract, make_batch

__all__ = [
    "SYSTEM_TAG_PREFIX",
    "ArtifactStoreContract",
    "TrackingStoreContract",
    "make_batch",
    "user_tags",
]

#: Tags mltrail sets itself (``mltrail.dirty``, ``mltrail.command``) carry this prefix.
SYSTEM_TAG_PREFIX = "mltrail."


def user_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """The tags a user set: everything but mltrail's own ``mltrail.*`` tags."""
    return {k: v for k, v in tags.items() if not k.startswith(SYSTEM_TAG_PREFIX)}
