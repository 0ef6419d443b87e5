"""Saved workspace views of the web UI: one JSON document per project and name.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"


def upgrade() -> None:
    op.create_table(
        "ui_views",
        sa.Column(
            "project_id", sa.String(32), sa.ForeignKey("projects.project_id"), primary_key=True
        ),
        sa.Column("name", sa.String(120), primary_key=True),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
        sa.Column("updated_by", sa.String(250), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ui_views")
