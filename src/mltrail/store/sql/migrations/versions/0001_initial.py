"""Initial schema: projects, runs, params, tags, chunked metric series and summaries.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None

_ms = sa.BigInteger
_run_fk = sa.ForeignKey("runs.run_id")
_double = sa.Float(precision=53).with_variant(sa.Float(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("project_id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(250), nullable=False, unique=True),
        sa.Column("created_ms", _ms, nullable=False),
    )
    op.create_table(
        "runs",
        sa.Column("run_id", sa.String(32), primary_key=True),
        sa.Column(
            "project_id", sa.String(32), sa.ForeignKey("projects.project_id"), nullable=False
        ),
        sa.Column("name", sa.String(250), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_ms", _ms, nullable=False),
        sa.Column("end_ms", _ms),
        sa.Column("heartbeat_ms", _ms),
        sa.Column("heartbeat_s", _double, nullable=False),
        sa.Column("user_name", sa.String(250), nullable=False),
        sa.Column("host", sa.String(250), nullable=False),
        sa.Column("command", sa.Text, nullable=False),
        sa.Column("config", sa.Text, nullable=False),
    )
    op.create_index("ix_runs_project_created", "runs", ["project_id", "created_ms"])
    op.create_index("ix_runs_created", "runs", ["created_ms"])
    op.create_table(
        "params",
        sa.Column("run_id", sa.String(32), _run_fk, primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("vtype", sa.String(1), nullable=False),
        sa.Column("value_num", _double),
    )
    op.create_index("ix_params_key_num", "params", ["key", "value_num"])
    op.create_index("ix_params_key_value", "params", ["key", "value"])
    op.create_table(
        "tags",
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.run_id"), primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_index("ix_tags_key_value", "tags", ["key", "value"])
    op.create_table(
        "metric_summaries",
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.run_id"), primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("last_value", _double),
        sa.Column("last_step", sa.BigInteger, nullable=False),
        sa.Column("last_ms", _ms, nullable=False),
        sa.Column("min_value", _double),
        sa.Column("max_value", _double),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.Column("open_seq", sa.Integer, nullable=False),
        sa.Column("open_n", sa.Integer, nullable=False),
    )
    op.create_index("ix_summaries_key_last", "metric_summaries", ["key", "last_value"])
    op.create_table(
        "metric_chunks",
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.run_id"), primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("step_min", sa.BigInteger, nullable=False),
        sa.Column("step_max", sa.BigInteger, nullable=False),
        sa.Column("ms_min", _ms, nullable=False),
        sa.Column("ms_max", _ms, nullable=False),
        sa.Column("is_sorted", sa.Boolean, nullable=False),
        sa.Column("steps", sa.LargeBinary, nullable=False),
        sa.Column("timestamps", sa.LargeBinary, nullable=False),
        sa.Column("vals", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "ingest_cursors",
        sa.Column("source", sa.String(100), primary_key=True),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("position", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "ingest_cursors",
        "metric_chunks",
        "metric_summaries",
        "tags",
        "params",
        "runs",
        "projects",
    ):
        op.drop_table(table)
