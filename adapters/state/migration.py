"""Alembic migrations, run in code: no alembic.ini at runtime."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeAlias

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from adapters.state.engine import create_state_engine, error_reason, writer
from adapters.state.urls import mask_url
from connector.errors import ConnectorError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Any constant works; it only has to be the same for every connector process.
_PG_MIGRATION_LOCK = 0x5C4ED01E

_EngineAction: TypeAlias = Callable[[Engine], None]
_AlembicCommand: TypeAlias = Callable[[Config], None]

_CONNECT_FIX = (
    "check that the database server is running and reachable, and the host, port, user, password and "
    "database name in the URL"
)
_SQLITE_OPEN_FIX = "point the URL at a SQLite database file (or a new path) the connector may read and write"
_MIGRATE_FIX = (
    "point the connector at its own database (an empty one is fine); if a newer connector version "
    "already upgraded it, run that version or restore a backup"
)


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    # The value goes through configparser interpolation, where '%' is special.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def check_connection(engine: Engine, url: str) -> None:
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        raise ConnectorError(
            f"cannot connect to the state database {mask_url(url)}: {error_reason(exc, url)}",
            fix=_SQLITE_OPEN_FIX if engine.dialect.name == "sqlite" else _CONNECT_FIX,
        ) from exc


def upgrade_engine(engine: Engine, url: str, revision: str = "head") -> None:
    _run(engine, url, lambda config: command.upgrade(config, revision))


def downgrade_engine(engine: Engine, url: str, revision: str) -> None:
    _run(engine, url, lambda config: command.downgrade(config, revision))


def current_revision(engine: Engine, url: str) -> str | None:
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except SQLAlchemyError as exc:
        raise ConnectorError(
            f"cannot read the schema version of the state database {mask_url(url)}: {error_reason(exc, url)}",
            fix=_CONNECT_FIX,
        ) from exc


def migrate(url: str, *, busy_timeout_ms: int = 30000) -> None:
    """Bring the database at ``url`` to the newest schema."""
    _with_engine(url, busy_timeout_ms, lambda engine: upgrade_engine(engine, url))


def downgrade(url: str, revision: str, *, busy_timeout_ms: int = 30000) -> None:
    """Take the database at ``url`` back to ``revision`` (``"base"``: no tables at all)."""
    _with_engine(url, busy_timeout_ms, lambda engine: downgrade_engine(engine, url, revision))


def _with_engine(url: str, busy_timeout_ms: int, action: _EngineAction) -> None:
    engine = create_state_engine(url, busy_timeout_ms=busy_timeout_ms)
    try:
        check_connection(engine, url)
        action(engine)
    finally:
        engine.dispose()


def _run(engine: Engine, url: str, alembic_command: _AlembicCommand) -> None:
    try:
        # One write transaction around the whole command: a second process migrating at the same
        # time waits, then finds the schema current.
        with writer(engine).begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
            alembic_command(alembic_config(connection))
    except (SQLAlchemyError, CommandError) as exc:
        raise ConnectorError(
            f"cannot migrate the state database {mask_url(url)}: {error_reason(exc, url)}",
            fix=_MIGRATE_FIX,
        ) from exc
