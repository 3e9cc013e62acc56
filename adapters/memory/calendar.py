"""An in-memory stand-in for an Exchange server: mailboxes, their events, and hooks to play the person
sitting at Outlook.

It is both the store behind the embedded default backend (optionally kept in a JSON file between runs)
and the calendar every sync test runs against, so it models the server behaviour the connector relies
on: opaque ids, a new change key on every write, an ownership tag and content hash per event,
``transactionId``-style idempotent creates, and events the person made that we must never touch.

Every public method takes the one lock: sync workers call in from several threads at once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from connector.errors import BadDataError, ConnectorError, EventNotFoundError, MailboxNotFoundError
from connector.models import (
    AllDaySpan,
    EventSpec,
    Op,
    Sensitivity,
    ShowAs,
    Span,
    TimedSpan,
    utc_now,
)

#: Decides, per op, whether the "server" fails it (tests inject throttling, bad data, lost auth...).
FailureRule = Callable[[Op], ConnectorError | None]

_FORMAT = "memory-calendar/1"

#: What a person can change in Outlook. The tag, hash and ids are hidden properties nobody edits by hand.
_USER_EDITABLE = frozenset(
    {"subject", "body", "location", "span", "categories", "show_as", "sensitivity", "reminder_minutes"}
)


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One event as the server holds it. ``tag`` is our source key, ``None`` for an event the person made."""

    id: str
    change_key: str
    subject: str
    body: str
    location: str
    span: Span
    categories: tuple[str, ...]
    show_as: ShowAs
    sensitivity: Sensitivity
    #: ``None`` means the reminder is off.
    reminder_minutes: int | None
    tag: str | None
    content_hash: str
    transaction_id: str | None
    created_at: datetime
    modified_at: datetime


@dataclass(slots=True)
class _Mailbox:
    address: str
    # Insertion order is creation order, which keeps listings and the saved file stable.
    events: dict[str, StoredEvent] = field(default_factory=dict)
    # transaction id -> event id, so a retried create finds the event its first attempt made.
    by_transaction: dict[str, str] = field(default_factory=dict)
    writes: int = 0


def _key(address: str) -> str:
    # Exchange resolves SMTP addresses case-insensitively; so must we, or "Anna@" and "anna@" split.
    return address.strip().lower()


def _new_token() -> str:
    return uuid.uuid4().hex


