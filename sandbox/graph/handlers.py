"""Graph's resources as plain functions over the tenant store: routing (which operation, which mailbox)
and the operations themselves. Framework-free, so a plain HTTP request and a ``$batch`` part run the very
same code; the caller has already authenticated and admitted the request."""

from __future__ import annotations

import base64
import contextlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from sandbox.graph import convert, csdl, odata
from sandbox.graph.errors import GraphError, access_denied, bad_request
from sandbox.tenant import CALENDAR, ChangeKeyConflict, Folder, FolderNotFound, ItemNotFound, Principal

if TYPE_CHECKING:
    from sandbox.server import Sandbox
    from sandbox.tenant import Item

DEFAULT_PAGE = 10  # Graph's page size for events and calendarView when $top is absent
MAX_PAGE = 1000
_PREFER = re.compile(r'([\w.-]+)\s*=\s*("[^"]*"|[^,;\s]+)')


@dataclass
class Call:
    """One Graph request, from HTTP or from a ``$batch`` part."""

    method: str
    path: str  # below /v1.0, decoded: "/users/a@b/events"
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    raw: bytes | None
    base_url: str  # "http://127.0.0.1:1234/v1.0", for @odata.nextLink and @odata.context

    def payload(self) -> dict[str, Any]:
        try:
            value = json.loads(self.raw or b"")
        except ValueError:
            raise GraphError(
                400,
                "BadRequest",
                "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.",
            ) from None
        if not isinstance(value, dict):
            raise GraphError(400, "BadRequest", "The request payload must be a JSON object.")
        return value

    def prefer(self) -> dict[str, str]:
        found = _PREFER.findall(self.headers.get("prefer", ""))
        return {name.lower(): value.strip('"') for name, value in found}


@dataclass
class Answer:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    error_code: str | None = None


Handler = Callable[["Sandbox", Principal, Call, dict[str, str]], Answer]


@dataclass(frozen=True, slots=True)
class Resolved:
    operation: str
    mailbox: str | None
    write: bool
    handler: Handler
    params: dict[str, str]


# -- routing ----------------------------------------------------------------------------------------------
def resolve(sandbox: Sandbox, method: str, path: str) -> Resolved | None:
    for route_method, pattern, operation, write, handler in _ROUTES:
        match = pattern.match(path)
        if match is not None and route_method == method.upper():
            params = {k: v for k, v in match.groupdict().items() if v is not None}
            params["user"] = _address(sandbox, params["user"])
            return Resolved(operation, params["user"], write, handler, params)
    return None


def _address(sandbox: Sandbox, user: str) -> str:
    """The mailbox address a ``{user-id}`` segment names: an address, or a user's object id."""
    user = user.strip().strip("'").lower()
    if "@" not in user:
        for mailbox in sandbox.tenant.mailboxes():
            if convert.user_id(mailbox.address) == user:
                return mailbox.address
    return user


# -- shared checks and shapes ---------------------------------------------------------------------------------
def _reach(sandbox: Sandbox, principal: Principal, address: str) -> None:
    if not sandbox.tenant.has_mailbox(address):
        raise GraphError(404, "ErrorInvalidUser", f"The requested user '{address}' is invalid.")
    if principal.app is None or not principal.app.may_reach(address):
        raise access_denied()


def _folder(sandbox: Sandbox, address: str, params: dict[str, str]) -> Folder:
    try:
        return sandbox.tenant.folder(address, params.get("cal", CALENDAR))
    except FolderNotFound:
        raise _not_found() from None


def _not_found() -> GraphError:
    return GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")


def _item(sandbox: Sandbox, address: str, event_id: str) -> Item:
    try:
        item = sandbox.tenant.item(event_id)
    except ItemNotFound:
        raise _not_found() from None
    if item.mailbox != address:
        raise _not_found()
    return item


def _if_match(call: Call) -> str | None:
    value = call.headers.get("if-match", "").strip()
    if not value or value == "*":
        return None
    return value.removeprefix("W/").strip('"')


def _view(call: Call, *, default_utc: bool) -> tuple[str | None, str | None, dict[str, str]]:
    """The zone (IANA) and label to answer in, and the Preference-Applied header, from ``Prefer``."""
    prefer = call.prefer()
    applied: list[str] = []
    zone: str | None = "UTC" if default_utc else None
    label: str | None = zone
    if "idtype" in prefer:
        applied.append(f'IdType="{prefer["idtype"]}"')
    if "outlook.timezone" in prefer:
        # Graph ignores a zone it does not know and answers in the default.
        with contextlib.suppress(GraphError):
            zone = convert.iana_zone(prefer["outlook.timezone"])
            label = prefer["outlook.timezone"]
            applied.append(f'outlook.timezone="{label}"')
    if "outlook.body-content-type" in prefer:
        applied.append(f'outlook.body-content-type="{prefer["outlook.body-content-type"]}"')
    return zone, label, {"Preference-Applied": ", ".join(applied)} if applied else {}


