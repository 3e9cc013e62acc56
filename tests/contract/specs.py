"""Small builders for the values the contract tests send. Independent of the renderer on purpose: the
suite tests backends, so it states exactly what it asks the calendar to hold."""

from __future__ import annotations

import hashlib
import uuid
from datetime import date, datetime
from zoneinfo import ZoneInfo

from connector.models import (
    AllDaySpan,
    Create,
    Delete,
    EventSpec,
    Sensitivity,
    ShowAs,
    Span,
    Target,
    TimedSpan,
    Update,
)

BERLIN = "Europe/Berlin"


def timed(start: str, end: str, zone: str = BERLIN) -> TimedSpan:
    """``timed("2027-03-29T09:00", "2027-03-29T17:00")``: wall-clock times in ``zone``."""
    tz = ZoneInfo(zone)
    return TimedSpan(
        datetime.fromisoformat(start).replace(tzinfo=tz), datetime.fromisoformat(end).replace(tzinfo=tz), zone
    )


def all_day(first: str, end_exclusive: str | None = None) -> AllDaySpan:
    """``all_day("2026-12-31")`` is that one day; ``end_exclusive`` is the day after the last."""
    start = date.fromisoformat(first)
    end = date.fromisoformat(end_exclusive) if end_exclusive else date.fromordinal(start.toordinal() + 1)
    return AllDaySpan(start, end)


def spec(
    target: Target,
    source_key: str,
    *,
    span: Span | None = None,
    subject: str | None = None,
    body: str = "",
    location: str = "",
    categories: tuple[str, ...] = ("Schedule",),
    show_as: ShowAs = ShowAs.BUSY,
    sensitivity: Sensitivity = Sensitivity.NORMAL,
    reminder_minutes: int | None = None,
) -> EventSpec:
    subject = subject if subject is not None else f"Shift {source_key}"
    span = span if span is not None else timed("2027-03-29T09:00", "2027-03-29T17:00")
    fields = (subject, body, location, repr(span), categories, show_as, sensitivity, reminder_minutes)
    return EventSpec(
        source_key=source_key,
        mailbox=target.address,
        subject=subject,
        body=body,
        location=location,
        span=span,
        categories=categories,
        show_as=show_as,
        sensitivity=sensitivity,
        reminder_minutes=reminder_minutes,
        content_hash=hashlib.sha256(repr(fields).encode()).hexdigest()[:16],
    )


def create(event: EventSpec, transaction_id: str | None = None) -> Create:
    return Create(event, transaction_id=transaction_id or uuid.uuid4().hex)


def update(event: EventSpec, remote_id: str, change_key: str | None = None) -> Update:
    return Update(event, remote_id=remote_id, change_key=change_key)


def delete(target: Target, source_key: str, remote_id: str, change_key: str | None = None) -> Delete:
    return Delete(target.address, source_key, remote_id=remote_id, change_key=change_key)
