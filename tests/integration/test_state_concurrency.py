"""Several writers on one state database at once: the store must neither lose rows nor fail with
'database is locked' (DESIGN §5: WAL, busy_timeout, BEGIN IMMEDIATE on SQLite)."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from adapters.state import SqlStateStore, open_store
from adapters.state.engine import create_state_engine
from adapters.state.migration import current_revision, head_revision
from connector.models import StoredMapping
from connector.state import Counts, MailboxResult, MailboxStatus, RunStatus, SyncMode


class BarrierLike(Protocol):
    def wait(self, timeout: float | None = None) -> int: ...


WRITERS = 4
CALLS = 50
T0 = datetime(2026, 3, 29, 8, 0, tzinfo=UTC)


def write_batch(url: str, run_id: int, writer_no: int, start: Callable[[], object] = lambda: None) -> None:
    """One writer: its own store (its own connections), CALLS mappings and CALLS mailbox results."""
    # Far above any wait a correct store needs, and short enough that a regression fails, not hangs.
    store = open_store(url, busy_timeout_ms=10_000)
    try:
        start()
        for i in range(CALLS):
            mailbox = f"w{writer_no}-{i}@example.com"
            store.save_mappings(
                [StoredMapping(mailbox, f"k{i}", f"id{i}", "ck", "h", T0, T0 + timedelta(hours=1))]
            )
            store.record_mailbox_result(
                run_id,
                MailboxResult(mailbox, MailboxStatus.OK, Counts(created=1), T0, T0 + timedelta(seconds=i)),
            )
    finally:
        store.close()


def assert_everything_written(store: SqlStateStore, run_id: int) -> None:
    for writer_no in range(WRITERS):
        for i in range(CALLS):
            assert set(store.mappings(f"w{writer_no}-{i}@example.com")) == {f"k{i}"}
    run = store.finish_run(run_id, status=RunStatus.SUCCEEDED)
    assert run.mailboxes_done == WRITERS * CALLS
    assert run.counts == Counts(created=WRITERS * CALLS)
    assert len(run.results) == WRITERS * CALLS
    assert len(store.health()) == WRITERS * CALLS


def test_concurrent_writer_threads(store: SqlStateStore, db_url: str) -> None:
    run_id = store.start_run(trigger="t", mode=SyncMode.FAST, forced=False, mailboxes_total=WRITERS * CALLS)
    barrier = threading.Barrier(WRITERS)

    with ThreadPoolExecutor(WRITERS) as pool:
        futures = [pool.submit(write_batch, db_url, run_id, n, barrier.wait) for n in range(WRITERS)]
        for future in futures:
            future.result()  # re-raises a writer's error, e.g. 'database is locked'

    assert_everything_written(store, run_id)


def test_concurrent_writer_processes_on_one_sqlite_file(sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    try:
        run_id = store.start_run(trigger="t", mode=SyncMode.FAST, forced=False, mailboxes_total=0)
        # spawn: a forked child would inherit the parent's open SQLite handles and pytest-xdist's threads.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(WRITERS, mp_context=context) as pool:
            futures = [pool.submit(write_batch, sqlite_url, run_id, n) for n in range(WRITERS)]
            for future in futures:
                future.result()
        assert_everything_written(store, run_id)
    finally:
        store.close()


def open_and_close(url: str, barrier: BarrierLike) -> None:
    barrier.wait()
    open_store(url).close()


def test_concurrent_first_opens_of_a_fresh_database(db_url: str, tmp_path: Path) -> None:
    # Processes, not threads: the race of several processes switching a new file to WAL at once
    # did not show with threads. Several fresh SQLite files, as one round rarely hits it.
    urls = (
        [db_url]
        if db_url.startswith("postgresql")
        else [f"sqlite:///{tmp_path / str(n) / 'state.db'}" for n in range(3)]
    )
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, ProcessPoolExecutor(6, mp_context=context) as pool:
        for url in urls:
            barrier = manager.Barrier(6)
            for future in [pool.submit(open_and_close, url, barrier) for _ in range(6)]:
                future.result()
            engine = create_state_engine(url)
            try:
                assert current_revision(engine, url) == head_revision()
            finally:
                engine.dispose()
