"""The state store port: what we pushed (mappings), what runs did, how each mailbox is doing, and which
source entries are quarantined. The sqlmodel implementation lives in ``adapters/state``.

Rule (DESIGN §4.4): a mapping is written only after the remote call it describes succeeded; before a
create, an *intent* (a mapping without ``remote_id``) is recorded so a crash in between is repaired by
looking the event up by its tag instead of creating it twice.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Protocol

from connector.models import StoredMapping


class SyncMode(enum.StrEnum):
    #: Trust the store; push only the difference (periodic, "update now").
    FAST = "fast"
    #: Also read our tagged events from the calendar; repair drift, adopt, remove duplicates (nightly).
    VERIFY = "verify"


class RunStatus(enum.StrEnum):
    #: Accepted (by the API or the scheduler) and waiting for a worker to read the source.
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    #: Some mailboxes failed or were blocked; the others synced.
    PARTIAL = "partial"
    FAILED = "failed"
    #: The delete guard stopped the run (or some mailboxes); ``--force`` lets it go on.
    BLOCKED = "blocked"

    @property
    def finished(self) -> bool:
        return self not in (RunStatus.QUEUED, RunStatus.RUNNING)


class MailboxStatus(enum.StrEnum):
    OK = "ok"
    FAILED = "failed"
    BLOCKED = "blocked"


@dataclass(frozen=True, slots=True)
class Counts:
    created: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    adopted: int = 0
    failed: int = 0
    quarantined: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(**{name: getattr(self, name) + getattr(other, name) for name in COUNT_NAMES})

    @property
    def writes(self) -> int:
        return self.created + self.updated + self.deleted


#: The names of the counts, in the order reports and tables show them.
COUNT_NAMES: tuple[str, ...] = tuple(f.name for f in fields(Counts))


@dataclass(frozen=True, slots=True)
class MailboxResult:
    mailbox: str
    status: MailboxStatus
    counts: Counts
    started_at: datetime
    finished_at: datetime
    error_code: str | None = None
    error: str | None = None
    #: Per-op failures: (source key, reason).
    op_errors: tuple[tuple[str, str], ...] = ()
    #: Some of the failures were passing ones (throttling, timeouts): the job layer retries the mailbox.
    #: Not stored: a retried mailbox gets a new result.
    retryable: bool = False
    #: The longest wait a server asked for (Retry-After, BackOffMilliseconds), in seconds.
    retry_after: float | None = None


def run_status(results: Sequence[MailboxResult]) -> RunStatus:
    """A finished run's status from its mailboxes' results."""
    if not results:
        return RunStatus.SUCCEEDED
    failed = sum(1 for r in results if r.status is MailboxStatus.FAILED)
    if failed == len(results):
        return RunStatus.FAILED
    if failed or any(r.counts.failed for r in results):
        return RunStatus.PARTIAL
    if any(r.status is MailboxStatus.BLOCKED for r in results):
        return RunStatus.BLOCKED
    return RunStatus.SUCCEEDED


@dataclass(frozen=True, slots=True)
class RunRecord:
    id: int
    trigger: str
    mode: SyncMode
    forced: bool
    status: RunStatus
    started_at: datetime
    finished_at: datetime | None
    mailboxes_total: int
    mailboxes_done: int
    counts: Counts
    error: str | None = None
    results: tuple[MailboxResult, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class MailboxHealth:
    mailbox: str
    status: MailboxStatus
    last_run_id: int | None
    last_run_at: datetime | None
    last_success_at: datetime | None
    error_code: str | None
    error: str | None
    last_counts: Counts


@dataclass(frozen=True, slots=True)
class QuarantineEntry:
    source_key: str
    owner: str
    reason: str
    mailbox: str | None = None
    origin: str = ""
    first_seen: datetime | None = None
    last_seen: datetime | None = None


class StateStore(Protocol):
    # -- mappings -------------------------------------------------------------------------------
    def mappings(self, mailbox: str) -> dict[str, StoredMapping]:
        """All mappings (intents included) of ``mailbox``, by source key."""
        ...

    def save_mappings(self, mappings: Sequence[StoredMapping]) -> None:
        """Insert or replace by (mailbox, source key), in one transaction. Intents are mappings whose
        ``remote_id`` is ``None``."""
        ...

    def delete_mappings(self, mailbox: str, source_keys: Sequence[str]) -> None: ...

    # -- runs ----------------------------------------------------------------------------------
    def start_run(
        self, *, trigger: str, mode: SyncMode, forced: bool, mailboxes_total: int, queued: bool = False
    ) -> int:
        """A new run, RUNNING (or QUEUED when a worker will read the source later)."""
        ...

    def begin_run(self, run_id: int, *, mailboxes_total: int) -> RunRecord:
        """A queued run's source has been read: it is RUNNING over ``mailboxes_total`` mailboxes. A run
        already past that point (a redelivered job) keeps its status."""
        ...

    def record_mailbox_result(self, run_id: int, result: MailboxResult) -> None:
        """Store one mailbox's outcome in the run and update that mailbox's health."""
        ...

    def finish_run(self, run_id: int, *, status: RunStatus, error: str | None = None) -> RunRecord:
        """Close the run; its counts are the sum of its mailbox results."""
        ...

    def finish_run_if_complete(self, run_id: int) -> RunRecord | None:
        """Close a RUNNING run once every mailbox has a result (status from ``run_status``); ``None``
        while mailboxes are outstanding. Safe to call from several workers at once: one closes it."""
        ...

    def run(self, run_id: int) -> RunRecord | None: ...

    def recent_runs(self, limit: int = 10) -> list[RunRecord]: ...

    # -- health and quarantine ---------------------------------------------------------------------
    def health(self) -> list[MailboxHealth]: ...

    def replace_quarantine(self, entries: Sequence[QuarantineEntry], *, owners: Sequence[str] | None) -> None:
        """Make ``entries`` the quarantine: for every owner when ``owners`` is None, else only for the
        listed owners (a partial run must not clear other owners' entries). An entry already present
        keeps its ``first_seen``."""
        ...

    def quarantine(self) -> list[QuarantineEntry]: ...

    def close(self) -> None: ...
