"""Contract test suites shipped with mltrail, run over every backend.

Subclass :class:`TrackingStoreContract` in a test module and provide a ``store`` fixture
that yields a fresh, empty :class:`~mltrail.store.base.TrackingStore`.
"""

from mltrail.testing.contract import TrackingStoreContract, make_batch

__all__ = ["TrackingStoreContract", "make_batch"]
