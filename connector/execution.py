"""Carrying out one mailbox's plan: ops go to the backend in chunks of its ``max_batch``, and state is
written only after each remote success (DESIGN §4.4): an intent before every create, the mapping
after it. A failure of one op is recorded and the rest go on; a failure of the whole mailbox (auth,
permission, no mailbox, policy) or of a whole batch ends the mailbox's sync with a FAILED result.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from connector.backend import CalendarBackend, OpOutcome
from connector.errors import MAILBOX_FATAL, ConnectorError, EventNotFoundError, TransientError
from connector.models import (
    Create,
    Delete,
    EventSpec,
    MailboxPlan,
    Op,
    RemoteEvent,
    StoredMapping,
    Target,
    Update,
)
from connector.state import Counts, MailboxResult, MailboxStatus, StateStore
from connector.window import Window


class MailboxExecution:
    """Carries out one mailbox plan: chunks ops to the backend, writes state after each success."""

    def __init__(
        self,
        *,
        store: StateStore,
        backend: CalendarBackend,
        target: Target,
        plan: MailboxPlan,
        window: Window,
        started: datetime,
        quarantined: int,
        clock: Callable[[], datetime],
        new_id: Callable[[], str],
    ) -> None:
        self.store = store
        self.backend = backend
        self.clock = clock
        self.new_id = new_id
        self.target = target
        self.plan = plan
        self.window = window
        self.started = started
        self.created = self.updated = self.deleted = self.failed = 0
        self.quarantined = quarantined
        self.op_errors: list[tuple[str, str]] = []
        self.retryable = False
        self.retry_after: float | None = None

    def counts(self) -> Counts:
        return Counts(
            created=self.created,
            updated=self.updated,
            deleted=self.deleted,
            unchanged=self.plan.unchanged,
            adopted=len(self.plan.adopt),
            failed=self.failed,
            quarantined=self.quarantined,
        )

    def result(
        self, status: MailboxStatus, error: ConnectorError | None = None, code: str | None = None
    ) -> MailboxResult:
        return MailboxResult(
            mailbox=self.target.address,
            status=status,
            counts=self.counts(),
            started_at=self.started,
            finished_at=self.clock(),
            error_code=code or (error.code if error else None),
            error=str(error) if error else None,
            op_errors=tuple(self.op_errors),
            retryable=self.retryable,
            retry_after=self.retry_after,
        )

    def run(self) -> MailboxResult:
        plan = self.plan
        if plan.blocked_reason:
            return self.result(
                MailboxStatus.BLOCKED, ConnectorError(plan.blocked_reason), code="delete_guard"
            )
        if plan.adopt:
            self.store.save_mappings([self._adopted(a.remote, a.source_key) for a in plan.adopt])
        if plan.forget:
            self.store.delete_mappings(self.target.address, list(plan.forget))
        try:
            recreate = self._send(plan.ops)
            if recreate:
                # Events deleted in Outlook that a fast sync tried to update: put them back once.
                self._send([Create(spec, self.new_id()) for spec in recreate])
        except MAILBOX_FATAL as exc:
            return self.result(MailboxStatus.FAILED, exc)
        except _BatchFailed as stop:
            self._note_passing(stop.cause)
            return self.result(MailboxStatus.FAILED, stop.cause)
        return self.result(MailboxStatus.OK)

    def _send(self, ops: Sequence[Op]) -> list[EventSpec]:
        recreate: list[EventSpec] = []
        size = self.backend.max_batch
        for first in range(0, len(ops), size):
            chunk = ops[first : first + size]
            creates = [op for op in chunk if isinstance(op, Create)]
            if creates:
                self.store.save_mappings([self._intent(op) for op in creates])
            try:
                outcomes = self.backend.apply(self.target, chunk)
            except MAILBOX_FATAL:
                raise
            except ConnectorError as exc:
                # The whole batch failed for a passing reason: stop; the next sync picks the rest up.
                self.failed += len(ops) - first
                raise _BatchFailed(exc) from exc
            if len(outcomes) != len(chunk):
                raise ConnectorError(
                    f"backend {self.backend.name} answered {len(outcomes)} outcomes for {len(chunk)} ops"
                )
            recreate += self._record(outcomes)
        return recreate

    def _record(self, outcomes: Iterable[OpOutcome]) -> list[EventSpec]:
        saves: list[StoredMapping] = []
        drops: list[str] = []
        recreate: list[EventSpec] = []
        for outcome in outcomes:
            op = outcome.op
            if outcome.ok:
                if isinstance(op, Delete):
                    drops.append(op.source_key)
                    self.deleted += 1
                else:
                    saves.append(self._pushed(op, outcome))
                    if isinstance(op, Create):
                        self.created += 1
                    else:
                        self.updated += 1
            elif isinstance(op, Delete) and isinstance(outcome.error, EventNotFoundError):
                drops.append(op.source_key)  # already gone: the wanted effect holds
                self.deleted += 1
            elif isinstance(op, Update) and isinstance(outcome.error, EventNotFoundError):
                drops.append(op.source_key)
                if self.window.contains(op.spec.span):
                    recreate.append(op.spec)
            else:
                self.failed += 1
                self.op_errors.append((op.source_key, str(outcome.error)))
                self._note_passing(outcome.error)
        if saves:
            self.store.save_mappings(saves)
        if drops:
            self.store.delete_mappings(self.target.address, drops)
        return recreate

    def _note_passing(self, error: ConnectorError | None) -> None:
        """Remember a passing failure, and the longest wait the server asked for, so the job layer can
        retry the mailbox when the server is ready (DESIGN §5)."""
        if isinstance(error, TransientError):
            self.retryable = True
            if error.retry_after is not None:
                self.retry_after = max(self.retry_after or 0.0, error.retry_after)

    def _bounds(self, spec: EventSpec) -> tuple[datetime, datetime]:
        return spec.span.utc_bounds(self.window.zone)

    def _intent(self, op: Create) -> StoredMapping:
        start, end = self._bounds(op.spec)
        return StoredMapping(
            self.target.address,
            op.spec.source_key,
            None,
            None,
            op.spec.content_hash,
            start,
            end,
            op.transaction_id,
        )

    def _pushed(self, op: Create | Update, outcome: OpOutcome) -> StoredMapping:
        start, end = self._bounds(op.spec)
        return StoredMapping(
            mailbox=self.target.address,
            source_key=op.spec.source_key,
            remote_id=outcome.remote_id or (op.remote_id if isinstance(op, Update) else None),
            change_key=outcome.change_key,
            content_hash=op.spec.content_hash,
            start_utc=start,
            end_utc=end,
            transaction_id=op.transaction_id if isinstance(op, Create) else None,
            last_pushed=self.clock(),
        )

    def _adopted(self, event: RemoteEvent, key: str) -> StoredMapping:
        return StoredMapping(
            self.target.address,
            key,
            event.remote_id,
            event.change_key,
            event.content_hash,
            event.start_utc,
            event.end_utc,
            None,
            self.clock(),
        )


class _BatchFailed(Exception):
    def __init__(self, cause: ConnectorError) -> None:
        super().__init__(str(cause))
        self.cause = cause
