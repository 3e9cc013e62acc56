"""The Dramatiq actors of a sync (DESIGN §5).

* ``start_run`` is the fan-out: it reads the source once (quarantine, the run's mailboxes, the source's
  size for the delete guard) and triggers one mailbox job per mailbox. Triggers coalesce: a mailbox
  whose sync is already pending gets this run added to that pending sync instead of a second job.
* ``sync_mailbox`` syncs one mailbox under its exclusive lock and records the result in every run the
  sync serves. Passing failures (throttling, timeouts) are retried after the server's ``Retry-After``
  or with exponential back-off; a mailbox whose lock is held comes back shortly without counting as
  a failure.
* ``mailbox_gave_up`` / ``run_gave_up`` are the dead-letter path: after the last retry the mailbox is
  recorded FAILED (and so marked unhealthy) with the reason, in every run that waited for it.

Actors are declared on an explicit broker by ``declare``; the process's services (engine, store) are
built lazily on the first message, so a worker only pays for them once it has work.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from dramatiq import Actor, Broker, Retry
from dramatiq.middleware import CurrentMessage

from connector.errors import SettingsError, UsageError
from connector.models import utc_now
from connector.state import Counts, MailboxResult, MailboxStatus, RunStatus, StateStore, SyncMode
from connector.sync import SyncEngine, SyncRequest
from jobs.broker import QUEUE
from jobs.coordination import Coordinator, Ticket

log = logging.getLogger(__name__)

#: How long a job waits before trying again a mailbox another worker is syncing.
LOCK_RETRY_MS = 2_000


class Services(Protocol):
    @property
    def engine(self) -> SyncEngine: ...

    @property
    def store(self) -> StateStore: ...


@dataclass(frozen=True, slots=True)
class JobLimits:
    threads: int
    max_retries: int
    mailbox_time_limit_s: int
    run_time_limit_s: int


class JobContext:
    """What a worker process shares between its threads: the coordinator and, built on first use,
    the services. Also keeps the count of syncs running in this process, checked against ``threads``."""

    def __init__(
        self,
        coordinator: Coordinator,
        store: StateStore,
        services: Callable[[], Services],
        limits: JobLimits,
    ) -> None:
        self.coordinator = coordinator
        #: Enough to record outcomes even when the services cannot be built (bad backend settings).
        self.store = store
        self.limits = limits
        self.worker_id = f"{socket.gethostname()}-{os.getpid()}"
        self._factory = services
        self._services: Services | None = None
        self._mutex = threading.Lock()

    @property
    def services(self) -> Services:
        with self._mutex:
            if self._services is None:
                self._services = self._factory()
            return self._services

    def close(self) -> Services | None:
        with self._mutex:
            services, self._services = self._services, None
            return services


@dataclass(frozen=True, slots=True)
class Actors:
    start_run: Actor[..., None]
    sync_mailbox: Actor[..., None]
    mailbox_gave_up: Actor[..., None]
    run_gave_up: Actor[..., None]


def declare(broker: Broker, context: JobContext) -> Actors:
    limits = context.limits

    def start_run(run_id: int, users: list[str], mode: str, force: bool, trigger: str) -> None:
        try:
            services = context.services
        except (UsageError, SettingsError) as exc:
            # Retrying cannot mend settings: the run fails now, with the reason, and is not retried.
            context.store.finish_run(run_id, status=RunStatus.FAILED, error=str(exc))
            raise
        request = SyncRequest(SyncMode(mode), tuple(users), force, trigger)
        loaded = services.engine.open_run(run_id, request)
        if loaded is None:
            return  # the run is FAILED with the source's error; nothing was touched
        items = loaded.prepared.source_items
        for target in loaded.selected:
            trig = context.coordinator.trigger(
                target.address, run_id, mode=request.mode, force=force, source_items=items
            )
            if trig.opened:
                actors.sync_mailbox.send(target.address, trig.ticket_id)
                context.coordinator.mark_sent(trig.ticket_id)
        # A run over no mailbox at all is complete at once.
        context.store.finish_run_if_complete(run_id)

    def sync_mailbox(mailbox: str, ticket_id: str) -> None:
        lease = context.coordinator.lock(mailbox)
        if lease is None:
            # Another worker syncs this mailbox right now: come back, without counting a failure.
            # The retries already spent go along: waiting must not reset them.
            actors.sync_mailbox.send_with_options(
                args=(mailbox, ticket_id), delay=LOCK_RETRY_MS, retries=_retries_done()
            )
            return
        running = context.coordinator.job_started(context.worker_id)
        try:
            if running > limits.threads:
                log.error(
                    "%d syncs running in this worker, more than its %d threads", running, limits.threads
                )
            ticket = context.coordinator.claim(mailbox, ticket_id)
            if ticket is None:
                return  # a duplicate delivery of a sync that already finished
            _sync(ticket)
        except Retry:
            raise
        except BaseException as exc:
            # Kept for the dead-letter path, which has only the message, not the exception.
            context.coordinator.note_error(ticket_id, _reason(exc))
            raise
        finally:
            context.coordinator.job_ended(context.worker_id)
            lease.release()

    def _sync(ticket: Ticket) -> None:
        services = context.services
        request = SyncRequest(ticket.mode, (ticket.mailbox,), ticket.force, trigger="job")
        result = services.engine.sync_one(ticket.mailbox, request, source_items=ticket.source_items)
        if result.retryable and _retries_done() < limits.max_retries:
            # Part of the work waits for the server: try the mailbox again when it is ready. The result
            # is not recorded yet: the runs wait for the retry's.
            context.coordinator.note_error(ticket.id, _summary(result))
            delay = int(result.retry_after * 1000) if result.retry_after else None
            raise Retry(f"{ticket.mailbox}: {_summary(result)}", delay=delay)
        _record(ticket, result)

    def _record(ticket: Ticket, result: MailboxResult) -> None:
        store = context.store
        for run_id in ticket.run_ids:
            store.record_mailbox_result(run_id, result)
            store.finish_run_if_complete(run_id)
        context.coordinator.finish(ticket.id)

    def mailbox_gave_up(message: dict[str, Any], info: dict[str, Any]) -> None:
        mailbox, ticket_id = message["args"]
        ticket = context.coordinator.ticket(ticket_id)
        if ticket is None:
            return
        now = utc_now()
        reason = ticket.last_error or "the sync kept failing"
        result = MailboxResult(
            mailbox=mailbox,
            status=MailboxStatus.FAILED,
            counts=Counts(),
            started_at=now,
            finished_at=now,
            error_code="gave_up",
            error=f"gave up after {info.get('retries', 0) + 1} attempts: {reason}",
        )
        _record(ticket, result)

    def run_gave_up(message: dict[str, Any], info: dict[str, Any]) -> None:
        run_id = message["args"][0]
        store = context.store
        record = store.run(run_id)
        if record is not None and not record.status.finished:
            store.finish_run(
                run_id,
                status=RunStatus.FAILED,
                error=f"reading the source failed {info.get('retries', 0) + 1} times; see the worker log",
            )

    common: dict[str, Any] = {"queue_name": QUEUE, "priority": 0}
    actors = Actors(
        start_run=Actor(
            start_run,
            broker=broker,
            actor_name="connector.start_run",
            options={
                "time_limit": limits.run_time_limit_s * 1000,
                "throws": (UsageError, SettingsError),
                "on_retry_exhausted": "connector.run_gave_up",
            },
            **common,
        ),
        sync_mailbox=Actor(
            sync_mailbox,
            broker=broker,
            actor_name="connector.sync_mailbox",
            options={
                "time_limit": limits.mailbox_time_limit_s * 1000,
                "max_retries": limits.max_retries,
                "on_retry_exhausted": "connector.mailbox_gave_up",
            },
            **common,
        ),
        mailbox_gave_up=Actor(
            mailbox_gave_up, broker=broker, actor_name="connector.mailbox_gave_up", options={}, **common
        ),
        run_gave_up=Actor(
            run_gave_up, broker=broker, actor_name="connector.run_gave_up", options={}, **common
        ),
    )
    return actors


def _retries_done() -> int:
    message = CurrentMessage.get_current_message()
    return int(message.options.get("retries", 0)) if message is not None else 0


def _summary(result: MailboxResult) -> str:
    if result.error:
        return result.error
    if result.op_errors:
        key, reason = result.op_errors[0]
        more = f" (and {len(result.op_errors) - 1} more)" if len(result.op_errors) > 1 else ""
        return f"{key}: {reason}{more}"
    return "passing failures"


def _reason(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