def _event(
    item: Item, call: Call, *, default_utc: bool, expand: Any = None
) -> tuple[dict[str, Any], dict[str, str]]:
    zone, label, headers = _view(call, default_utc=default_utc)
    body_type = call.prefer().get("outlook.body-content-type")
    return convert.event_json(item, zone=zone, zone_label=label, body_type=body_type, expand=expand), headers


def _expand(call: Call, item: Item) -> Any:
    option = odata.expand_option(call.query.get("$expand"))
    if callable(option):
        return [k for k, v in item.extended if option(k, v)] or False
    return option


def _context(call: Call, address: str, suffix: str) -> str:
    return f"{call.base_url}/$metadata#users('{address}')/{suffix}"


# -- users and calendars -------------------------------------------------------------------------------------
def get_user(sandbox: Sandbox, principal: Principal, call: Call, params: dict[str, str]) -> Answer:
    # The directory, not the mailbox: RBAC for Applications does not scope it, so no may_reach here.
    address = params["user"]
    if not sandbox.tenant.has_mailbox(address):
        raise GraphError(
            404,
            "Request_ResourceNotFound",
            f"Resource '{address}' does not exist or one of its queried reference-property objects are not present.",
        )
    mailbox = sandbox.tenant.mailbox(address)
    return Answer(
        200,
        {
            "@odata.context": f"{call.base_url}/$metadata#users/$entity",
            "businessPhones": [],
            "displayName": mailbox.display_name or mailbox.address,
            "givenName": None,
            "jobTitle": None,
            "mail": mailbox.address,
            "mobilePhone": None,
            "officeLocation": None,
            "preferredLanguage": None,
            "surname": None,
            "userPrincipalName": mailbox.address,
            "id": convert.user_id(mailbox.address),
        },
    )


def _calendar_json(sandbox: Sandbox, address: str, folder: Folder) -> dict[str, Any]:
    mailbox = sandbox.tenant.mailbox(address)
    return {
        "id": folder.id,
        "name": folder.name,
        "color": "auto",
        "hexColor": "",
        "isDefaultCalendar": folder.id == mailbox.calendar.id,
        "changeKey": folder.change_key,
        "canShare": True,
        "canViewPrivateItems": True,
        "canEdit": True,
        "allowedOnlineMeetingProviders": ["teamsForBusiness"],
        "defaultOnlineMeetingProvider": "teamsForBusiness",
        "isTallyingResponses": True,
        "isRemovable": folder.id != mailbox.calendar.id,
        "owner": {"name": mailbox.display_name or address, "address": address},
    }


def get_calendar(sandbox: Sandbox, principal: Principal, call: Call, params: dict[str, str]) -> Answer:
    address = params["user"]
    _reach(sandbox, principal, address)
    data = _calendar_json(sandbox, address, _folder(sandbox, address, params))
    return Answer(200, {"@odata.context": _context(call, address, "calendar/$entity"), **data})


def list_calendars(sandbox: Sandbox, principal: Principal, call: Call, params: dict[str, str]) -> Answer:
    address = params["user"]
    _reach(sandbox, principal, address)
    folders = sandbox.tenant.mailbox(address).folders.values()
    return Answer(
        200,
        {
            "@odata.context": _context(call, address, "calendars"),
            "value": [_calendar_json(sandbox, address, f) for f in folders],
        },
    )


# -- event collections ---------------------------------------------------------------------------------------------
def list_events(sandbox: Sandbox, principal: Principal, call: Call, params: dict[str, str]) -> Answer:
    address = params["user"]
    _reach(sandbox, principal, address)
    folder = _folder(sandbox, address, params)
    where = odata.event_filter(call.query["$filter"]) if call.query.get("$filter") else None
    items = sandbox.tenant.items(address, folder.id, where=where)
    return _page(call, address, "events", items)


def calendar_view(sandbox: Sandbox, principal: Principal, call: Call, params: dict[str, str]) -> Answer:
    address = params["user"]
    _reach(sandbox, principal, address)
    lowered = {k.lower(): v for k, v in call.query.items()}
    if not lowered.get("startdatetime") or not lowered.get("enddatetime"):
        raise bad_request(
            "This request requires a time window specified by the query string parameters StartDateTime and EndDateTime.",
            "ErrorInvalidParameter",
        )
    start = convert.parse_instant(lowered["startdatetime"])
    end = convert.parse_instant(lowered["enddatetime"])
    folder = _folder(sandbox, address, params)
    where = odata.event_filter(call.query["$filter"]) if call.query.get("$filter") else None
    items = sandbox.tenant.items(address, folder.id, start=start, end=end, where=where)
    return _page(call, address, "calendarView", items)


