"""Contract test suites shipped with mltrail, run over every backend.

Subclass :class:`TrackingStoreContract` in a test module and provide a ``store`` fixture
that yields a fresh, empty :class:`~mltrail.store.base.TrackingStore`; subclass
:class:`ObjectStoreContract` and provide ``object_store`` and ``tamper`` fixtures (see
:mod:`mltrail.testing.objects`) for an :class:`~mltrail.objects.base.ObjectStore`.
"""

from collections.abc import Mapping

from mltrail.testing.artifacts import ArtifactStoreContract
from mltrail.testing.contract import TrackingStoreContract, make_batch
from mltrail.testing.objects import ObjectStoreContract

__all__ = [
    "SYSTEM_TAG_PREFIX",
    "ArtifactStoreContract",
    "ObjectStoreContract",
    "TrackingStoreContract",
    "make_batch",
    "user_tags",
]

#: Tags mltrail sets itself (``mltrail.dirty``, ``mltrail.command``) carry this prefix.
SYSTEM_TAG_PREFIX = "mltrail."


def user_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """The tags a user set: everything but mltrail's own ``mltrail.*`` tags."""
    return {k: v for k, v in tags.items() if not k.startswith(SYSTEM_TAG_PREFIX)}
