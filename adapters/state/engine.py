"""Engines for the two supported databases, set up for several concurrent writers (DESIGN §5)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool

from adapters.state.urls import mask_url, parse_url, password_of
from connector.errors import ConnectorError

#: Execution option marking connections whose transactions write (SQLite: ``BEGIN IMMEDIATE``).
WRITE_OPTION = "state_store_write"
_PG_CONNECT_TIMEOUT_S = 10
_WAL_RETRY_S = 0.02


def create_state_engine(url: str, *, busy_timeout_ms: int = 30000) -> Engine:
    """An engine for ``url``. Nothing is connected yet; errors here are about the URL itself."""
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, parsed, busy_timeout_ms)
    connect_args: dict[str, Any] = {}
    if "connect_timeout" not in parsed.query:
        connect_args["connect_timeout"] = _PG_CONNECT_TIMEOUT_S
    # pre_ping: long-lived workers must survive a database restart between runs.
    return create_engine(parsed, connect_args=connect_args, pool_pre_ping=True)


def writer(engine: Engine) -> Engine:
    """The same engine (same pool) whose transactions take the write lock up front on SQLite."""
    return engine.execution_options(**{WRITE_OPTION: True})


def error_reason(exc: BaseException, url: str) -> str:
    """A one-line reason for ``exc``, without the driver's boilerplate and never with the password."""
    orig = getattr(exc, "orig", None)
    text = " ".join(str(orig if orig is not None else exc).split())
    password = password_of(url)
    if password:
        text = text.replace(password, "***")
    return text or type(exc).__name__


def _sqlite_engine(url: str, parsed: URL, busy_timeout_ms: int) -> Engine:
    database = parsed.database or ""
    in_memory = database in ("", ":memory:") or "mode=memory" in database
    if in_memory:
        # One shared connection, or every pooled connection would see its own empty database. Fit for
        # tests and one-off tools, not for concurrent use.
        engine = create_engine(parsed, poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        if not parsed.query.get("uri"):
            _make_parent(url, Path(database).expanduser())
        engine = create_engine(parsed)
    _install_sqlite_events(engine, busy_timeout_ms)
    return engine


def _make_parent(url: str, path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConnectorError(
            f"cannot create the folder {str(path.parent)!r} for the state database {mask_url(url)!r}: {exc}",
            fix="create the folder, give the connector write access to it, or choose another path",
        ) from exc


def _install_sqlite_events(engine: Engine, busy_timeout_ms: int) -> None:
    # SQLAlchemy's pysqlite recipe: stop the driver's own implicit BEGIN so we can emit ours.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            _enable_wal(cursor, busy_timeout_ms)
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # A deferred transaction that later writes fails at once with "database is locked" when
        # another writer got there first; IMMEDIATE waits for the lock (busy_timeout) instead.
        write = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _enable_wal(cursor: sqlite3.Cursor, busy_timeout_ms: int) -> None:
    """Switch to WAL, which needs an exclusive lock. When several processes open a fresh file at
    once, SQLite answers "locked" at once instead of waiting (its deadlock avoidance skips the busy
    handler), so wait here instead. Once the file is in WAL mode (it stays so), this is a no-op."""
    deadline = time.monotonic() + busy_timeout_ms / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(_WAL_RETRY_S)
