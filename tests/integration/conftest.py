"""Fixtures for the database tests (state store, SQL source): every test gets an empty database of its own.

SQLite: a file under the test's tmp_path. PostgreSQL: one database per test session and xdist worker,
and in it one schema per test (selected through the connection's search_path), dropped afterwards.
MariaDB (the SQL source's tests): one database per test, dropped afterwards. The servers must be
reachable: if one is not, its tests fail, they are never skipped.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError

from adapters.state import SqlStateStore, mask_url, open_store
from adapters.state.urls import parse_url

ADMIN_URL_ENV = "CONNECTOR_TEST_POSTGRES_URL"
DEFAULT_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
MARIADB_URL_ENV = "CONNECTOR_TEST_MARIADB_URL"
DEFAULT_MARIADB_URL = "mysql+pymysql://root@127.0.0.1:3306/test"


def _autocommit_engine(url: URL) -> Engine:
    # CREATE/DROP DATABASE cannot run inside a transaction.
    return create_engine(url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[URL]:
    """A fresh, empty database for this session and xdist worker; dropped at the end."""
    admin_url = os.environ.get(ADMIN_URL_ENV, DEFAULT_ADMIN_URL)
    admin = _autocommit_engine(parse_url(admin_url))
    # Read from the environment rather than xdist's worker_id fixture, so -p no:xdist works too.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"connector_test_{worker}_{secrets.token_hex(4)}".lower()
    try:
        with admin.connect() as connection:
            connection.execute(text(f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0"))
    except SQLAlchemyError as exc:
        admin.dispose()
        pytest.fail(
            f"PostgreSQL is needed for the state store tests but {mask_url(admin_url)} did not work: "
            f"{' '.join(str(getattr(exc, 'orig', exc)).split())}. Start it (scripts/ensure-services.sh) "
            f"or set {ADMIN_URL_ENV} to an admin URL of a reachable server.",
            pytrace=False,
        )
    try:
        yield admin.url.set(database=name)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def postgres_url(postgres_database: URL) -> Iterator[str]:
    """The URL of an empty schema of its own for this test."""
    schema = f"test_{secrets.token_hex(6)}"
    engine = _autocommit_engine(postgres_database)
    with engine.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    # A session zone far from UTC: values must still come back as UTC.
    url = postgres_database.update_query_dict({"options": f"-csearch_path={schema} -cTimeZone=Asia/Tokyo"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with engine.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture
def mariadb_url() -> Iterator[str]:
    """The URL of an empty database of its own for this test (MySQL's name for a schema)."""
    admin_url = make_url(os.environ.get(MARIADB_URL_ENV, DEFAULT_MARIADB_URL))
    name = f"src_test_{secrets.token_hex(6)}"
    admin = create_engine(admin_url, connect_args={"connect_timeout": 5})
    try:
        with admin.begin() as connection:
            connection.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    except SQLAlchemyError as exc:
        admin.dispose()
        pytest.fail(
            f"MariaDB (or MySQL) is needed for the SQL source tests but {mask_url(str(admin_url))} did not"
            f" work: {' '.join(str(getattr(exc, 'orig', exc)).split())}. Start it, or set {MARIADB_URL_ENV}"
            " to the URL of a reachable server whose user may create databases.",
            pytrace=False,
        )
    try:
        yield (
            admin_url.set(database=name)
            .update_query_dict({"charset": "utf8mb4"})
            .render_as_string(hide_password=False)
        )
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    # A folder that does not exist yet: opening the store must create it.
    return f"sqlite:///{tmp_path / 'var' / 'state.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """An empty database on each backend in turn."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
def store(db_url: str) -> Iterator[SqlStateStore]:
    opened = open_store(db_url)
    try:
        yield opened
    finally:
        opened.close()
