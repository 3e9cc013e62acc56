"""Store items ↔ Graph event JSON, and the time-zone rules between them.

The store keeps UTC instants plus the IANA zone an item was written in. Graph speaks wall clock plus a
zone name, IANA or Windows ("W. Europe Standard Time"); it answers a GET in UTC unless
``Prefer: outlook.timezone`` asks otherwise, and a POST/PATCH in the zone the event was written in.
All-day events are floating dates: they read as midnight to midnight whatever zone is asked for.
"""

from __future__ import annotations

import hashlib
import html
import re
import uuid
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from exchangelib.winzone import IANA_TO_MS_TIMEZONE_MAP, MS_TIMEZONE_TO_IANA_MAP  # type: ignore[import-untyped]

from sandbox.graph.errors import GraphError, bad_request
from sandbox.tenant import Item, PropKey, prop_key

_FRACTION = re.compile(r"(\.\d{1,6})\d*")
_PROP_ID = re.compile(r"^\s*(\w+)\s+\{([0-9a-fA-F-]{36})\}\s+Name\s+(.+?)\s*$")
_SHOW_AS = ("free", "tentative", "busy", "oof", "workingElsewhere", "unknown")
_SENSITIVITY = ("normal", "personal", "private", "confidential")


# -- time zones ------------------------------------------------------------------------------------------
def iana_zone(name: str) -> str:
    """An IANA name for a Graph ``timeZone`` (IANA or Windows); 400 TimeZoneNotSupportedException if none."""
    name = (name or "UTC").strip()
    if name.upper() in ("UTC", "Z", "ETC/UTC", "GMT"):
        return "UTC"
    if name in MS_TIMEZONE_TO_IANA_MAP:
        return str(MS_TIMEZONE_TO_IANA_MAP[name])
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise GraphError(
            400,
            "TimeZoneNotSupportedException",
            f"A valid TimeZone value must be specified. The following TimeZone value is not supported: '{name}'.",
        ) from None
    return name


def windows_zone(iana: str) -> str:
    found = IANA_TO_MS_TIMEZONE_MAP.get(iana)
    return str(found[0]) if found else "UTC"


def parse_wall_clock(text: str, zone: str) -> datetime:
    """Graph's ``dateTime`` (``2026-05-04T09:00:00.0000000``, an offset if any wins over the zone) → UTC."""
    if not isinstance(text, str):
        raise bad_request("dateTime must be a string.", "ErrorInvalidRequest")
    cleaned = _FRACTION.sub(r"\1", text.strip().replace("Z", "+00:00"))
    try:
        value = datetime.fromisoformat(cleaned)
    except ValueError:
        raise bad_request(
            f"Cannot convert the literal '{text}' to a date and time.", "ErrorInvalidRequest"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(zone))
    return value.astimezone(UTC)


def parse_instant(text: str) -> datetime:
    """A query-string or ``$filter`` instant: with an offset as given, without one as UTC."""
    return parse_wall_clock(text, "UTC")


def format_wall_clock(instant: datetime, zone: str) -> str:
    return instant.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M:%S.0000000")


