"""Chart summaries of metric chunks: bounds, last point, min/max, per-block sketch.

Revision ID: 0006
Revises: 0005

Existing chunks get no sketch here (that would read every stored point once, at open time);
a chart falls back to the points of chunks without one, and a chunk written again (its key
appended to) gets one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"

_Double = sa.Float(precision=53).with_variant(sa.Float(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "metric_sketches",
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.run_id"), primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("step_min", sa.BigInteger, nullable=False),
        sa.Column("step_max", sa.BigInteger, nullable=False),
        sa.Column("is_sorted", sa.Boolean, nullable=False),
        sa.Column("last_step", sa.BigInteger, nullable=False),
        sa.Column("last_ms", sa.BigInteger, nullable=False),
        sa.Column("last_value", _Double),
        sa.Column("v_min", _Double),
        sa.Column("v_max", _Double),
        sa.Column("blocks", sa.LargeBinary, nullable=False),
    )
    op.create_index(
        "ix_sketches_cover",
        "metric_sketches",
        ["run_id", "key", "seq", "n", "step_min", "step_max", "is_sorted"]
        + ["last_step", "last_ms", "last_value", "v_min", "v_max"],
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE metric_sketches ALTER COLUMN blocks SET STORAGE EXTERNAL")


def downgrade() -> None:
    op.drop_table("metric_sketches")
