"""The TrackingStore contract on every backend (SQLite; PostgreSQL when configured)."""

from mltrail.testing import TrackingStoreContract


class TestSqlStoreContract(TrackingStoreContract):
    """SqlTrackingStore on SQLite and PostgreSQL passes the shared contract."""