def format_instant(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{instant.microsecond:06d}0Z"


# -- extended properties ---------------------------------------------------------------------------------
def parse_prop_id(text: str) -> PropKey:
    """``String {GUID} Name SourceKey`` → the store's key (GUID case-insensitive, name case-sensitive)."""
    match = _PROP_ID.match(text or "")
    if match is None:
        raise bad_request(
            f"The extended property id '{text}' is not supported; use 'Type {{GUID}} Name name'.",
            "ErrorInvalidProperty",
        )
    return prop_key(match.group(2), match.group(3), match.group(1).capitalize())


def format_prop_id(key: PropKey) -> str:
    return f"{key[2]} {{{key[0]}}} Name {key[1]}"


# -- JSON → store fields -----------------------------------------------------------------------------------
def fields_from_json(body: dict[str, Any], current: Item | None = None) -> dict[str, Any]:
    """The store fields a POST (``current`` None) or PATCH body sets, checked for meaning: known zones,
    end after start, midnights for all-day events. The body already passed the CSDL check."""
    fields: dict[str, Any] = {}
    if "subject" in body:
        fields["subject"] = body["subject"] or ""
    if isinstance(body.get("body"), dict):
        content_type = str(body["body"].get("contentType") or "text").lower()
        fields["body"] = body["body"].get("content") or ""
        fields["body_type"] = "html" if content_type == "html" else "text"
    if "location" in body:
        fields["location"] = (body["location"] or {}).get("displayName") or ""
    for name, key in (
        ("isReminderOn", "reminder_on"),
        ("responseRequested", "response_requested"),
        ("isAllDay", "is_all_day"),
    ):
        if name in body and body[name] is not None:
            fields[key] = bool(body[name])
    if body.get("reminderMinutesBeforeStart") is not None:
        fields["reminder_minutes"] = int(body["reminderMinutesBeforeStart"])
    if "categories" in body:
        fields["categories"] = tuple(body["categories"] or ())
    if body.get("showAs") is not None:
        fields["show_as"] = _canonical(body["showAs"], _SHOW_AS)
    if body.get("sensitivity") is not None:
        fields["sensitivity"] = _canonical(body["sensitivity"], _SENSITIVITY)
    if "attendees" in body:
        fields["attendees"] = tuple(
            str((a.get("emailAddress") or {}).get("address", "")).lower() for a in body["attendees"] or ()
        )
    if body.get("transactionId") and current is None:
        fields["transaction_id"] = str(body["transactionId"])
    if body.get("singleValueExtendedProperties"):
        fields["extended"] = tuple(
            (parse_prop_id(str(p.get("id", ""))), str(p.get("value") or ""))
            for p in body["singleValueExtendedProperties"]
        )
    fields.update(_times(body, current, fields.get("is_all_day")))
    return fields


def _canonical(value: str, allowed: tuple[str, ...]) -> str:
    for name in allowed:
        if name.lower() == str(value).lower():
            return name
    raise bad_request(f"'{value}' is not a valid value.", "ErrorInvalidRequest")


def _times(body: dict[str, Any], current: Item | None, is_all_day: bool | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    zone = current.timezone if current else "UTC"
    start = current.start if current else None
    end = current.end if current else None
    if body.get("start") is not None:
        zone = iana_zone(body["start"].get("timeZone") or "UTC")
        start = parse_wall_clock(body["start"].get("dateTime"), zone)
        out["start"], out["timezone"] = start, zone
    if body.get("end") is not None:
        end_zone = iana_zone(body["end"].get("timeZone") or "UTC")
        end = parse_wall_clock(body["end"].get("dateTime"), end_zone)
        out["end"] = end
    if start is None or end is None:
        raise bad_request("An event needs both start and end.", "ErrorInvalidRequest")
    if end < start:
        raise GraphError(
            400, "ErrorCalendarEndDateIsEarlierThanStartDate", "The end date occurs before the start date."
        )
    all_day = is_all_day if is_all_day is not None else bool(current and current.is_all_day)
    if all_day:
        local = ZoneInfo(zone)
        midnight = all(t.astimezone(local).time() == datetime.min.time() for t in (start, end))
        if not midnight or end == start:
            raise GraphError(
                400,
                "ErrorPropertyValidationFailure",
                "The start and end of an all-day event must be midnight, at least one day apart.",
            )
    return out


# -- store → JSON ------------------------------------------------------------------------------------------
def user_id(address: str) -> str:
    """A stable directory object id for a mailbox (Graph ids of users are GUIDs)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"mailto:{address.lower()}"))


def etag(item: Item) -> str:
    return f'W/"{item.change_key}"'


def ical_uid(item: Item) -> str:
    return "040000008200E00074C5B7101A82E00800000000" + hashlib.sha1(item.id.encode()).hexdigest().upper()


def event_json(
    item: Item,
    *,
    zone: str | None,
    zone_label: str | None = None,
    body_type: str | None = None,
    expand: list[PropKey] | bool | None = None,
) -> dict[str, Any]:
    """The full event. ``zone``: the IANA zone times are given in (None: the event's own). ``expand``:
    which extended properties to include (True: all; a list: those keys; None/False: none)."""
    shown = zone or item.timezone
    label = zone_label or shown

    def when(instant: datetime) -> dict[str, str]:
        # All-day events are floating dates: midnight in the event's zone, labelled with the asked zone.
        if item.is_all_day:
            local = instant.astimezone(ZoneInfo(item.timezone))
            return {"dateTime": local.strftime("%Y-%m-%dT00:00:00.0000000"), "timeZone": label}
        return {"dateTime": format_wall_clock(instant, shown), "timeZone": label}

    content, content_type = _body(item, body_type)
    location = {
        "displayName": item.location,
        "locationType": "default",
        "uniqueIdType": "unknown" if not item.location else "private",
    }
    if item.location:
        location["uniqueId"] = item.location
    data: dict[str, Any] = {
        "@odata.etag": etag(item),
        "id": item.id,
        "createdDateTime": format_instant(item.created),
        "lastModifiedDateTime": format_instant(item.modified),
        "changeKey": item.change_key,
        "categories": list(item.categories),
        "transactionId": item.transaction_id,
        "originalStartTimeZone": windows_zone(item.timezone),
        "originalEndTimeZone": windows_zone(item.timezone),
        "iCalUId": ical_uid(item),
        "reminderMinutesBeforeStart": item.reminder_minutes,
        "isReminderOn": item.reminder_on,
        "hasAttachments": False,
        "subject": item.subject,
        "bodyPreview": _preview(item),
        "importance": "normal",
        "sensitivity": item.sensitivity,
        "isAllDay": item.is_all_day,
        "isCancelled": False,
        "isOrganizer": True,
        "responseRequested": item.response_requested,
        "seriesMasterId": None,
        "showAs": item.show_as,
        "type": "singleInstance",
        "webLink": f"https://outlook.office365.com/owa/?itemid={item.id}&exvsurl=1&path=/calendar/item",
        "onlineMeetingUrl": None,
        "isOnlineMeeting": False,
        "onlineMeetingProvider": "unknown",
        "allowNewTimeProposals": True,
        "isDraft": False,
        "hideAttendees": False,
        "responseStatus": {"response": "organizer", "time": "0001-01-01T00:00:00Z"},
        "body": {"contentType": content_type, "content": content},
        "start": when(item.start),
        "end": when(item.end),
        "location": location,
        "locations": [location] if item.location else [],
        "recurrence": None,
        "attendees": [
            {
                "type": "required",
                "status": {"response": "none", "time": "0001-01-01T00:00:00Z"},
                "emailAddress": {"name": address, "address": address},
            }
            for address in item.attendees
        ],
        "organizer": {"emailAddress": {"name": item.mailbox, "address": item.mailbox}},
    }
    if expand:
        props = [
            (k, v) for k, v in item.extended if expand is True or (isinstance(expand, list) and k in expand)
        ]
        data["singleValueExtendedProperties"] = [{"id": format_prop_id(k), "value": v} for k, v in props]
    return data


def _body(item: Item, wanted: str | None) -> tuple[str, str]:
    if wanted == "text" and item.body_type == "html":
        return html.unescape(re.sub(r"<[^>]+>", "", item.body)).strip(), "text"
    if wanted == "html" and item.body_type == "text":
        escaped = html.escape(item.body).replace("\n", "<br>\r\n")
        return (
            f'<html>\r\n<head>\r\n<meta http-equiv="Content-Type" content="text/html; charset=utf-8">\r\n</head>\r\n<body>\r\n{escaped}\r\n</body>\r\n</html>\r\n',
            "html",
        )
    return item.body, item.body_type


def _preview(item: Item) -> str:
    text = html.unescape(re.sub(r"<[^>]+>", " ", item.body)) if item.body_type == "html" else item.body
    return " ".join(text.split())[:255]
