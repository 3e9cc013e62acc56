"""The sqlmodel state store: SQLite by default, PostgreSQL in production, Alembic migrations."""

from adapters.state.migration import downgrade, migrate
from adapters.state.store import SqlStateStore, open_store
from adapters.state.urls import mask_url

__all__ = ["SqlStateStore", "downgrade", "mask_url", "migrate", "open_store"]
