"""FindItem restrictions: a ``m:Restriction`` tree turned into a predicate over tenant items.

Covers what a calendar pusher sends: IsEqualTo / IsNotEqualTo / ordering comparisons on a field or an
extended property against a constant, Exists, Contains, and And / Or / Not around them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from lxml import etree

from sandbox.ews import timezones
from sandbox.ews.errors import INVALID_PROPERTY, INVALID_REQUEST, EwsError
from sandbox.ews.items import FREE_BUSY_OUT, SENSITIVITY_OUT, ext_key, uid_of
from sandbox.ews.soap import t
from sandbox.tenant import Item

Predicate = Callable[[Item], bool]

FIELD_GETTERS: dict[str, Callable[[Item], Any]] = {
    "item:Subject": lambda i: i.subject,
    "item:Body": lambda i: i.body,
    "item:Categories": lambda i: i.categories,
    "item:Sensitivity": lambda i: SENSITIVITY_OUT.get(i.sensitivity, "Normal"),
    "item:ReminderIsSet": lambda i: i.reminder_on,
    "item:ReminderMinutesBeforeStart": lambda i: i.reminder_minutes,
    "item:DateTimeCreated": lambda i: i.created,
    "item:LastModifiedTime": lambda i: i.modified,
    "item:ItemClass": lambda i: "IPM.Appointment",
    "calendar:Start": lambda i: i.start,
    "calendar:End": lambda i: i.end,
    "calendar:IsAllDayEvent": lambda i: i.is_all_day,
    "calendar:Location": lambda i: i.location,
    "calendar:LegacyFreeBusyStatus": lambda i: FREE_BUSY_OUT.get(i.show_as, "Busy"),
    "calendar:UID": uid_of,
}

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "IsEqualTo": lambda a, b: a == b,
    "IsNotEqualTo": lambda a, b: a != b,
    "IsGreaterThan": lambda a, b: a > b,
    "IsGreaterThanOrEqualTo": lambda a, b: a >= b,
    "IsLessThan": lambda a, b: a < b,
    "IsLessThanOrEqualTo": lambda a, b: a <= b,
}


def _getter(path: etree._Element) -> Callable[[Item], Any]:
    if path.tag == t("FieldURI"):
        uri = path.get("FieldURI", "")
        if uri not in FIELD_GETTERS:
            raise EwsError(INVALID_PROPERTY, f"The sandbox cannot restrict on {uri}.")
        return FIELD_GETTERS[uri]
    if path.tag == t("ExtendedFieldURI"):
        key = ext_key(path)
        return lambda item: item.prop(key)
    raise EwsError(INVALID_PROPERTY, f"Unsupported property path {etree.QName(path).localname}.")


def _coerce(sample: Any, text: str) -> Any:
    """A restriction constant typed like the property it is compared with."""
    if isinstance(sample, bool):
        return text.strip().lower() in ("true", "1")
    if isinstance(sample, int):
        return int(text)
    if isinstance(sample, datetime):
        return timezones.parse_instant(text)
    return text


def _comparison(op: Callable[[Any, Any], bool], expr: etree._Element) -> Predicate:
    path = next((c for c in expr if isinstance(c.tag, str) and c.tag != t("FieldURIOrConstant")), None)
    operand = expr.find(t("FieldURIOrConstant"))
    if path is None or operand is None:
        raise EwsError(INVALID_REQUEST, "A comparison needs a property and a FieldURIOrConstant.")
    get = _getter(path)
    constant = operand.find(t("Constant"))
    if constant is None:
        other = _getter(operand[0])

        def against_field(item: Item) -> bool:
            a, b = get(item), other(item)
            return a is not None and b is not None and op(a, b)

        return against_field
    text = constant.get("Value", "")

    def against_constant(item: Item) -> bool:
        value = get(item)
        if value is None:
            return False
        if isinstance(value, tuple):  # multi-valued (Categories): any value matches
            return any(op(v, text) for v in value)
        return bool(op(value, _coerce(value, text)))

    return against_constant


def _contains(expr: etree._Element) -> Predicate:
    get = _getter(expr[0])
    constant = expr.find(t("Constant"))
    needle = "" if constant is None else constant.get("Value", "")
    mode = expr.get("ContainmentMode", "Substring")
    ignore_case = "IgnoreCase" in expr.get("ContainmentComparison", "")

    def norm(s: str) -> str:
        return s.casefold() if ignore_case else s

    def test(value: str) -> bool:
        v, n = norm(value), norm(needle)
        return {
            "FullString": v == n,
            "Prefixed": v.startswith(n),
            "PrefixOnWords": any(w.startswith(n) for w in v.split()),
            "ExactPhrase": n in v,
        }.get(mode, n in v)

    def predicate(item: Item) -> bool:
        value = get(item)
        if isinstance(value, tuple):
            return any(test(str(v)) for v in value)
        return value is not None and test(str(value))

    return predicate


def compile_expression(expr: etree._Element) -> Predicate:
    name = etree.QName(expr).localname
    children = [c for c in expr if isinstance(c.tag, str)]
    if name in _COMPARE:
        return _comparison(_COMPARE[name], expr)
    if name == "Exists":
        get = _getter(children[0])
        return lambda item: get(item) not in (None, (), "")
    if name == "Contains":
        return _contains(expr)
    if name == "Not":
        inner = compile_expression(children[0])
        return lambda item: not inner(item)
    if name in ("And", "Or"):
        parts = [compile_expression(c) for c in children]
        if name == "And":
            return lambda item: all(p(item) for p in parts)
        return lambda item: any(p(item) for p in parts)
    raise EwsError(INVALID_REQUEST, f"The sandbox does not evaluate {name} restrictions.")


def compile_restriction(restriction: etree._Element | None) -> Predicate | None:
    if restriction is None:
        return None
    children = [c for c in restriction if isinstance(c.tag, str)]
    return compile_expression(children[0]) if children else None
