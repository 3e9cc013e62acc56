"""Value types of the core: what the source says, what the calendar should hold, and what to do.

Everything here is frozen and free of I/O. Times are stdlib ``datetime``/``date``: timed spans carry an
aware start and end in an IANA zone (the zone *name* is kept because Exchange wants the zone, not an
offset), all-day spans carry dates with an exclusive end, as Exchange and iCalendar do.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import TypeAlias
from zoneinfo import ZoneInfo


class TargetKind(enum.StrEnum):
    USER = "user"
    ROOM = "room"
    EQUIPMENT = "equipment"


class ShowAs(enum.StrEnum):
    FREE = "free"
    TENTATIVE = "tentative"
    BUSY = "busy"
    OOF = "oof"
    WORKING_ELSEWHERE = "workingElsewhere"


class Sensitivity(enum.StrEnum):
    NORMAL = "normal"
    PERSONAL = "personal"
    PRIVATE = "private"
    CONFIDENTIAL = "confidential"


@dataclass(frozen=True, slots=True)
class TimedSpan:
    """A span with wall-clock times in a named zone. ``start``/``end`` are aware (tzinfo = the zone)."""

    start: datetime
    end: datetime
    timezone: str

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("TimedSpan needs aware datetimes")

    @property
    def is_all_day(self) -> bool:
        return False

    def utc_bounds(self, zone: tzinfo) -> tuple[datetime, datetime]:
        return self.start.astimezone(UTC), self.end.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class AllDaySpan:
    """Whole days ``start`` .. ``end`` (exclusive). Lives in whatever zone the calendar is viewed in."""

    start: date
    end: date

    @property
    def is_all_day(self) -> bool:
        return True

    def utc_bounds(self, zone: tzinfo) -> tuple[datetime, datetime]:
        """All-day dates are floating; ``zone`` (the connector's zone) decides where the days begin."""
        start = datetime.combine(self.start, time(), tzinfo=zone)
        end = datetime.combine(self.end, time(), tzinfo=zone)
        return start.astimezone(UTC), end.astimezone(UTC)


Span: TypeAlias = TimedSpan | AllDaySpan


@dataclass(frozen=True, slots=True)
class ScheduleEntry:
    """One entry as the host application states it, already parsed into typed values."""

    source_key: str
    owner: str
    span: Span
    title: str
    body: str = ""
    location: str = ""
    category: str = ""
    show_as: ShowAs | None = None
    sensitivity: Sensitivity | None = None
    reminder_minutes: int | None = None
    # Extra source columns, usable in the title/body/location templates.
    extra: Mapping[str, str] = field(default_factory=dict)
    # Where the row came from ("schedule.csv:17"), so a quarantine reason can point at it.
    origin: str = ""


@dataclass(frozen=True, slots=True)
class Rejected:
    """A source row that could not become an entry, with a reason an admin can act on."""

    source_key: str
    owner: str
    reason: str
    # Where the row came from (file:line, URL, query row), so it can be found and fixed.
    origin: str = ""


@dataclass(frozen=True, slots=True)
class Target:
    """A mailbox we push into: a person, a room or a piece of equipment."""

    address: str
    owner_key: str
    kind: TargetKind = TargetKind.USER
    enabled: bool = True
    display_name: str = ""


@dataclass(frozen=True, slots=True)
class EventSpec:
    """What the calendar should hold for one source entry. ``content_hash`` covers every rendered field."""

    source_key: str
    mailbox: str
    subject: str
    body: str
    location: str
    span: Span
    categories: tuple[str, ...]
    show_as: ShowAs
    sensitivity: Sensitivity
    reminder_minutes: int | None
    content_hash: str


@dataclass(frozen=True, slots=True)
class StoredMapping:
    """What the state store remembers of an event we pushed.

    ``remote_id`` is ``None`` while a create is only intended (recorded before the remote call, so a
    crash between the call and the state write can be repaired by looking the event up by its tag).
    ``start_utc``/``end_utc`` are the bounds of the event as last pushed: they decide whether the event
    is still inside the window and so may be touched.
    """

    mailbox: str
    source_key: str
    remote_id: str | None
    change_key: str | None
    content_hash: str
    start_utc: datetime
    end_utc: datetime
    transaction_id: str | None = None
    last_pushed: datetime | None = None

    @property
    def is_intent(self) -> bool:
        return self.remote_id is None


@dataclass(frozen=True, slots=True)
class RemoteEvent:
    """An event a backend found in a calendar carrying our ownership tag."""

    remote_id: str
    change_key: str
    source_key: str
    start_utc: datetime
    end_utc: datetime
    # The content hash we stamped on the event when we last wrote it ("" if absent).
    content_hash: str = ""
    subject: str = ""


class OpKind(enum.StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class Create:
    spec: EventSpec
    # Idempotency key for the remote create (Graph ``transactionId``); stable across retries of one intent.
    transaction_id: str
    kind: OpKind = OpKind.CREATE

    @property
    def source_key(self) -> str:
        return self.spec.source_key


@dataclass(frozen=True, slots=True)
class Update:
    spec: EventSpec
    remote_id: str
    change_key: str | None
    reason: str = "content changed"
    kind: OpKind = OpKind.UPDATE

    @property
    def source_key(self) -> str:
        return self.spec.source_key


@dataclass(frozen=True, slots=True)
class Delete:
    mailbox: str
    source_key: str
    remote_id: str
    change_key: str | None
    reason: str = "removed from the source"
    kind: OpKind = OpKind.DELETE


Op: TypeAlias = Create | Update | Delete


@dataclass(frozen=True, slots=True)
class Adopt:
    """A state-only step: remember a tagged event found in the calendar (after a restore or a backend
    switch) whose content is already what we want. No remote write."""

    mailbox: str
    source_key: str
    remote: RemoteEvent


@dataclass(frozen=True, slots=True)
class MailboxPlan:
    """Everything one sync of one mailbox should do."""

    mailbox: str
    ops: tuple[Op, ...] = ()
    adopt: tuple[Adopt, ...] = ()
    # Mappings whose remote event is gone and which will not be re-created (e.g. source entry removed).
    forget: tuple[str, ...] = ()
    unchanged: int = 0
    # Set when the delete guard withheld this mailbox's changes; the run needs --force to go on.
    blocked_reason: str | None = None

    def count(self, kind: OpKind) -> int:
        return sum(1 for op in self.ops if op.kind is kind)

    @property
    def is_empty(self) -> bool:
        return not self.ops and not self.adopt and not self.forget


def utc_now() -> datetime:
    return datetime.now(UTC)


def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; raises ``KeyError`` with the name when it is unknown."""
    try:
        return ZoneInfo(name)
    except (ValueError, OSError, KeyError) as exc:  # zoneinfo raises several types for bad keys
        raise KeyError(name) from exc


ONE_DAY = timedelta(days=1)
