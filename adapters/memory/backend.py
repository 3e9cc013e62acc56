"""``CalendarBackend`` over a ``MemoryCalendar``: the embedded default and the backend of the sync tests.

It keeps the same contract as Graph and EWS (``connector/backend.py``), so behaviour proven against it
carries over: one outcome per op in input order, per-op failures in the outcome, mailbox-wide failures
raised, untagged events reported as not found and left alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import assert_never

from adapters.memory.calendar import MemoryCalendar, StoredEvent
from connector.backend import OpOutcome
from connector.errors import MAILBOX_FATAL, BadDataError, EventNotFoundError
from connector.models import Create, Delete, Op, RemoteEvent, Target, Update


class MemoryBackend:
    name: str = "memory"

    def __init__(self, calendar: MemoryCalendar, *, path: Path | None = None, max_batch: int = 20) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.calendar = calendar
        self.max_batch = max_batch
        #: When set, the calendar is saved here after every ``apply`` so a restart finds what was pushed.
        self.path = path

    def probe(self, target: Target) -> None:
        self.calendar.check(target.address)

    def apply(self, target: Target, ops: Sequence[Op]) -> list[OpOutcome]:
        if len(ops) > self.max_batch:
            raise ValueError(
                f"{len(ops)} ops in one batch; the memory backend takes at most {self.max_batch}"
            )
        self.calendar.check(target.address)
        if not ops:
            return []
        try:
            return [self._apply_one(target.address, op) for op in ops]
        finally:
            # Also after a mid-batch failure: the ops before it were applied and must survive a restart.
            if self.path is not None:
                self.calendar.save(self.path)

    def _apply_one(self, address: str, op: Op) -> OpOutcome:
        injected = self.calendar.failure_for(op)
        if injected is not None:
            if isinstance(injected, MAILBOX_FATAL):
                raise injected.with_traceback(None)
            return OpOutcome(op, error=injected)
        try:
            if isinstance(op, Create):
                event = self.calendar.create(address, op.spec, op.transaction_id)
                return OpOutcome(op, remote_id=event.id, change_key=event.change_key)
            if isinstance(op, Update):
                event = self.calendar.update(address, op.remote_id, op.spec)
                return OpOutcome(op, remote_id=event.id, change_key=event.change_key)
            if isinstance(op, Delete):
                self.calendar.delete(address, op.remote_id)
                return OpOutcome(op, remote_id=op.remote_id)
            assert_never(op)
        except (EventNotFoundError, BadDataError) as exc:
            return OpOutcome(op, error=exc)

    def list_tagged(self, target: Target, start: datetime, end: datetime) -> list[RemoteEvent]:
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("list_tagged needs aware datetimes")
        found: list[RemoteEvent] = []
        for event in self.calendar.tagged(target.address):
            remote = self._remote(event)
            if remote.end_utc <= remote.start_utc:
                # A zero-length event belongs to the range when its instant does (as Window does).
                inside = start <= remote.start_utc < end
            else:
                inside = remote.start_utc < end and remote.end_utc > start
            if inside:
                found.append(remote)
        return found

    def find_tagged(self, target: Target, source_keys: Sequence[str]) -> list[RemoteEvent]:
        wanted = set(source_keys)
        return [self._remote(e) for e in self.calendar.tagged(target.address) if e.tag in wanted]

    def close(self) -> None:
        # Nothing to release: the calendar was saved after every apply.
        return None

    def _remote(self, event: StoredEvent) -> RemoteEvent:
        assert event.tag is not None  # callers pass tagged events only
        start_utc, end_utc = event.span.utc_bounds(self.calendar.zone)
        return RemoteEvent(
            remote_id=event.id,
            change_key=event.change_key,
            source_key=event.tag,
            start_utc=start_utc.astimezone(UTC),
            end_utc=end_utc.astimezone(UTC),
            content_hash=event.content_hash,
            subject=event.subject,
        )
