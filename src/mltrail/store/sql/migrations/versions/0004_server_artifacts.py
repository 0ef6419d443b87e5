"""API tokens, run files, artifacts with versions and aliases, and run inputs (lineage).

Revision ID: 0004
Revises: 0003

The tables are written out here as they were at this revision (not read from schema.py), so a
later change to schema.py never changes what this step creates.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("token_id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(250), nullable=False),
        sa.Column("secret_hash", sa.String(128), nullable=False),
        sa.Column("scope", sa.String(8), nullable=False),
        sa.Column("project", sa.String(250)),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("expires_ms", sa.BigInteger),
        sa.Column("revoked_ms", sa.BigInteger),
    )
    op.create_table(
        "run_files",
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.run_id"), primary_key=True),
        sa.Column("path", sa.String(1000), primary_key=True),
        sa.Column("digest", sa.String(100), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_run_files_digest", "run_files", ["digest"])
    op.create_table(
        "artifacts",
        sa.Column("artifact_id", sa.String(32), primary_key=True),
        sa.Column(
            "project_id", sa.String(32), sa.ForeignKey("projects.project_id"), nullable=False
        ),
        sa.Column("name", sa.String(250), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("ux_artifacts_project_name", "artifacts", ["project_id", "name"], unique=True)
    op.create_table(
        "artifact_versions",
        sa.Column(
            "artifact_id", sa.String(32), sa.ForeignKey("artifacts.artifact_id"), primary_key=True
        ),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("digest", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("file_count", sa.Integer, nullable=False),
        sa.Column("uri", sa.Text),
        sa.Column("meta", sa.Text, nullable=False),
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.run_id")),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "ux_artifact_versions_digest", "artifact_versions", ["artifact_id", "digest"], unique=True
    )
    op.create_index("ix_artifact_versions_digest", "artifact_versions", ["digest"])
    op.create_index("ix_artifact_versions_run", "artifact_versions", ["run_id"])
    op.create_table(
        "artifact_aliases",
        sa.Column(
            "artifact_id", sa.String(32), sa.ForeignKey("artifacts.artifact_id"), primary_key=True
        ),
        sa.Column("alias", sa.String(128), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_table(
        "run_inputs",
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.run_id"), primary_key=True),
        sa.Column(
            "artifact_id", sa.String(32), sa.ForeignKey("artifacts.artifact_id"), primary_key=True
        ),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_run_inputs_artifact", "run_inputs", ["artifact_id", "version"])


def downgrade() -> None:
    for table in (
        "run_inputs",
        "artifact_aliases",
        "artifact_versions",
        "artifacts",
        "run_files",
        "api_tokens",
    ):
        op.drop_table(table)