class MemoryCalendar:
    """Mailboxes and their events.

    ``mailboxes=None`` accepts any address and creates its calendar on first use (the embedded default,
    where there is no directory to ask). With a list, an address outside it raises
    ``MailboxNotFoundError``, as a real tenant does for a typo in the targets list.
    """

    def __init__(
        self,
        zone: tzinfo = UTC,
        mailboxes: Iterable[str] | None = None,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        #: Where all-day dates are placed when an event has to be located in time.
        self.zone = zone
        self._clock = clock
        self._lock = threading.Lock()
        self._open = mailboxes is None
        self._mailboxes: dict[str, _Mailbox] = {}
        self._denied: dict[str, ConnectorError] = {}
        self._failure_rule: FailureRule | None = None
        for address in mailboxes or ():
            self._mailboxes.setdefault(_key(address), _Mailbox(address.strip()))

    # -- mailboxes ---------------------------------------------------------------------------------

    @property
    def accepts_any_mailbox(self) -> bool:
        return self._open

    def mailboxes(self) -> list[str]:
        with self._lock:
            return [box.address for box in self._mailboxes.values()]

    def add_mailbox(self, address: str) -> None:
        """Provision a mailbox (a no-op when it exists), like creating a user in the tenant."""
        with self._lock:
            self._mailboxes.setdefault(_key(address), _Mailbox(address.strip()))

    def check(self, address: str) -> None:
        """Raise the error a server would give for this mailbox as a whole, if any."""
        with self._lock:
            self._access(address)

    def _access(self, address: str) -> _Mailbox:
        """The mailbox as the connector reaches it: a denial wins over everything. Caller holds the lock."""
        denied = self._denied.get(_key(address))
        if denied is not None:
            # The same instance is raised on every call; drop the old traceback so they do not pile up.
            raise denied.with_traceback(None)
        return self._box(address)

    def _box(self, address: str, *, create: bool = True) -> _Mailbox:
        """The mailbox, created on first use in open mode. Caller holds the lock."""
        key = _key(address)
        box = self._mailboxes.get(key)
        if box is None:
            if not self._open:
                raise MailboxNotFoundError(
                    f"mailbox {address!r} does not exist", fix="check the address in the targets list"
                )
            box = _Mailbox(address.strip())
            if create:
                self._mailboxes[key] = box
        return box

    # -- server-side operations (what MemoryBackend calls) -----------------------------------------

    def create(self, address: str, spec: EventSpec, transaction_id: str | None) -> StoredEvent:
        """Store a new event tagged with ``spec.source_key``; a repeated ``transaction_id`` returns the
        event the first attempt made instead of a second copy (Graph's ``transactionId``)."""
        _validate(spec)
        with self._lock:
            box = self._access(address)
            if transaction_id is not None:
                earlier = box.events.get(box.by_transaction.get(transaction_id, ""))
                if earlier is not None:
                    box.writes += 1
                    return earlier
            now = self._clock()
            event = StoredEvent(
                id=_new_token(),
                change_key=_new_token(),
                **_content(spec),
                transaction_id=transaction_id,
                created_at=now,
                modified_at=now,
            )
            box.events[event.id] = event
            if transaction_id is not None:
                box.by_transaction[transaction_id] = event.id
            box.writes += 1
            return event

    def update(self, address: str, event_id: str, spec: EventSpec) -> StoredEvent:
        """Replace the content of our event ``event_id``. No change-key check: the source is master, so an
        edit made in Outlook since we last wrote is overwritten on purpose."""
        _validate(spec)
        with self._lock:
            box = self._access(address)
            current = self._ours(box, event_id)
            event = dataclasses.replace(
                current,
                change_key=_new_token(),
                **_content(spec),
                modified_at=self._clock(),
            )
            box.events[event_id] = event
            box.writes += 1
            return event

    def delete(self, address: str, event_id: str) -> None:
        with self._lock:
            box = self._access(address)
            self._ours(box, event_id)
            del box.events[event_id]
            box.writes += 1

    def tagged(self, address: str) -> list[StoredEvent]:
        """Every event carrying our tag, whatever its tag value."""
        with self._lock:
            box = self._access(address)
            return [event for event in box.events.values() if event.tag is not None]

    def failure_for(self, op: Op) -> ConnectorError | None:
        with self._lock:
            rule = self._failure_rule
        # Outside the lock: a rule may itself call back into the calendar (e.g. to look at events).
        return rule(op) if rule is not None else None

    @staticmethod
    def _ours(box: _Mailbox, event_id: str) -> StoredEvent:
        event = box.events.get(event_id)
        if event is None:
            raise EventNotFoundError(
                f"event {event_id} is not in the calendar of {box.address} (deleted in Outlook?)"
            )
        if event.tag is None:
            # Reported like a missing event so the caller treats it as gone and never retries a write.
            raise EventNotFoundError(
                f"event {event_id} in {box.address} does not carry the connector's tag; left untouched"
            )
        return event

    # -- test hooks: the person at Outlook, and failure injection ----------------------------------

    def add_foreign_event(self, mailbox: str, subject: str, span: Span) -> str:
        """An event the person made themselves: no tag, so the connector must never touch it."""
        with self._lock:
            box = self._box(mailbox)
            now = self._clock()
            event = StoredEvent(
                id=_new_token(),
                change_key=_new_token(),
                subject=subject,
                body="",
                location="",
                span=span,
                categories=(),
                show_as=ShowAs.BUSY,
                sensitivity=Sensitivity.NORMAL,
                reminder_minutes=15,
                tag=None,
                content_hash="",
                transaction_id=None,
                created_at=now,
                modified_at=now,
            )
            box.events[event.id] = event
            return event.id

    def events(self, mailbox: str) -> list[StoredEvent]:
        """Everything in the calendar, foreign events included, in creation order."""
        with self._lock:
            return list(self._box(mailbox, create=False).events.values())

    def outlook_edit(self, mailbox: str, event_id: str, **changes: Any) -> StoredEvent:
        """Simulate the person editing an event in Outlook: new change key, tag and hash kept."""
        unknown = set(changes) - _USER_EDITABLE
        if unknown:
            raise ValueError(f"not editable in Outlook: {', '.join(sorted(unknown))}")
        with self._lock:
            box = self._box(mailbox, create=False)
            current = box.events.get(event_id)
            if current is None:
                raise KeyError(f"no event {event_id} in {mailbox}")
            event = dataclasses.replace(
                current, change_key=_new_token(), modified_at=self._clock(), **changes
            )
            box.events[event_id] = event
            return event

    def outlook_delete(self, mailbox: str, event_id: str) -> None:
        """Simulate the person deleting an event in Outlook (tagged or not)."""
        with self._lock:
            box = self._box(mailbox, create=False)
            if box.events.pop(event_id, None) is None:
                raise KeyError(f"no event {event_id} in {mailbox}")

    def deny(self, mailbox: str, error: ConnectorError) -> None:
        """Every probe, apply, list and find on ``mailbox`` raises ``error`` until ``allow`` is called."""
        with self._lock:
            self._denied[_key(mailbox)] = error

    def allow(self, mailbox: str) -> None:
        with self._lock:
            self._denied.pop(_key(mailbox), None)

    def fail_ops(self, rule: FailureRule | None) -> None:
        """Fail single ops: ``rule(op)`` returns the error for that op, or ``None`` to let it through.

        A mailbox-wide error (``MAILBOX_FATAL``) is raised by ``apply`` at that op, after the earlier ops
        of the batch were applied — their outcomes are lost, as when a connection dies mid-batch.
        ``None`` removes the rule.
        """
        with self._lock:
            self._failure_rule = rule

    def writes(self, mailbox: str) -> int:
        """How many ops were applied successfully to ``mailbox`` (for "zero remote writes" assertions)."""
        with self._lock:
            box = self._mailboxes.get(_key(mailbox))
            return box.writes if box is not None else 0

    # -- persistence -------------------------------------------------------------------------------

    @classmethod
    def load(cls, path: Path, zone: tzinfo = UTC) -> MemoryCalendar:
        """The calendar saved at ``path``; an empty one accepting any mailbox when there is no file yet."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return cls(zone)
        except OSError as exc:
            raise ConnectorError(
                f"cannot read the memory calendar file {path}: {exc.strerror or exc}",
                fix="check that the connector may read it",
            ) from exc
        try:
            doc = json.loads(text)
            if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
                raise ValueError(f"not a {_FORMAT} document")
            calendar = cls(zone, None if doc["open"] else ())
            for raw_box in doc["mailboxes"]:
                box = _Mailbox(str(raw_box["address"]))
                for raw_event in raw_box["events"]:
                    event = _decode_event(raw_event)
                    box.events[event.id] = event
                    if event.transaction_id is not None:
                        box.by_transaction[event.transaction_id] = event.id
                calendar._mailboxes[_key(box.address)] = box
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            # ZoneInfoNotFoundError is a KeyError; json.JSONDecodeError a ValueError.
            raise ConnectorError(
                f"the memory calendar file {path} is corrupt ({type(exc).__name__}: {exc})",
                fix=f"delete {path} to start over with empty calendars",
            ) from exc
        return calendar

    def save(self, path: Path) -> None:
        """Write every mailbox to ``path`` atomically: a crash leaves the old file or the new, never half."""
        path = Path(path)
        # The lock is held through the write so that two savers cannot replace a newer file with an
        # older snapshot.
        with self._lock:
            doc = {
                "format": _FORMAT,
                "open": self._open,
                "mailboxes": [
                    {"address": box.address, "events": [_encode_event(e) for e in box.events.values()]}
                    for box in self._mailboxes.values()
                ],
            }
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
                try:
                    with os.fdopen(fd, "w", encoding="utf-8") as tmp:
                        json.dump(doc, tmp, ensure_ascii=False, indent=1)
                        tmp.flush()
                        os.fsync(tmp.fileno())
                    os.replace(tmp_name, path)
                except BaseException:
                    with contextlib.suppress(OSError):
                        os.unlink(tmp_name)
                    raise
            except OSError as exc:
                raise ConnectorError(
                    f"cannot save the memory calendar to {path}: {exc.strerror or exc}",
                    fix="check that the folder exists and the connector may write to it",
                ) from exc


def _validate(spec: EventSpec) -> None:
    """Reject what Exchange rejects, so the memory backend does not accept data the real ones refuse."""
    span = spec.span
    if isinstance(span, TimedSpan):
        # A zero-length event is allowed (Exchange keeps it as a point in time).
        if span.end < span.start:
            raise BadDataError(f"event {spec.source_key!r} ends before it starts", field="end")
    elif span.end <= span.start:
        raise BadDataError(f"all-day event {spec.source_key!r} must cover at least one day", field="end")


# -- JSON encoding -----------------------------------------------------------------------------------


def _encode_instant(value: datetime) -> dict[str, str | None]:
    # The ISO value pins the instant; the zone key restores the tzinfo (and with it the wall clock and
    # fold) exactly. A tzinfo without a key (fixed offset) is fully described by the ISO offset.
    zone = value.tzinfo
    return {"at": value.isoformat(), "zone": zone.key if isinstance(zone, ZoneInfo) else None}


def _decode_instant(raw: dict[str, Any]) -> datetime:
    value = datetime.fromisoformat(raw["at"])
    if value.tzinfo is None:
        raise ValueError(f"time without offset: {raw['at']!r}")
    zone_key = raw["zone"]
    return value.astimezone(ZoneInfo(zone_key)) if zone_key is not None else value


def _encode_span(span: Span) -> dict[str, Any]:
    if isinstance(span, TimedSpan):
        return {
            "kind": "timed",
            "timezone": span.timezone,
            "start": _encode_instant(span.start),
            "end": _encode_instant(span.end),
        }
    return {"kind": "all_day", "start": span.start.isoformat(), "end": span.end.isoformat()}


def _decode_span(raw: dict[str, Any]) -> Span:
    kind = raw["kind"]
    if kind == "timed":
        return TimedSpan(_decode_instant(raw["start"]), _decode_instant(raw["end"]), str(raw["timezone"]))
    if kind == "all_day":
        return AllDaySpan(date.fromisoformat(raw["start"]), date.fromisoformat(raw["end"]))
    raise ValueError(f"unknown span kind {kind!r}")


def _encode_event(event: StoredEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "change_key": event.change_key,
        "subject": event.subject,
        "body": event.body,
        "location": event.location,
        "span": _encode_span(event.span),
        "categories": list(event.categories),
        "show_as": event.show_as.value,
        "sensitivity": event.sensitivity.value,
        "reminder_minutes": event.reminder_minutes,
        "tag": event.tag,
        "content_hash": event.content_hash,
        "transaction_id": event.transaction_id,
        "created_at": event.created_at.isoformat(),
        "modified_at": event.modified_at.isoformat(),
    }


def _decode_event(raw: dict[str, Any]) -> StoredEvent:
    reminder = raw["reminder_minutes"]
    if reminder is not None and not isinstance(reminder, int):
        raise TypeError(f"reminder_minutes must be a number or null, not {reminder!r}")
    return StoredEvent(
        id=_text(raw["id"]),
        change_key=_text(raw["change_key"]),
        subject=_text(raw["subject"]),
        body=_text(raw["body"]),
        location=_text(raw["location"]),
        span=_decode_span(raw["span"]),
        categories=tuple(_text(c) for c in raw["categories"]),
        show_as=ShowAs(raw["show_as"]),
        sensitivity=Sensitivity(raw["sensitivity"]),
        reminder_minutes=reminder,
        tag=_optional_text(raw["tag"]),
        content_hash=_text(raw["content_hash"]),
        transaction_id=_optional_text(raw["transaction_id"]),
        created_at=datetime.fromisoformat(raw["created_at"]),
        modified_at=datetime.fromisoformat(raw["modified_at"]),
    )


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected text, found {value!r}")
    return value


def _optional_text(value: object) -> str | None:
    return None if value is None else _text(value)


def _content(spec: EventSpec) -> dict[str, Any]:
    """The fields of an event that a create or an update takes from the spec."""
    return {
        "subject": spec.subject,
        "body": spec.body,
        "location": spec.location,
        "span": spec.span,
        "categories": tuple(spec.categories),
        "show_as": spec.show_as,
        "sensitivity": spec.sensitivity,
        "reminder_minutes": spec.reminder_minutes,
        "tag": spec.source_key,
        "content_hash": spec.content_hash,
    }
