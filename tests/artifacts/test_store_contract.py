"""The ArtifactStore contract on every backend (SQLite; PostgreSQL when configured)."""

from mltrail.testing.artifacts import ArtifactStoreContract


class TestSqlArtifactStoreContract(ArtifactStoreContract):
    """SqlArtifactStore on SQLite and PostgreSQL passes the shared contract."""
