"""Alembic environment: runs on the engine mltrail hands over, with our own version table."""

from __future__ import annotations

from alembic import context

from mltrail.store.sql.schema import VERSION_TABLE, metadata

engine = context.config.attributes["engine"]
with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
