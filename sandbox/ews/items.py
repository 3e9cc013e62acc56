"""CalendarItem XML ↔ the tenant's ``Item``.

Reading: a ``t:CalendarItem`` from CreateItem (or the one inside a SetItemField) becomes a dict of tenant
field values. Writing: a tenant item becomes a ``t:CalendarItem`` holding the properties the request's
shape asked for, in the order the XSD's sequences demand (ItemType's, then CalendarItemType's).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from lxml import etree

from sandbox.ews import timezones
from sandbox.ews.errors import INVALID_PROPERTY, INVALID_VALUE, EwsError
from sandbox.ews.soap import TNS, t
from sandbox.tenant import Item, PropKey, prop_key

#: Well-known property sets by their EWS name, so a DistinguishedPropertySetId and the GUID spelling
#: (what Graph uses) name the same property.
PROPERTY_SETS = {
    "Meeting": "6ed8da90-450b-101b-98da-00aa003f1305",
    "Appointment": "00062002-0000-0000-c000-000000000046",
    "Common": "00062008-0000-0000-c000-000000000046",
    "PublicStrings": "00020329-0000-0000-c000-000000000046",
    "Address": "00062004-0000-0000-c000-000000000046",
    "InternetHeaders": "00020386-0000-0000-c000-000000000046",
    "CalendarAssistant": "11000e07-b51b-40d6-af21-caa85edab1d0",
    "UnifiedMessaging": "4442858e-a9e3-4e80-b900-317a210cc15b",
    "Task": "00062003-0000-0000-c000-000000000046",
    "Sharing": "00062040-0000-0000-c000-000000000046",
}

FREE_BUSY_IN = {
    "Free": "free",
    "Tentative": "tentative",
    "Busy": "busy",
    "OOF": "oof",
    "WorkingElsewhere": "workingElsewhere",
    "NoData": "unknown",
}
FREE_BUSY_OUT = {v: k for k, v in FREE_BUSY_IN.items()}
SENSITIVITY_IN = {
    "Normal": "normal",
    "Personal": "personal",
    "Private": "private",
    "Confidential": "confidential",
}
SENSITIVITY_OUT = {v: k for k, v in SENSITIVITY_IN.items()}


def ext_key(uri: etree._Element) -> PropKey:
    """The tenant key of an ``ExtendedFieldURI`` (property set + name or id, and type)."""
    prop_type = uri.get("PropertyType", "String")
    if uri.get("PropertyTag") is not None:
        tag = uri.get("PropertyTag", "")
        number = int(tag, 16) if tag.lower().startswith("0x") else int(tag)
        return ("tag", f"0x{number:04x}", prop_type)
    set_id = uri.get("PropertySetId") or PROPERTY_SETS.get(uri.get("DistinguishedPropertySetId", ""), "")
    if not set_id:
        raise EwsError(
            INVALID_PROPERTY, "An extended property needs a property set, a tag or a distinguished set."
        )
    if uri.get("PropertyName") is not None:
        return prop_key(set_id, uri.get("PropertyName", ""), prop_type)
    if uri.get("PropertyId") is not None:
        return prop_key(set_id, f"Id 0x{int(uri.get('PropertyId', '0')):04x}", prop_type)
    raise EwsError(INVALID_PROPERTY, "An extended property needs a PropertyName or a PropertyId.")


def ext_uri(key: PropKey) -> etree._Element:
    set_id, name, prop_type = key
    if set_id == "tag":
        return etree.Element(t("ExtendedFieldURI"), PropertyTag=name, PropertyType=prop_type)
    if name.startswith("Id 0x"):
        return etree.Element(
            t("ExtendedFieldURI"),
            PropertySetId=set_id,
            PropertyId=str(int(name[3:], 16)),
            PropertyType=prop_type,
        )
    return etree.Element(
        t("ExtendedFieldURI"), PropertySetId=set_id, PropertyName=name, PropertyType=prop_type
    )


def _bool(text: str | None) -> bool:
    return (text or "").strip().lower() in ("true", "1")


def _text(elem: etree._Element) -> str:
    return elem.text or ""


def _attendees(elem: etree._Element) -> tuple[str, ...]:
    return tuple(
        (address.text or "").strip().lower()
        for address in elem.iter(t("EmailAddress"))
        if (address.text or "").strip()
    )


def _zone_of(elem: etree._Element) -> str:
    ms_id = elem.get("Id") or elem.get("Name") or elem.get("TimeZoneName") or "UTC"
    return timezones.iana_from_windows(ms_id)


@dataclass
class ParsedItem:
    """What a request said about an item. ``zone`` comes from StartTimeZone / MeetingTimeZone."""

    values: dict[str, Any] = field(default_factory=dict)
    zone: str | None = None
    extended: list[tuple[PropKey, str]] = field(default_factory=list)


_SIMPLE: dict[str, Callable[[etree._Element], tuple[str, Any]]] = {
    "Subject": lambda e: ("subject", _text(e)),
    "Sensitivity": lambda e: ("sensitivity", SENSITIVITY_IN.get(_text(e), "normal")),
    "Body": lambda e: ("body", _text(e)),
    "ReminderIsSet": lambda e: ("reminder_on", _bool(e.text)),
    "ReminderMinutesBeforeStart": lambda e: ("reminder_minutes", int(_text(e) or 0)),
    "Start": lambda e: ("start", timezones.parse_instant(_text(e))),
    "End": lambda e: ("end", timezones.parse_instant(_text(e))),
    "IsAllDayEvent": lambda e: ("is_all_day", _bool(e.text)),
    "LegacyFreeBusyStatus": lambda e: ("show_as", FREE_BUSY_IN.get(_text(e), "busy")),
    "Location": lambda e: ("location", _text(e)),
    "IsResponseRequested": lambda e: ("response_requested", _bool(e.text)),
}


def parse_item(elem: etree._Element) -> ParsedItem:
    """The fields a ``t:CalendarItem`` sets. Elements the tenant does not model (UID, Importance, ...)
    are accepted and dropped, as the schema already vouched for them."""
    parsed = ParsedItem()
    for child in elem:
        if not isinstance(child.tag, str) or not child.tag.startswith(f"{{{TNS}}}"):
            continue
        name = etree.QName(child).localname
        try:
            if name in _SIMPLE:
                key, value = _SIMPLE[name](child)
                parsed.values[key] = value
                if name == "Body":
                    parsed.values["body_type"] = "html" if child.get("BodyType") == "HTML" else "text"
            elif name == "Categories":
                parsed.values["categories"] = tuple(_text(s) for s in child.iter(t("String")))
            elif name in ("RequiredAttendees", "OptionalAttendees", "Resources"):
                parsed.values["attendees"] = parsed.values.get("attendees", ()) + _attendees(child)
            elif name in ("StartTimeZone", "MeetingTimeZone"):
                parsed.zone = _zone_of(child)
            elif name == "ExtendedProperty":
                uri = child.find(t("ExtendedFieldURI"))
                value = child.find(t("Value"))
                if uri is None or value is None:
                    raise EwsError(INVALID_PROPERTY, "Only single-valued extended properties are supported.")
                parsed.extended.append((ext_key(uri), _text(value)))
        except ValueError as exc:
            raise EwsError(INVALID_VALUE, f"{name}: {exc}") from None
    return parsed


def snap_all_day(start: datetime, end: datetime, zone_name: str) -> tuple[datetime, datetime]:
    """All-day items span whole days in their zone: a start is moved back, an end forward, to midnight."""
    tz = timezones.zone(zone_name)
    local_start, local_end = start.astimezone(tz), end.astimezone(tz)
    first = datetime.combine(local_start.date(), time(0), tz)
    last_day = (
        local_end.date()
        if local_end.timetz().replace(tzinfo=None) == time(0)
        else local_end.date() + timedelta(1)
    )
    last = datetime.combine(last_day, time(0), tz)
    if last <= first:
        last = datetime.combine(first.date() + timedelta(1), time(0), tz)
    return first.astimezone(start.tzinfo), last.astimezone(start.tzinfo)


# -- output -------------------------------------------------------------------------------------------------


def uid_of(item: Item) -> str:
    return hashlib.sha1(item.id.encode()).hexdigest().upper()


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    elem = etree.SubElement(parent, t(tag), attrs)
    if text is not None:
        elem.text = text
    return elem


def _bool_out(value: bool) -> str:
    return "true" if value else "false"


def _zone_elem(parent: etree._Element, tag: str, iana: str) -> None:
    ms_id = timezones.windows_from_iana(iana)
    _sub(parent, tag, Id=ms_id, Name=ms_id)


def _categories(parent: etree._Element, item: Item) -> None:
    if item.categories:
        cats = _sub(parent, "Categories")
        for cat in item.categories:
            _sub(cats, "String", cat)


def _organizer(parent: etree._Element, item: Item) -> None:
    mailbox = _sub(_sub(parent, "Organizer"), "Mailbox")
    _sub(mailbox, "EmailAddress", item.mailbox)
    _sub(mailbox, "RoutingType", "SMTP")


def _attendees_out(parent: etree._Element, item: Item) -> None:
    if item.attendees:
        group = _sub(parent, "RequiredAttendees")
        for address in item.attendees:
            attendee = _sub(group, "Attendee")
            mailbox = _sub(attendee, "Mailbox")
            _sub(mailbox, "EmailAddress", address)
            _sub(mailbox, "RoutingType", "SMTP")
            _sub(attendee, "ResponseType", "Unknown")


#: Writes one property; what it returns is ignored.
Writer = Callable[[etree._Element, Item], object]

#: Field URI → writer, in the XSD's element order. ExtendedProperty sits between HasAttachments and
#: LastModifiedTime (ItemType's sequence), which is where ``render`` inserts it.
_BEFORE_EXTENDED: list[tuple[str, Writer]] = [
    ("item:ParentFolderId", lambda p, i: _sub(p, "ParentFolderId", Id=i.folder_id)),
    ("item:ItemClass", lambda p, i: _sub(p, "ItemClass", "IPM.Appointment")),
    ("item:Subject", lambda p, i: _sub(p, "Subject", i.subject)),
    ("item:Sensitivity", lambda p, i: _sub(p, "Sensitivity", SENSITIVITY_OUT.get(i.sensitivity, "Normal"))),
    (
        "item:Body",
        lambda p, i: _sub(p, "Body", i.body, BodyType="HTML" if i.body_type == "html" else "Text"),
    ),
    ("item:Categories", _categories),
    ("item:DateTimeCreated", lambda p, i: _sub(p, "DateTimeCreated", timezones.format_instant(i.created))),
    ("item:ReminderIsSet", lambda p, i: _sub(p, "ReminderIsSet", _bool_out(i.reminder_on))),
    (
        "item:ReminderMinutesBeforeStart",
        lambda p, i: _sub(p, "ReminderMinutesBeforeStart", str(i.reminder_minutes)),
    ),
    ("item:HasAttachments", lambda p, i: _sub(p, "HasAttachments", "false")),
]
_AFTER_EXTENDED: list[tuple[str, Writer]] = [
    ("item:LastModifiedTime", lambda p, i: _sub(p, "LastModifiedTime", timezones.format_instant(i.modified))),
    ("calendar:UID", lambda p, i: _sub(p, "UID", uid_of(i))),
    ("calendar:Start", lambda p, i: _sub(p, "Start", timezones.format_instant(i.start))),
    ("calendar:End", lambda p, i: _sub(p, "End", timezones.format_instant(i.end))),
    ("calendar:IsAllDayEvent", lambda p, i: _sub(p, "IsAllDayEvent", _bool_out(i.is_all_day))),
    (
        "calendar:LegacyFreeBusyStatus",
        lambda p, i: _sub(p, "LegacyFreeBusyStatus", FREE_BUSY_OUT.get(i.show_as, "Busy")),
    ),
    ("calendar:Location", lambda p, i: _sub(p, "Location", i.location)),
    ("calendar:IsMeeting", lambda p, i: _sub(p, "IsMeeting", _bool_out(bool(i.attendees)))),
    ("calendar:IsCancelled", lambda p, i: _sub(p, "IsCancelled", "false")),
    ("calendar:IsRecurring", lambda p, i: _sub(p, "IsRecurring", "false")),
    (
        "calendar:IsResponseRequested",
        lambda p, i: _sub(p, "IsResponseRequested", _bool_out(i.response_requested)),
    ),
    ("calendar:CalendarItemType", lambda p, i: _sub(p, "CalendarItemType", "Single")),
    ("calendar:MyResponseType", lambda p, i: _sub(p, "MyResponseType", "Organizer")),
    ("calendar:Organizer", _organizer),
    ("calendar:RequiredAttendees", _attendees_out),
    ("calendar:StartTimeZone", lambda p, i: _zone_elem(p, "StartTimeZone", i.timezone)),
    ("calendar:EndTimeZone", lambda p, i: _zone_elem(p, "EndTimeZone", i.timezone)),
    (
        "calendar:StartTimeZoneId",
        lambda p, i: _sub(p, "StartTimeZoneId", timezones.windows_from_iana(i.timezone)),
    ),
    (
        "calendar:EndTimeZoneId",
        lambda p, i: _sub(p, "EndTimeZoneId", timezones.windows_from_iana(i.timezone)),
    ),
]
KNOWN_FIELDS = frozenset(uri for uri, _ in _BEFORE_EXTENDED + _AFTER_EXTENDED)
#: What AllProperties / Default return (Exchange leaves extended properties out of both).
DEFAULT_FIELDS = KNOWN_FIELDS - {"calendar:StartTimeZoneId", "calendar:EndTimeZoneId"}


@dataclass(frozen=True, slots=True)
class Shape:
    """Which properties a response carries: a base shape plus AdditionalProperties."""

    fields: frozenset[str] = frozenset()
    extended: tuple[PropKey, ...] = ()

    @classmethod
    def parse(cls, shape: etree._Element | None) -> Shape:
        if shape is None:
            return cls()
        base = shape.findtext(t("BaseShape"), "IdOnly")
        fields: set[str] = set(DEFAULT_FIELDS) if base in ("Default", "AllProperties") else set()
        extended: list[PropKey] = []
        extra = shape.find(t("AdditionalProperties"))
        if extra is not None:
            for path in extra:
                if path.tag == t("FieldURI"):
                    fields.add(path.get("FieldURI", ""))
                elif path.tag == t("ExtendedFieldURI"):
                    extended.append(ext_key(path))
        return cls(frozenset(fields), tuple(extended))


def render(item: Item, shape: Shape, tag: str = "CalendarItem") -> etree._Element:
    elem = etree.Element(t(tag))
    _sub(elem, "ItemId", Id=item.id, ChangeKey=item.change_key)
    for uri, write in _BEFORE_EXTENDED:
        if uri in shape.fields:
            write(elem, item)
    for key in shape.extended:
        value = item.prop(key)
        if value is not None:
            prop = etree.SubElement(elem, t("ExtendedProperty"))
            prop.append(ext_uri(key))
            _sub(prop, "Value", value)
    for uri, write in _AFTER_EXTENDED:
        if uri in shape.fields:
            write(elem, item)
    return elem


def id_only(item: Item, tag: str = "CalendarItem") -> etree._Element:
    return render(item, Shape(), tag)
