"""Alembic environment: always driven from code with a live connection (see store/migrate.py)."""

from __future__ import annotations

from alembic import context

from mill.store.tables import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite needs batch mode for ALTERs
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
