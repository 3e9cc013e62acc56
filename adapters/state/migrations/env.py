"""Alembic environment for the state store.

The connector runs migrations in code (``adapters.state.migration``) and hands over its open connection
in ``config.attributes["connection"]``, so no alembic.ini is needed. A developer's own alembic.ini with
``sqlalchemy.url`` works too (``alembic revision --autogenerate``, ``alembic upgrade --sql``).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from adapters.state.engine import create_state_engine, writer
from adapters.state.tables import metadata
from adapters.state.urls import parse_url

config = context.config


def _run(connection: Connection) -> None:
    # render_as_batch: SQLite can ALTER almost nothing; batch mode rebuilds the table instead.
    context.configure(
        connection=connection, target_metadata=metadata, render_as_batch=True, compare_type=True
    )
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError(
            "no database: call adapters.state.migration.migrate(url), or set sqlalchemy.url in alembic.ini"
        )
    return url


def run_offline() -> None:
    context.configure(
        url=parse_url(_url()),
        target_metadata=metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = writer(create_state_engine(_url()))
    try:
        with engine.begin() as own_connection:
            _run(own_connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
