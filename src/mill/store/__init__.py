"""The metadata store: SQLAlchemy tables, mappers, queries and Alembic migrations."""

from mill.store.sql import SqlStore

__all__ = ["SqlStore"]
