"""Alembic migrations of the state store, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from adapters.state import downgrade, migrate, open_store
from adapters.state.engine import create_state_engine, writer
from adapters.state.migration import MIGRATIONS_DIR, head_revision
from adapters.state.tables import metadata
from connector.errors import ConnectorError
from connector.state import SyncMode

OUR_TABLES = {"mapping", "run", "run_mailbox", "mailbox_health", "quarantine"}


def schema_diff(url: str) -> list[Any]:
    engine = create_state_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, metadata))
    finally:
        engine.dispose()


def tables_and_revision(url: str) -> tuple[set[str], str | None]:
    engine = create_state_engine(url)
    try:
        with engine.connect() as connection:
            revision = MigrationContext.configure(connection).get_current_revision()
            return set(inspect(connection).get_table_names()), revision
    finally:
        engine.dispose()


def execute(url: str, sql: str) -> None:
    engine = create_state_engine(url)
    try:
        with writer(engine).begin() as connection:
            connection.execute(text(sql))
    finally:
        engine.dispose()


def test_the_models_cover_exactly_our_tables() -> None:
    assert set(metadata.tables) == OUR_TABLES


def test_migrations_from_empty_produce_exactly_the_model_schema(db_url: str) -> None:
    migrate(db_url)

    assert schema_diff(db_url) == []
    assert tables_and_revision(db_url) == (OUR_TABLES | {"alembic_version"}, head_revision())


def test_the_schema_comparison_notices_drift(db_url: str) -> None:
    migrate(db_url)

    execute(db_url, "DROP INDEX ix_quarantine_owner")

    assert [diff[0] for diff in schema_diff(db_url)] == ["add_index"]


def test_downgrade_to_base_drops_every_table_and_upgrade_restores_them(db_url: str) -> None:
    migrate(db_url)

    downgrade(db_url, "base")

    assert tables_and_revision(db_url) == ({"alembic_version"}, None)
    migrate(db_url)
    assert schema_diff(db_url) == []


def test_reopening_a_current_database_keeps_its_data(db_url: str) -> None:
    first = open_store(db_url)
    run_id = first.start_run(trigger="cli", mode=SyncMode.FAST, forced=False, mailboxes_total=0)
    first.close()

    second = open_store(db_url)
    try:
        assert [run.id for run in second.recent_runs()] == [run_id]
    finally:
        second.close()


def test_without_auto_migrate_an_outdated_schema_is_refused(db_url: str) -> None:
    with pytest.raises(ConnectorError, match="schema revision none") as caught:
        open_store(db_url, auto_migrate=False)
    assert caught.value.fix is not None
    assert "migrate" in caught.value.fix

    migrate(db_url)
    store = open_store(db_url, auto_migrate=False)
    try:
        assert store.recent_runs() == []
    finally:
        store.close()


def test_a_database_of_a_newer_connector_version_is_refused(db_url: str) -> None:
    migrate(db_url)
    execute(db_url, "UPDATE alembic_version SET version_num = '9999_from_the_future'")

    with pytest.raises(ConnectorError, match=r"cannot migrate.*9999_from_the_future"):
        open_store(db_url)


def test_a_database_holding_other_tables_is_refused(db_url: str) -> None:
    execute(db_url, "CREATE TABLE run (id INTEGER PRIMARY KEY, name VARCHAR(10))")

    with pytest.raises(ConnectorError, match="cannot migrate") as caught:
        open_store(db_url)
    assert caught.value.fix is not None


def test_new_revisions_will_import_sqlmodel() -> None:
    # Autogenerate renders sqlmodel's AutoString; without the import a new revision cannot even load.
    assert "import sqlmodel" in (MIGRATIONS_DIR / "script.py.mako").read_text(encoding="utf-8")
