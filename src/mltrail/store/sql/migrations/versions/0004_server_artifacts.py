"""API tokens, run files, artifacts with versions and aliases, and run inputs (lineage).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"

_TABLES = (
    "api_tokens",
    "run_files",
    "artifacts",
    "artifact_versions",
    "artifact_aliases",
    "run_inputs",
)


def upgrade() -> None:
    # the tables are defined once, in schema.py; a migration creates exactly those
    from mltrail.store.sql.schema import metadata

    bind = op.get_bind()
    for name in _TABLES:
        metadata.tables[name].create(bind)


def downgrade() -> None:
    from mltrail.store.sql.schema import metadata

    bind = op.get_bind()
    for name in reversed(_TABLES):
        metadata.tables[name].drop(bind)
