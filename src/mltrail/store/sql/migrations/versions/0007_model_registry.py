"""The model registry: registered models, versions, aliases, cards and their history.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"


def _model_id() -> sa.Column[str]:
    return sa.Column(
        "model_id",
        sa.String(32),
        sa.ForeignKey("registered_models.model_id"),
        primary_key=True,
    )


def upgrade() -> None:
    op.create_table(
        "registered_models",
        sa.Column("model_id", sa.String(32), primary_key=True),
        sa.Column(
            "project_id", sa.String(32), sa.ForeignKey("projects.project_id"), nullable=False
        ),
        sa.Column("name", sa.String(250), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("owner", sa.String(250), nullable=False),
        sa.Column("tags", sa.Text, nullable=False),
        sa.Column("archived", sa.Boolean, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "ux_registered_models_project_name",
        "registered_models",
        ["project_id", "name"],
        unique=True,
    )
    op.create_table(
        "model_versions",
        _model_id(),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column(
            "artifact_id", sa.String(32), sa.ForeignKey("artifacts.artifact_id"), nullable=False
        ),
        sa.Column("artifact_version", sa.Integer, nullable=False),
        sa.Column("digest", sa.String(100), nullable=False),
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.run_id")),
        sa.Column("signature", sa.Text, nullable=False),
        sa.Column("meta", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("archived", sa.Boolean, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("created_by", sa.String(250), nullable=False),
    )
    op.create_index("ix_model_versions_run", "model_versions", ["run_id"])
    op.create_table(
        "model_aliases",
        _model_id(),
        sa.Column("alias", sa.String(128), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "model_cards",
        _model_id(),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("revision", sa.Integer, primary_key=True),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("actor", sa.String(250), nullable=False),
    )
    op.create_table(
        "model_history",
        _model_id(),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("actor", sa.String(250), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer),
        sa.Column("alias", sa.String(128)),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("before", sa.Text),
        sa.Column("after", sa.Text),
    )


def downgrade() -> None:
    for table in (
        "model_history",
        "model_cards",
        "model_aliases",
        "model_versions",
        "registered_models",
    ):
        op.drop_table(table)
