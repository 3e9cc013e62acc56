"""Rows to the core's frozen records and back. No ORM object leaves the adapter."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from adapters.state.tables import (
    COUNT_COLUMNS,
    MailboxHealthRow,
    MappingRow,
    QuarantineRow,
    RunMailboxRow,
    RunRow,
)
from connector.models import StoredMapping
from connector.state import (
    Counts,
    MailboxHealth,
    MailboxResult,
    MailboxStatus,
    QuarantineEntry,
    RunRecord,
    RunStatus,
    SyncMode,
)


def mapping_values(mapping: StoredMapping) -> dict[str, Any]:
    return {
        "mailbox": mapping.mailbox,
        "source_key": mapping.source_key,
        "remote_id": mapping.remote_id,
        "change_key": mapping.change_key,
        "content_hash": mapping.content_hash,
        "start_utc": mapping.start_utc,
        "end_utc": mapping.end_utc,
        "transaction_id": mapping.transaction_id,
        "last_pushed": mapping.last_pushed,
    }


def to_mapping(row: MappingRow) -> StoredMapping:
    return StoredMapping(
        mailbox=row.mailbox,
        source_key=row.source_key,
        remote_id=row.remote_id,
        change_key=row.change_key,
        content_hash=row.content_hash,
        start_utc=row.start_utc,
        end_utc=row.end_utc,
        transaction_id=row.transaction_id,
        last_pushed=row.last_pushed,
    )


def count_values(counts: Counts) -> dict[str, int]:
    return {name: getattr(counts, name) for name in COUNT_COLUMNS}


def counts_of(row: RunRow | RunMailboxRow | MailboxHealthRow) -> Counts:
    return Counts(**{name: getattr(row, name) for name in COUNT_COLUMNS})


def result_values(run_id: int, result: MailboxResult) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "mailbox": result.mailbox,
        "status": result.status.value,
        "started_at": result.started_at,
        "finished_at": result.finished_at,
        "error_code": result.error_code,
        "error": result.error,
        "op_errors": json.dumps([list(pair) for pair in result.op_errors], ensure_ascii=False),
        **count_values(result.counts),
    }


def to_result(row: RunMailboxRow) -> MailboxResult:
    return MailboxResult(
        mailbox=row.mailbox,
        status=MailboxStatus(row.status),
        counts=counts_of(row),
        started_at=row.started_at,
        finished_at=row.finished_at,
        error_code=row.error_code,
        error=row.error,
        op_errors=tuple((str(key), str(reason)) for key, reason in json.loads(row.op_errors)),
    )


def to_run(row: RunRow, results: tuple[MailboxResult, ...] = ()) -> RunRecord:
    if row.id is None:
        raise ValueError("run row has no id: it was never flushed")
    return RunRecord(
        id=row.id,
        trigger=row.trigger,
        mode=SyncMode(row.mode),
        forced=row.forced,
        status=RunStatus(row.status),
        started_at=row.started_at,
        finished_at=row.finished_at,
        mailboxes_total=row.mailboxes_total,
        mailboxes_done=row.mailboxes_done,
        counts=counts_of(row),
        error=row.error,
        results=results,
    )


def health_values(run_id: int, result: MailboxResult) -> dict[str, Any]:
    ok = result.status is MailboxStatus.OK
    return {
        "mailbox": result.mailbox,
        "status": result.status.value,
        "last_run_id": run_id,
        "last_run_at": result.finished_at,
        "last_success_at": result.finished_at if ok else None,
        "error_code": None if ok else result.error_code,
        "error": None if ok else result.error,
        **count_values(result.counts),
    }


def to_health(row: MailboxHealthRow) -> MailboxHealth:
    return MailboxHealth(
        mailbox=row.mailbox,
        status=MailboxStatus(row.status),
        last_run_id=row.last_run_id,
        last_run_at=row.last_run_at,
        last_success_at=row.last_success_at,
        error_code=row.error_code,
        error=row.error,
        last_counts=counts_of(row),
    )


def quarantine_row(entry: QuarantineEntry, *, first_seen: datetime, last_seen: datetime) -> QuarantineRow:
    return QuarantineRow(
        source_key=entry.source_key,
        owner=entry.owner,
        mailbox=entry.mailbox,
        reason=entry.reason,
        origin=entry.origin,
        first_seen=first_seen,
        last_seen=last_seen,
    )


def to_quarantine(row: QuarantineRow) -> QuarantineEntry:
    return QuarantineEntry(
        source_key=row.source_key,
        owner=row.owner,
        reason=row.reason,
        mailbox=row.mailbox,
        origin=row.origin,
        first_seen=row.first_seen,
        last_seen=row.last_seen,
    )
