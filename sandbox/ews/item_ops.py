"""Item operations: FindItem, GetItem, CreateItem, UpdateItem, DeleteItem. Each input (folder, item id,
item, change) gets its own response message, in input order, with its own ResponseClass and code: that
is how exchangelib's bulk calls hand back one result or exception per input."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from lxml import etree

from sandbox.ews import items as xml_items
from sandbox.ews.access import check_mailbox
from sandbox.ews.context import Context
from sandbox.ews.errors import (
    END_BEFORE_START,
    INVALID_OPERATION,
    INVALID_PROPERTY,
    INVALID_REQUEST,
    IRRESOLVABLE_CONFLICT,
    ITEM_NOT_FOUND,
    EwsError,
)
from sandbox.ews.restrict import FIELD_GETTERS, compile_restriction
from sandbox.ews.soap import m, response_message, t
from sandbox.ews.timezones import parse_instant
from sandbox.tenant import CALENDAR, ChangeKeyConflict, Item, ItemNotFound, PropKey

_ITEM_TAGS = frozenset({t("CalendarItem")})


def _children(elem: etree._Element | None) -> list[etree._Element]:
    return [] if elem is None else [c for c in elem if isinstance(c.tag, str)]


def _item_for(ctx: Context, id_elem: etree._Element) -> Item:
    if id_elem.tag != t("ItemId"):
        raise EwsError(ITEM_NOT_FOUND, "The sandbox has no recurring items or occurrences.")
    try:
        item = ctx.tenant.item(id_elem.get("Id", ""))
    except ItemNotFound:
        raise EwsError(ITEM_NOT_FOUND, "The specified object was not found in the store.") from None
    check_mailbox(ctx.tenant, ctx.caller, item.mailbox)
    return item


def _error_with_items(name: str, exc: EwsError) -> etree._Element:
    msg = response_message(name, exc.code, exc.message)
    etree.SubElement(msg, m("Items"))  # ItemInfoResponseMessageType requires Items even on error
    return msg


# -- FindItem ---------------------------------------------------------------------------------------------


def _sort_key(order: etree._Element | None) -> tuple[Any, bool] | None:
    """The first FieldOrder of a SortOrder (enough for a calendar pusher)."""
    first = _children(order)[0] if _children(order) else None
    if first is None:
        return None
    path = first.find(t("FieldURI"))
    getter = FIELD_GETTERS.get("" if path is None else path.get("FieldURI", ""))
    if getter is None:
        raise EwsError(INVALID_PROPERTY, "The sandbox sorts on simple fields only.")
    return getter, first.get("Order") == "Descending"


def find_item(ctx: Context) -> list[etree._Element]:
    shape = xml_items.Shape.parse(ctx.op.find(m("ItemShape")))
    where = compile_restriction(ctx.op.find(m("Restriction")))
    calendar_view = ctx.op.find(m("CalendarView"))
    paged = ctx.op.find(m("IndexedPageItemView"))
    sort = _sort_key(ctx.op.find(m("SortOrder")))
    start = end = None
    if calendar_view is not None:
        start, end = (
            parse_instant(calendar_view.get("StartDate", "")),
            parse_instant(calendar_view.get("EndDate", "")),
        )
        if end < start:
            raise EwsError(END_BEFORE_START, "EndDate is earlier than StartDate.")
    view = calendar_view if calendar_view is not None else paged
    limit = int(view.get("MaxEntriesReturned", "0") or 0) if view is not None else 0
    offset = int(paged.get("Offset", "0")) if paged is not None and calendar_view is None else 0
    out = []
    for id_elem in _children(ctx.op.find(m("ParentFolderIds"))):
        try:
            ref = ctx.resolve_folder(id_elem)
            found = (
                []
                if ref.folder is None
                else ctx.tenant.items(ref.mailbox, ref.folder.id, start=start, end=end, where=where)
            )
        except EwsError as exc:
            out.append(response_message("FindItem", exc.code, exc.message))
            continue
        if sort is not None:
            found.sort(key=lambda i: sort[0](i), reverse=sort[1])
        page = found[offset : offset + limit] if limit else found[offset:]
        last = offset + len(page) >= len(found)
        msg = response_message("FindItem")
        attrs = {"TotalItemsInView": str(len(found)), "IncludesLastItemInRange": "true" if last else "false"}
        if calendar_view is None:
            attrs = {"IndexedPagingOffset": str(offset + len(page)), **attrs}
        root = etree.SubElement(msg, m("RootFolder"), attrs)
        listing = etree.SubElement(root, t("Items"))
        for item in page:
            listing.append(xml_items.render(item, shape))
        out.append(msg)
    return out


# -- GetItem ----------------------------------------------------------------------------------------------


def get_item(ctx: Context) -> list[etree._Element]:
    shape = xml_items.Shape.parse(ctx.op.find(m("ItemShape")))
    out = []
    for id_elem in _children(ctx.op.find(m("ItemIds"))):
        try:
            item = _item_for(ctx, id_elem)
        except EwsError as exc:
            out.append(_error_with_items("GetItem", exc))
            continue
        msg = response_message("GetItem")
        etree.SubElement(msg, m("Items")).append(xml_items.render(item, shape))
        out.append(msg)
    return out


# -- CreateItem -------------------------------------------------------------------------------------------


def _check_times(values: dict[str, Any], zone: str) -> dict[str, Any]:
    start, end = values.get("start"), values.get("end")
    if isinstance(start, datetime) and isinstance(end, datetime):
        if end < start:
            raise EwsError(END_BEFORE_START, "EndDate is earlier than StartDate.")
        if values.get("is_all_day"):
            values["start"], values["end"] = xml_items.snap_all_day(start, end, zone)
    return values


def create_item(ctx: Context) -> list[etree._Element]:
    saved = _children(ctx.op.find(m("SavedItemFolderId")))
    out = []
    for spec in _children(ctx.op.find(m("Items"))):
        try:
            ref = ctx.resolve_folder(saved[0]) if saved else None
            mailbox = ref.mailbox if ref else check_mailbox(ctx.tenant, ctx.caller, ctx.default_mailbox())
            folder_id = ref.folder.id if ref and ref.folder else CALENDAR
            if ref is not None and ref.folder is None:
                raise EwsError(INVALID_OPERATION, "Calendar items belong in a calendar folder.")
            if spec.tag not in _ITEM_TAGS:
                raise EwsError(INVALID_OPERATION, "The sandbox stores calendar items only.")
            parsed = xml_items.parse_item(spec)
            if "start" not in parsed.values or "end" not in parsed.values:
                raise EwsError(INVALID_REQUEST, "A calendar item needs Start and End.")
            zone = parsed.zone or ctx.context_zone or "UTC"
            values = _check_times(dict(parsed.values), zone)
            item = ctx.tenant.create_item(
                mailbox, folder_id, timezone=zone, extended=tuple(parsed.extended), **values
            )
        except EwsError as exc:
            out.append(_error_with_items("CreateItem", exc))
            continue
        msg = response_message("CreateItem")
        etree.SubElement(msg, m("Items")).append(xml_items.id_only(item))
        out.append(msg)
    return out


# -- UpdateItem -------------------------------------------------------------------------------------------

#: What DeleteItemField puts back, per field URI.
_CLEARED: dict[str, dict[str, Any]] = {
    "item:Subject": {"subject": ""},
    "item:Body": {"body": "", "body_type": "text"},
    "item:Categories": {"categories": ()},
    "item:Sensitivity": {"sensitivity": "normal"},
    "item:ReminderIsSet": {"reminder_on": False},
    "item:ReminderMinutesBeforeStart": {"reminder_minutes": 0},
    "calendar:Location": {"location": ""},
    "calendar:LegacyFreeBusyStatus": {"show_as": "busy"},
    "calendar:IsResponseRequested": {"response_requested": True},
    "calendar:RequiredAttendees": {"attendees": ()},
    "calendar:OptionalAttendees": {},
    "calendar:Resources": {},
}
#: Fields a client may send but the tenant does not keep; setting or clearing them is a no-op.
_IGNORED = frozenset(
    {
        "calendar:UID",
        "calendar:ConferenceType",
        "calendar:AllowNewTimeProposal",
        "calendar:EndTimeZone",
        "calendar:MeetingWorkspaceUrl",
        "calendar:NetShowUrl",
        "calendar:When",
        "item:Importance",
        "item:Culture",
        "item:ItemClass",
    }
)


def _apply_update(
    item: Item, update: etree._Element, changes: dict[str, Any], ext: dict[PropKey, str | None]
) -> None:
    kind = etree.QName(update).localname
    path = next((c for c in update if isinstance(c.tag, str)), None)
    if path is None:
        raise EwsError(INVALID_REQUEST, f"{kind} without a property path.")
    uri = path.get("FieldURI", "") if path.tag == t("FieldURI") else ""
    if kind == "DeleteItemField":
        if path.tag == t("ExtendedFieldURI"):
            ext[xml_items.ext_key(path)] = None
        elif uri in _CLEARED:
            changes.update(_CLEARED[uri])
        elif uri == "calendar:IsAllDayEvent":
            changes["is_all_day"] = False
        elif uri not in _IGNORED:
            raise EwsError(INVALID_PROPERTY, f"The sandbox cannot delete {uri or 'that property'}.")
        return
    target = next((c for c in update if isinstance(c.tag, str) and c is not path), None)
    if target is None:
        raise EwsError(INVALID_REQUEST, f"{kind} without an item holding the new value.")
    parsed = xml_items.parse_item(target)
    if kind == "AppendToItemField":
        if "body" in parsed.values:
            changes["body"] = changes.get("body", item.body) + parsed.values["body"]
        if "categories" in parsed.values:
            changes["categories"] = (
                tuple(changes.get("categories", item.categories)) + parsed.values["categories"]
            )
        if "attendees" in parsed.values:
            changes["attendees"] = (
                tuple(changes.get("attendees", item.attendees)) + parsed.values["attendees"]
            )
        return
    changes.update(parsed.values)
    if parsed.zone:
        changes["timezone"] = parsed.zone
    for key, value in parsed.extended:
        ext[key] = value


def _update_one(ctx: Context, change: etree._Element, resolution: str) -> Item:
    id_elem = next((c for c in change if isinstance(c.tag, str) and c.tag != t("Updates")), None)
    if id_elem is None:
        raise EwsError(INVALID_REQUEST, "An ItemChange needs an ItemId.")
    item = _item_for(ctx, id_elem)
    change_key = id_elem.get("ChangeKey")
    if change_key and change_key != item.change_key and resolution != "AlwaysOverwrite":
        raise EwsError(IRRESOLVABLE_CONFLICT, "The change key is stale: the item changed since it was read.")
    changes: dict[str, Any] = {}
    ext: dict[PropKey, str | None] = {}
    for update in _children(change.find(t("Updates"))):
        _apply_update(item, update, changes, ext)
    merged = replace(item, **changes)
    _check_times({"start": merged.start, "end": merged.end, "is_all_day": merged.is_all_day}, merged.timezone)
    if merged.is_all_day and ({"start", "end", "is_all_day", "timezone"} & changes.keys()):
        changes["start"], changes["end"] = xml_items.snap_all_day(merged.start, merged.end, merged.timezone)
    if ext:
        changes["extended"] = tuple(ext.items())
    expected = item.change_key if resolution != "AlwaysOverwrite" else None
    try:
        return ctx.tenant.update_item(item.id, if_change_key=expected, **changes)
    except ChangeKeyConflict:
        raise EwsError(IRRESOLVABLE_CONFLICT, "The item changed while it was being updated.") from None
    except ItemNotFound:
        raise EwsError(ITEM_NOT_FOUND, "The specified object was not found in the store.") from None


def update_item(ctx: Context) -> list[etree._Element]:
    resolution = ctx.op.get("ConflictResolution", "AutoResolve")
    out = []
    for change in _children(ctx.op.find(m("ItemChanges"))):
        try:
            updated = _update_one(ctx, change, resolution)
        except EwsError as exc:
            out.append(_error_with_items("UpdateItem", exc))
            continue
        msg = response_message("UpdateItem")
        etree.SubElement(msg, m("Items")).append(xml_items.id_only(updated))
        etree.SubElement(etree.SubElement(msg, m("ConflictResults")), t("Count")).text = "0"
        out.append(msg)
    return out


# -- DeleteItem -------------------------------------------------------------------------------------------


def delete_item(ctx: Context) -> list[etree._Element]:
    out = []
    for id_elem in _children(ctx.op.find(m("ItemIds"))):
        try:
            item = _item_for(ctx, id_elem)
            ctx.tenant.delete_item(item.id)
        except ItemNotFound:
            out.append(
                response_message(
                    "DeleteItem", ITEM_NOT_FOUND, "The specified object was not found in the store."
                )
            )
            continue
        except EwsError as exc:
            out.append(response_message("DeleteItem", exc.code, exc.message))
            continue
        out.append(response_message("DeleteItem"))
    return out
