"""EventSpec ↔ exchangelib CalendarItem. The ownership tag and the content hash are named extended
properties in our property set (``connector.ownership``): the very properties the Graph backend reads, so
events survive a backend switch.

Pushed events have no attendees, ``IsResponseRequested`` false and reminders off unless the spec has one
(DESIGN §4.7). Timed events carry their IANA zone (exchangelib sends the Windows zone); all-day events are
midnights in the connector's zone, flagged all-day.
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from exchangelib import CalendarItem, ExtendedProperty  # type: ignore[import-untyped]
from exchangelib.ewsdatetime import EWSDateTime, EWSTimeZone  # type: ignore[import-untyped]
from exchangelib.properties import Body  # type: ignore[import-untyped]

from connector.errors import BadDataError
from connector.models import AllDaySpan, EventSpec, RemoteEvent, Sensitivity, ShowAs, TimedSpan
from connector.ownership import CONTENT_HASH, PROPERTY_SET, SOURCE_KEY

#: Attribute names on CalendarItem. Prefixed: exchangelib's registry is process-wide, and tests (or other
#: code) may register their own ``source_key`` for the same property.
TAG_FIELD = "connector_source_key"
HASH_FIELD = "connector_content_hash"

FREE_BUSY = {
    ShowAs.FREE: "Free",
    ShowAs.TENTATIVE: "Tentative",
    ShowAs.BUSY: "Busy",
    ShowAs.OOF: "OOF",
    ShowAs.WORKING_ELSEWHERE: "WorkingElsewhere",
}
SENSITIVITY = {
    Sensitivity.NORMAL: "Normal",
    Sensitivity.PERSONAL: "Personal",
    Sensitivity.PRIVATE: "Private",
    Sensitivity.CONFIDENTIAL: "Confidential",
}
#: Every field a create or an update writes (an update rewrites them all: the source is master).
WRITTEN = (
    "subject",
    "body",
    "location",
    "categories",
    "legacy_free_busy_status",
    "sensitivity",
    "reminder_is_set",
    "reminder_minutes_before_start",
    "is_response_requested",
    "is_all_day",
    "start",
    "end",
    "_start_timezone",
    "_end_timezone",
    TAG_FIELD,
    HASH_FIELD,
)
#: What reads ask for: enough to build a RemoteEvent (the zones place all-day dates).
READ = (
    "id",
    "changekey",
    "subject",
    "start",
    "end",
    "is_all_day",
    "_start_timezone",
    "_end_timezone",
    TAG_FIELD,
    HASH_FIELD,
)

# Characters XML 1.0 cannot carry. The renderer already drops them; this keeps the adapter safe on its own
# (exchangelib would turn them into "?").
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


class SourceKeyProperty(ExtendedProperty):  # type: ignore[misc]
    property_set_id = PROPERTY_SET
    property_name = SOURCE_KEY
    property_type = "String"


class ContentHashProperty(ExtendedProperty):  # type: ignore[misc]
    property_set_id = PROPERTY_SET
    property_name = CONTENT_HASH
    property_type = "String"


_registered = threading.Lock()


def register_properties() -> None:
    """Register our two properties on CalendarItem once per process."""
    with _registered:
        names = {f.name for f in CalendarItem.FIELDS}
        if TAG_FIELD not in names:
            CalendarItem.register(TAG_FIELD, SourceKeyProperty)
        if HASH_FIELD not in names:
            CalendarItem.register(HASH_FIELD, ContentHashProperty)


def clean_text(text: str) -> str:
    return _XML_INVALID.sub("\ufffd", text)


def span_problem(spec: EventSpec) -> BadDataError | None:
    """What Exchange would refuse about the span (exchangelib refuses end < start before sending)."""
    span = spec.span
    if span.end < span.start:
        return BadDataError(f"the event ends ({span.end}) before it starts ({span.start})", field="end")
    return None


def _times(spec: EventSpec, all_day_zone: str) -> dict[str, Any]:
    span = spec.span
    if isinstance(span, AllDaySpan):
        zone = EWSTimeZone(all_day_zone)
        start = EWSDateTime.combine(span.start, time()).replace(tzinfo=zone)
        end = EWSDateTime.combine(span.end, time()).replace(tzinfo=zone)
        return {
            "is_all_day": True,
            "start": start,
            "end": end,
            "_start_timezone": zone,
            "_end_timezone": zone,
        }
    assert isinstance(span, TimedSpan)
    zone = EWSTimeZone(span.timezone)
    return {
        "is_all_day": False,
        "start": _wall_clock(span.start, span.timezone, zone),
        "end": _wall_clock(span.end, span.timezone, zone),
        "_start_timezone": zone,
        "_end_timezone": zone,
    }


def _wall_clock(moment: datetime, name: str, zone: Any) -> Any:
    local = moment.astimezone(ZoneInfo(name))
    return EWSDateTime(
        local.year,
        local.month,
        local.day,
        local.hour,
        local.minute,
        local.second,
        fold=local.fold,
        tzinfo=zone,
    )


def item_values(spec: EventSpec, all_day_zone: str) -> dict[str, Any]:
    return {
        "subject": clean_text(spec.subject),
        "body": Body(clean_text(spec.body)),
        "location": clean_text(spec.location),
        "categories": [clean_text(c) for c in spec.categories] or None,
        "legacy_free_busy_status": FREE_BUSY[spec.show_as],
        "sensitivity": SENSITIVITY[spec.sensitivity],
        "reminder_is_set": spec.reminder_minutes is not None,
        "reminder_minutes_before_start": spec.reminder_minutes or 0,
        "is_response_requested": False,
        TAG_FIELD: spec.source_key,
        HASH_FIELD: spec.content_hash,
        **_times(spec, all_day_zone),
    }


def new_item(account: Any, folder: Any, spec: EventSpec, all_day_zone: str) -> Any:
    return CalendarItem(account=account, folder=folder, **item_values(spec, all_day_zone))


def changed_item(account: Any, item_id: str, change_key: str, spec: EventSpec, all_day_zone: str) -> Any:
    return CalendarItem(account=account, id=item_id, changekey=change_key, **item_values(spec, all_day_zone))


def _bound(value: datetime | date, zone: str, *, end: bool, all_day: bool) -> datetime:
    if all_day and not isinstance(value, datetime):
        # exchangelib hands all-day bounds back as dates (the end as the last day): place them in our zone.
        day = value + timedelta(days=1) if end else value
        return datetime.combine(day, time(), ZoneInfo(zone)).astimezone(UTC)
    if isinstance(value, datetime):
        # Via the timestamp: EWSDateTime.astimezone accepts EWSTimeZone only, and we hand out plain datetimes.
        return datetime.fromtimestamp(value.timestamp(), UTC)
    return datetime.combine(value, time(), ZoneInfo(zone)).astimezone(UTC)


def remote_event(item: Any, all_day_zone: str) -> RemoteEvent | None:
    """Our view of a found item, or None when it does not carry our tag."""
    key = getattr(item, TAG_FIELD, None)
    if not key:
        return None
    all_day = bool(item.is_all_day)
    return RemoteEvent(
        remote_id=str(item.id),
        change_key=str(item.changekey or ""),
        source_key=str(key),
        start_utc=_bound(item.start, all_day_zone, end=False, all_day=all_day),
        end_utc=_bound(item.end, all_day_zone, end=True, all_day=all_day),
        content_hash=str(getattr(item, HASH_FIELD, None) or ""),
        subject=str(item.subject or ""),
    )
