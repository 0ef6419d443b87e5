"""PostgreSQL: store metric chunk arrays uncompressed (they do not compress; it is slow).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"

_COLUMNS = ("steps", "timestamps", "vals")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for column in _COLUMNS:
            op.execute(f"ALTER TABLE metric_chunks ALTER COLUMN {column} SET STORAGE EXTERNAL")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for column in _COLUMNS:
            op.execute(f"ALTER TABLE metric_chunks ALTER COLUMN {column} SET STORAGE EXTENDED")