def _page(call: Call, address: str, suffix: str, items: list[Item]) -> Answer:
    items = odata.order(items, call.query.get("$orderby"))
    try:
        top = min(int(call.query.get("$top", DEFAULT_PAGE)), MAX_PAGE)
        offset = int(call.query.get("$skip", "0"))
        if call.query.get("$skiptoken"):
            offset = int(base64.urlsafe_b64decode(call.query["$skiptoken"].encode()).decode())
    except ValueError:
        raise bad_request("Invalid $top, $skip or $skiptoken.") from None
    if top < 0 or offset < 0:
        raise bad_request("$top and $skip must not be negative.")
    known = csdl.event_property_names()
    value = []
    headers: dict[str, str] = {}
    for item in items[offset : offset + top]:
        data, headers = _event(item, call, default_utc=True, expand=_expand(call, item))
        value.append(odata.select(data, call.query.get("$select"), known))
    if not items[offset : offset + top]:
        _, _, headers = _view(call, default_utc=True)
    body: dict[str, Any] = {"@odata.context": _context(call, address, suffix), "value": value}
    if offset + top < len(items):
        query = {k: v for k, v in call.query.items() if k not in ("$skiptoken", "$skip")}
        query["$skiptoken"] = base64.urlsafe_b64encode(str(offset + top).encode()).decode()
        body["@odata.nextLink"] = f"{call.base_url}{call.path}?{urlencode(query)}"
    return Answer(200, body, headers)


def create_event(sandbox: Sandbox, principal: Principal, call: Call, params: dict[str, str]) -> Answer:
    address = params["user"]
    _reach(sandbox, principal, address)
    folder = _folder(sandbox, address, params)
    body = call.payload()
    csdl.validate_event(body)
    fields = convert.fields_from_json(body)
    item = sandbox.tenant.create_item(address, folder.id, **fields)
    data, headers = _event(item, call, default_utc=False, expand=_expand(call, item))
    headers["Location"] = f"{call.base_url}/users('{address}')/events('{item.id}')"
    return Answer(201, {"@odata.context": _context(call, address, "events/$entity"), **data}, headers)


# -- one event -------------------------------------------------------------------------------------------------------
def get_event(sandbox: Sandbox, principal: Principal, call: Call, params: dict[str, str]) -> Answer:
    address = params["user"]
    _reach(sandbox, principal, address)
    item = _item(sandbox, address, params["event"])
    data, headers = _event(item, call, default_utc=True, expand=_expand(call, item))
    data = odata.select(data, call.query.get("$select"), csdl.event_property_names())
    return Answer(200, {"@odata.context": _context(call, address, "events/$entity"), **data}, headers)


def update_event(sandbox: Sandbox, principal: Principal, call: Call, params: dict[str, str]) -> Answer:
    address = params["user"]
    _reach(sandbox, principal, address)
    current = _item(sandbox, address, params["event"])
    body = call.payload()
    csdl.validate_event(body)
    fields = convert.fields_from_json(body, current)
    try:
        item = sandbox.tenant.update_item(current.id, if_change_key=_if_match(call), **fields)
    except ChangeKeyConflict:
        raise _conflict() from None
    except ItemNotFound:
        raise _not_found() from None
    data, headers = _event(item, call, default_utc=False, expand=_expand(call, item))
    return Answer(200, {"@odata.context": _context(call, address, "events/$entity"), **data}, headers)


def delete_event(sandbox: Sandbox, principal: Principal, call: Call, params: dict[str, str]) -> Answer:
    address = params["user"]
    _reach(sandbox, principal, address)
    item = _item(sandbox, address, params["event"])
    try:
        sandbox.tenant.delete_item(item.id, if_change_key=_if_match(call))
    except ChangeKeyConflict:
        raise _conflict() from None
    except ItemNotFound:
        raise _not_found() from None
    return Answer(204)


def _conflict() -> GraphError:
    return GraphError(
        412,
        "ErrorIrresolvableConflict",
        "The send or update operation could not be performed because the change key passed in the request does not match the current change key for the item.",
    )


# -- routing table (after the handlers it names) ---------------------------------------------------------
_USER = r"^/users/(?P<user>[^/]+)"
_CAL = r"(?:/calendar|/calendars/(?P<cal>[^/]+))?"
_ROUTES: list[tuple[str, re.Pattern[str], str, bool, Handler]] = [
    # method, path, operation, write, handler
    ("GET", re.compile(_USER + r"$", re.I), "GET user", False, get_user),
    ("GET", re.compile(_USER + r"/calendar$", re.I), "GET calendar", False, get_calendar),
    ("GET", re.compile(_USER + r"/calendars$", re.I), "GET calendars", False, list_calendars),
    ("GET", re.compile(_USER + r"/calendars/(?P<cal>[^/]+)$", re.I), "GET calendar", False, get_calendar),
    ("GET", re.compile(_USER + _CAL + r"/events$", re.I), "GET events", False, list_events),
    ("POST", re.compile(_USER + _CAL + r"/events$", re.I), "POST events", True, create_event),
    ("GET", re.compile(_USER + _CAL + r"/calendarView$", re.I), "GET calendarView", False, calendar_view),
    ("GET", re.compile(_USER + _CAL + r"/events/(?P<event>[^/]+)$", re.I), "GET event", False, get_event),
    (
        "PATCH",
        re.compile(_USER + _CAL + r"/events/(?P<event>[^/]+)$", re.I),
        "PATCH event",
        True,
        update_event,
    ),
    (
        "DELETE",
        re.compile(_USER + _CAL + r"/events/(?P<event>[^/]+)$", re.I),
        "DELETE event",
        True,
        delete_event,
    ),
]
