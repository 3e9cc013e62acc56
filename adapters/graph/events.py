"""EventSpec ↔ Microsoft Graph event JSON. Pure functions; the wire format is plain JSON because every
write travels inside a ``$batch`` body anyway.

Pushed events never carry attendees (Graph cannot suppress invitations), ``responseRequested`` is false,
and reminders are off unless the spec asks for one (DESIGN §4.7).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from connector.errors import BadDataError
from connector.models import AllDaySpan, EventSpec, RemoteEvent, TimedSpan
from connector.ownership import CONTENT_HASH, SOURCE_KEY, graph_property_id

TAG_ID = graph_property_id(SOURCE_KEY)
HASH_ID = graph_property_id(CONTENT_HASH)
#: ``$expand`` that returns our two properties with each event.
EXPAND = f"singleValueExtendedProperties($filter=id eq '{TAG_ID}' or id eq '{HASH_ID}')"
SELECT = "id,changeKey,subject,start,end,isAllDay"


def _when(moment: str, zone: str) -> dict[str, str]:
    return {"dateTime": moment, "timeZone": zone}


def event_json(spec: EventSpec, *, all_day_zone: str, transaction_id: str | None = None) -> dict[str, Any]:
    """The body of a POST (with ``transaction_id``) or PATCH of one event."""
    span = spec.span
    if isinstance(span, AllDaySpan):
        start = _when(f"{span.start.isoformat()}T00:00:00", all_day_zone)
        end = _when(f"{span.end.isoformat()}T00:00:00", all_day_zone)
    else:
        assert isinstance(span, TimedSpan)
        start = _when(span.start.replace(tzinfo=None).isoformat(timespec="seconds"), span.timezone)
        end = _when(span.end.replace(tzinfo=None).isoformat(timespec="seconds"), span.timezone)
    body: dict[str, Any] = {
        "subject": spec.subject,
        "body": {"contentType": "text", "content": spec.body},
        "location": {"displayName": spec.location},
        "start": start,
        "end": end,
        "isAllDay": span.is_all_day,
        "categories": list(spec.categories),
        "showAs": spec.show_as.value,
        "sensitivity": spec.sensitivity.value,
        "isReminderOn": spec.reminder_minutes is not None,
        "reminderMinutesBeforeStart": spec.reminder_minutes or 0,
        "responseRequested": False,
        "attendees": [],
        "singleValueExtendedProperties": [
            {"id": TAG_ID, "value": spec.source_key},
            {"id": HASH_ID, "value": spec.content_hash},
        ],
    }
    if transaction_id is not None:
        body["transactionId"] = transaction_id
    return body


_FRACTION = re.compile(r"(\.\d{1,6})\d*$")


def _instant(value: dict[str, Any], field: str) -> datetime:
    """A Graph dateTimeTimeZone as an aware UTC datetime (Graph writes 7 fractional digits)."""
    try:
        moment = datetime.fromisoformat(_FRACTION.sub(r"\1", str(value["dateTime"])).removesuffix("Z"))
        zone_name = str(value.get("timeZone") or "UTC")
        zone = UTC if zone_name in {"UTC", "tzone://Microsoft/Utc"} else ZoneInfo(zone_name)
    except (KeyError, TypeError, ValueError) as exc:
        raise BadDataError(f"Graph returned an unreadable {field}: {value!r}", field=field) from exc
    return moment.replace(tzinfo=zone).astimezone(UTC)


def _property(event: dict[str, Any], property_id: str) -> str | None:
    for prop in event.get("singleValueExtendedProperties") or ():
        # Graph echoes ids with its own casing of the GUID; the name part is what is case-sensitive.
        if str(prop.get("id", "")).lower() == property_id.lower():
            return str(prop.get("value", ""))
    return None


def _all_day(value: dict[str, Any], field: str, zone: str) -> datetime:
    """All-day events float: Graph gives their midnights in whatever zone was asked for, so only the
    date counts, and it is placed in the connector's zone (as ``AllDaySpan.utc_bounds`` does)."""
    try:
        day = datetime.fromisoformat(str(value["dateTime"])[:10])
    except (KeyError, TypeError, ValueError) as exc:
        raise BadDataError(f"Graph returned an unreadable {field}: {value!r}", field=field) from exc
    return day.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)


def remote_event(event: dict[str, Any], *, all_day_zone: str) -> RemoteEvent | None:
    """Our view of a Graph event, or None if it does not carry our tag."""
    key = _property(event, TAG_ID)
    if not key:
        return None
    bounds = (
        (
            _all_day(event.get("start") or {}, "start", all_day_zone),
            _all_day(event.get("end") or {}, "end", all_day_zone),
        )
        if event.get("isAllDay")
        else (_instant(event.get("start") or {}, "start"), _instant(event.get("end") or {}, "end"))
    )
    return RemoteEvent(
        remote_id=str(event["id"]),
        change_key=str(event.get("changeKey") or event.get("@odata.etag") or ""),
        source_key=key,
        start_utc=bounds[0],
        end_utc=bounds[1],
        content_hash=_property(event, HASH_ID) or "",
        subject=str(event.get("subject") or ""),
    )
