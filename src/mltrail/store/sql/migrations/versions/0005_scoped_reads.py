"""Links for project-scoped reads: which runs carried a blob, which projects hold an object.

Revision ID: 0005
Revises: 0004

Existing data is linked once here: a blob to every run whose captured state names its digest,
and an artifact version's object to the version's project. (Files inside a tree version are
linked by the server the first time a project token reads the tree.)
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_BATCH = 500


def upgrade() -> None:
    op.create_table(
        "run_blobs",
        sa.Column("digest", sa.String(80), primary_key=True),
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.run_id"), primary_key=True),
    )
    op.create_table(
        "object_refs",
        sa.Column("digest", sa.String(100), primary_key=True),
        sa.Column("project", sa.String(250), primary_key=True),
    )
    conn = op.get_bind()
    _link_blobs(conn)
    conn.execute(
        sa.text(
            "INSERT INTO object_refs (digest, project)"
            " SELECT DISTINCT v.digest, p.name FROM artifact_versions v"
            " JOIN artifacts a ON a.artifact_id = v.artifact_id"
            " JOIN projects p ON p.project_id = a.project_id"
            " WHERE v.kind IN ('file', 'tree')"
        )
    )


def _link_blobs(conn: sa.Connection) -> None:
    """Link each stored blob to the runs whose state documents name it."""
    stored = set(conn.execute(sa.text("SELECT digest FROM blobs")).scalars())
    if not stored:
        return
    links: set[tuple[str, str]] = set()
    for run_id, data in conn.execute(sa.text("SELECT run_id, data FROM run_state")):
        links.update((d, run_id) for d in set(_DIGEST.findall(data)) if d in stored)
    rows = [{"digest": d, "run_id": r} for d, r in sorted(links)]
    insert = sa.text("INSERT INTO run_blobs (digest, run_id) VALUES (:digest, :run_id)")
    for i in range(0, len(rows), _BATCH):
        conn.execute(insert, rows[i : i + _BATCH])


def downgrade() -> None:
    for table in ("object_refs", "run_blobs"):
        op.drop_table(table)
