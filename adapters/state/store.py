"""The sqlmodel implementation of the ``StateStore`` port (SQLite or PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TypeAlias, TypeVar

from sqlalchemy import Engine, delete, text, true
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError, StatementError
from sqlalchemy.sql.expression import ColumnElement
from sqlmodel import Session, col, select

from adapters.state import convert
from adapters.state.engine import create_state_engine, error_reason, writer
from adapters.state.migration import check_connection, current_revision, head_revision, upgrade_engine
from adapters.state.tables import (
    COUNT_COLUMNS,
    MailboxHealthRow,
    MappingRow,
    QuarantineRow,
    RunMailboxRow,
    RunRow,
)
from adapters.state.upsert import health_upsert, mapping_upsert
from adapters.state.urls import mask_url
from connector.errors import ConnectorError, TransientError
from connector.models import StoredMapping, utc_now
from connector.state import (
    MailboxHealth,
    MailboxResult,
    QuarantineEntry,
    RunRecord,
    RunStatus,
    SyncMode,
    run_status,
)

__all__ = ["SqlStateStore", "mask_url", "open_store"]

# Well below SQLite's and PostgreSQL's bound-parameter limits.
_CHUNK = 500
_T = TypeVar("_T")
_QuarantineKey: TypeAlias = tuple[str, str, str]

_BUSY_FIX = (
    "another process held the SQLite database longer than the busy timeout; the sync will retry "
    "(for many concurrent workers, use PostgreSQL)"
)
_DOWN_FIX = (
    "check that the database server is running and reachable (SQLite: that the file and its folder are "
    "writable and the disk is not full); the sync will retry"
)


def open_store(url: str, *, auto_migrate: bool = True, busy_timeout_ms: int = 30000) -> SqlStateStore:
    """Connect to the state database at ``url`` and, unless told otherwise, bring its schema up to date.

    Raises ``ConnectorError`` (password masked) when the URL is unusable, the server cannot be reached,
    or the schema cannot be migrated, or, with ``auto_migrate=False``, is not the current one.
    """
    engine = create_state_engine(url, busy_timeout_ms=busy_timeout_ms)
    try:
        check_connection(engine, url)
        if auto_migrate:
            upgrade_engine(engine, url)
        else:
            _require_current_schema(engine, url)
    except BaseException:
        engine.dispose()
        raise
    return SqlStateStore(engine, url=url)


def _require_current_schema(engine: Engine, url: str) -> None:
    found, wanted = current_revision(engine, url), head_revision()
    if found != wanted:
        raise ConnectorError(
            f"the state database {mask_url(url)} has schema revision {found or 'none'}, "
            f"this connector needs {wanted}",
            fix="open the store with auto_migrate=True, or run adapters.state.migrate(url)",
        )


class SqlStateStore:
    """``StateStore`` over SQLAlchemy. Thread-safe: every call uses its own session and transaction."""

    def __init__(self, engine: Engine, *, url: str = "") -> None:
        self._engine = engine
        self._writer = writer(engine)
        self._dialect = engine.dialect.name
        self._where = mask_url(url) if url else str(engine.url)

    # -- mappings -------------------------------------------------------------------------------
    def mappings(self, mailbox: str) -> dict[str, StoredMapping]:
        with self._read() as session:
            rows = session.exec(select(MappingRow).where(MappingRow.mailbox == mailbox)).all()
            return {row.source_key: convert.to_mapping(row) for row in rows}

    def save_mappings(self, mappings: Sequence[StoredMapping]) -> None:
        # Last one wins for a key given twice; PostgreSQL refuses to upsert one row twice in a statement.
        values = list({(m.mailbox, m.source_key): convert.mapping_values(m) for m in mappings}.values())
        if not values:
            return
        with self._write() as session:
            session.exec(mapping_upsert(self._dialect), params=values)

    def delete_mappings(self, mailbox: str, source_keys: Sequence[str]) -> None:
        with self._write() as session:
            for chunk in _chunks(list(dict.fromkeys(source_keys))):
                session.exec(
                    delete(MappingRow).where(
                        col(MappingRow.mailbox) == mailbox, col(MappingRow.source_key).in_(chunk)
                    )
                )

    # -- runs ----------------------------------------------------------------------------------
    def start_run(
        self, *, trigger: str, mode: SyncMode, forced: bool, mailboxes_total: int, queued: bool = False
    ) -> int:
        row = RunRow(
            trigger=trigger,
            mode=mode.value,
            forced=forced,
            status=(RunStatus.QUEUED if queued else RunStatus.RUNNING).value,
            started_at=utc_now(),
            mailboxes_total=mailboxes_total,
        )
        with self._write() as session:
            session.add(row)
            session.flush()
            assert row.id is not None  # the flush assigned it
            return row.id

    def record_mailbox_result(self, run_id: int, result: MailboxResult) -> None:
        """Store one mailbox's outcome in the run and update that mailbox's health.

        A second result for the same mailbox in the same run (a redelivered job) replaces the first,
        so the run's counts stay the sum of its results. Health only moves forward: a result that
        finished before the one health already shows is kept in the run but does not touch health.
        """
        values = convert.result_values(run_id, result)
        with self._write() as session:
            run = self._locked_run(session, run_id)
            previous = session.get(RunMailboxRow, (run_id, result.mailbox))
            if previous is None:
                session.add(RunMailboxRow(**values))
                run.mailboxes_done += 1
            else:
                for name in COUNT_COLUMNS:
                    setattr(run, name, getattr(run, name) - getattr(previous, name))
                for name, value in values.items():
                    setattr(previous, name, value)
            for name in COUNT_COLUMNS:
                setattr(run, name, getattr(run, name) + getattr(result.counts, name))
            session.add(run)
            session.exec(health_upsert(self._dialect), params=convert.health_values(run_id, result))

    def begin_run(self, run_id: int, *, mailboxes_total: int) -> RunRecord:
        with self._write() as session:
            run = self._locked_run(session, run_id)
            if run.status == RunStatus.QUEUED.value:
                run.status = RunStatus.RUNNING.value
                run.mailboxes_total = mailboxes_total
                session.add(run)
                session.flush()
            return convert.to_run(run)

    def finish_run_if_complete(self, run_id: int) -> RunRecord | None:
        with self._write() as session:
            run = self._locked_run(session, run_id)
            if run.status != RunStatus.RUNNING.value or run.mailboxes_done < run.mailboxes_total:
                return None
            results = self._results(session, run_id)
            run.status = run_status(results).value
            run.finished_at = utc_now()
            session.add(run)
            session.flush()
            return convert.to_run(run, results)

    def finish_run(self, run_id: int, *, status: RunStatus, error: str | None = None) -> RunRecord:
        """Close the run; its counts are the sum of its mailbox results (kept so as they arrive)."""
        with self._write() as session:
            run = self._locked_run(session, run_id)
            run.status = status.value
            run.finished_at = utc_now()
            run.error = error
            session.add(run)
            session.flush()
            return convert.to_run(run, self._results(session, run_id))

    def run(self, run_id: int) -> RunRecord | None:
        with self._read() as session:
            row = session.get(RunRow, run_id)
            return None if row is None else convert.to_run(row, self._results(session, run_id))

    def recent_runs(self, limit: int = 10) -> list[RunRecord]:
        """Newest first, without their mailbox results (``results`` is empty: use ``run()``)."""
        with self._read() as session:
            rows = session.exec(select(RunRow).order_by(col(RunRow.id).desc()).limit(limit)).all()
            return [convert.to_run(row) for row in rows]

    # -- health and quarantine ---------------------------------------------------------------------
    def health(self) -> list[MailboxHealth]:
        with self._read() as session:
            rows = session.exec(select(MailboxHealthRow).order_by(col(MailboxHealthRow.mailbox))).all()
            return [convert.to_health(row) for row in rows]

    def replace_quarantine(self, entries: Sequence[QuarantineEntry], *, owners: Sequence[str] | None) -> None:
        """Make ``entries`` the quarantine: for every owner when ``owners`` is None, else only for the
        listed owners. An entry already present (same source key, owner and reason) keeps its
        ``first_seen``; ``last_seen`` becomes now. With ``owners``, an entry of an unlisted owner is a
        caller bug and raises ``ValueError``: it could never be cleared by a run for its owner list.
        """
        scope = None if owners is None else list(dict.fromkeys(owners))
        if scope is not None:
            stray = sorted({entry.owner for entry in entries} - set(scope))
            if stray:
                raise ValueError(f"quarantine entries for owners outside {scope!r}: {stray!r}")
        now = utc_now()
        with self._write() as session:
            if self._dialect == "postgresql":
                # Read-then-replace: a concurrent replace must not interleave and duplicate rows.
                session.connection().execute(text("LOCK TABLE quarantine IN EXCLUSIVE MODE"))
            first_seen = self._clear_quarantine(session, scope)
            for entry in entries:
                key = (entry.source_key, entry.owner, entry.reason)
                kept = first_seen.get(key) or entry.first_seen or now
                session.add(convert.quarantine_row(entry, first_seen=kept, last_seen=now))

    def quarantine(self) -> list[QuarantineEntry]:
        with self._read() as session:
            rows = session.exec(
                select(QuarantineRow).order_by(
                    col(QuarantineRow.owner),
                    col(QuarantineRow.source_key),
                    col(QuarantineRow.reason),
                    col(QuarantineRow.id),
                )
            ).all()
            return [convert.to_quarantine(row) for row in rows]

    def close(self) -> None:
        self._engine.dispose()

    # -- internals ---------------------------------------------------------------------------------
    @contextmanager
    def _read(self) -> Iterator[Session]:
        with self._translated(), Session(self._engine) as session, session.begin():
            yield session

    @contextmanager
    def _write(self) -> Iterator[Session]:
        with self._translated(), Session(self._writer) as session, session.begin():
            yield session

    @contextmanager
    def _translated(self) -> Iterator[None]:
        try:
            yield
        except StatementError as exc:
            # A value our column types refused (naive datetime): the caller's bug, in its own words.
            if not isinstance(exc, DBAPIError) and isinstance(exc.orig, ValueError | TypeError):
                raise exc.orig from exc
            url = self._where
            if isinstance(exc, OperationalError):
                reason = error_reason(exc, url)
                raise TransientError(
                    f"the state database {url} is unavailable: {reason}",
                    fix=_BUSY_FIX if "locked" in reason else _DOWN_FIX,
                ) from exc
            raise ConnectorError(f"state database error on {url}: {error_reason(exc, url)}") from exc
        except SQLAlchemyError as exc:
            raise ConnectorError(
                f"state database error on {self._where}: {error_reason(exc, self._where)}"
            ) from exc

    def _locked_run(self, session: Session, run_id: int) -> RunRow:
        # FOR UPDATE serialises results of one run on PostgreSQL; SQLite's IMMEDIATE already has.
        run = session.exec(select(RunRow).where(RunRow.id == run_id).with_for_update()).first()
        if run is None:
            raise ValueError(f"no run with id {run_id}")
        return run

    @staticmethod
    def _results(session: Session, run_id: int) -> tuple[MailboxResult, ...]:
        rows = session.exec(
            select(RunMailboxRow)
            .where(RunMailboxRow.run_id == run_id)
            .order_by(col(RunMailboxRow.finished_at), col(RunMailboxRow.mailbox))
        ).all()
        return tuple(convert.to_result(row) for row in rows)

    @staticmethod
    def _clear_quarantine(session: Session, scope: list[str] | None) -> dict[_QuarantineKey, datetime]:
        """Delete the quarantine rows in scope; return their first_seen by (source key, owner, reason)."""
        filters: list[ColumnElement[bool]] = (
            [true()] if scope is None else [col(QuarantineRow.owner).in_(chunk) for chunk in _chunks(scope)]
        )
        first_seen: dict[_QuarantineKey, datetime] = {}
        for where in filters:
            for row in session.exec(select(QuarantineRow).where(where)).all():
                key = (row.source_key, row.owner, row.reason)
                first_seen[key] = min(first_seen.get(key, row.first_seen), row.first_seen)
            session.exec(delete(QuarantineRow).where(where))
        return first_seen


def _chunks(items: Sequence[_T]) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]
