"""SQLite specifics of the state store: file creation, pragmas, and who takes the write lock when."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from adapters.state import open_store
from adapters.state.engine import create_state_engine, writer
from connector.models import StoredMapping, utc_now


def database_path(sqlite_url: str) -> Path:
    return Path(sqlite_url.removeprefix("sqlite:///"))


def other_writer_is_locked_out(path: Path) -> bool:
    """Whether a second connection, not willing to wait, is kept from taking the write lock now."""
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc):
            return True
        raise
    finally:
        other.close()
    return False


def test_open_store_creates_the_folder_and_the_file_in_wal_mode(sqlite_url: str) -> None:
    path = database_path(sqlite_url)
    assert not path.parent.exists()

    open_store(sqlite_url).close()

    assert path.is_file()
    with sqlite3.connect(path) as check:
        assert check.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_every_connection_gets_busy_timeout_and_foreign_keys(sqlite_url: str) -> None:
    engine = create_state_engine(sqlite_url, busy_timeout_ms=4321)
    try:
        with engine.connect() as connection:
            assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 4321
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    finally:
        engine.dispose()


def test_write_transactions_take_the_write_lock_at_begin_and_reads_do_not(sqlite_url: str) -> None:
    open_store(sqlite_url).close()
    path = database_path(sqlite_url)
    engine = create_state_engine(sqlite_url)
    try:
        with writer(engine).begin() as connection:
            connection.execute(text("SELECT count(*) FROM mapping")).scalar()
            assert other_writer_is_locked_out(path)
        with engine.begin() as connection:
            connection.execute(text("SELECT count(*) FROM mapping")).scalar()
            assert not other_writer_is_locked_out(path)
    finally:
        engine.dispose()


def test_foreign_keys_are_enforced(sqlite_url: str) -> None:
    open_store(sqlite_url).close()
    engine = create_state_engine(sqlite_url)
    try:
        with pytest.raises(Exception, match="FOREIGN KEY"), writer(engine).begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO run_mailbox (run_id, mailbox, status, created, updated, deleted, unchanged,"
                    " adopted, failed, quarantined, started_at, finished_at, op_errors)"
                    " VALUES (99, 'm', 'ok', 0, 0, 0, 0, 0, 0, 0, '2026-01-01', '2026-01-01', '[]')"
                )
            )
    finally:
        engine.dispose()


def test_an_in_memory_database_is_one_database_for_every_thread_in_turn() -> None:
    store = open_store("sqlite://")
    try:
        now = utc_now()
        saved = StoredMapping("m@example.com", "k", "id", "ck", "h", now, now)
        worker = threading.Thread(target=store.save_mappings, args=([saved],))
        worker.start()
        worker.join()
        assert store.mappings("m@example.com") == {"k": saved}
    finally:
        store.close()
