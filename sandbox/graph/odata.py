"""The OData query options the sandbox understands on events: ``$filter`` (comparisons, ``and``/``or``/
``not``, parentheses, ``any`` over ``singleValueExtendedProperties`` and ``categories``), ``$orderby``
and ``$select``. A ``$filter`` compiles to a predicate over store items.

Graph's rules kept here: the extended property's name is case-sensitive (its GUID is not), ``any`` and
``Any`` both work, and a property the filter does not support is a 400, not an empty result.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sandbox.graph.convert import parse_instant, parse_prop_id
from sandbox.graph.errors import GraphError, bad_request
from sandbox.tenant import Item, PropKey

Predicate = Callable[[Item], bool]

_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<punct>[(),:])|(?P<word>[A-Za-z_][\w./]*|[\d][\w.:+-]*))"
)
_OPS = {"eq", "ne", "gt", "ge", "lt", "le"}


@dataclass(frozen=True, slots=True)
class Literal:
    value: Any


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    position = 0
    text = text.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise _invalid(text)
        out.append(match.group(0).strip())
        position = match.end()
        while position < len(text) and text[position].isspace():
            position += 1
    return out


def _invalid(text: str, why: str = "") -> GraphError:
    return bad_request(f"Invalid filter clause: {why or text}")


class _Parser:
    """Recursive descent: or → and → not → primary (parentheses, ``x/any(v: ...)``, comparison)."""

    def __init__(self, text: str, scope: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.position = 0
        self.scope = scope  # "event" or "property" (inside $expand=singleValueExtendedProperties($filter=))

    def peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token.lower() != expected):
            raise _invalid(self.text, f"expected {expected or 'more'} at '{token or 'end'}'")
        self.position += 1
        return token

    def parse(self) -> Callable[[Any, dict[str, Any]], bool]:
        result = self.or_()
        if self.peek() is not None:
            raise _invalid(self.text, f"unexpected '{self.peek()}'")
        return result

    def or_(self) -> Callable[[Any, dict[str, Any]], bool]:
        parts = [self.and_()]
        while (self.peek() or "").lower() == "or":
            self.take()
            parts.append(self.and_())
        return parts[0] if len(parts) == 1 else (lambda x, env: any(p(x, env) for p in parts))

    def and_(self) -> Callable[[Any, dict[str, Any]], bool]:
        parts = [self.not_()]
        while (self.peek() or "").lower() == "and":
            self.take()
            parts.append(self.not_())
        return parts[0] if len(parts) == 1 else (lambda x, env: all(p(x, env) for p in parts))

    def not_(self) -> Callable[[Any, dict[str, Any]], bool]:
        if (self.peek() or "").lower() == "not":
            self.take()
            inner = self.not_()
            return lambda x, env: not inner(x, env)
        return self.primary()

    def primary(self) -> Callable[[Any, dict[str, Any]], bool]:
        token = self.take()
        if token == "(":
            inner = self.or_()
            self.take(")")
            return inner
        if token.lower().endswith(("/any", "/all")):
            return self.lambda_(token)
        operator = self.take().lower()
        if operator not in _OPS:
            raise _invalid(self.text, f"unsupported operator '{operator}'")
        literal = _literal(self.take(), self.text)
        getter = self.getter(token)
        return lambda x, env: _compare(getter(x, env), operator, literal)

    def lambda_(self, token: str) -> Callable[[Any, dict[str, Any]], bool]:
        collection, _, kind = token.rpartition("/")
        self.take("(")
        variable = self.take()
        self.take(":")
        body = self.or_()
        self.take(")")
        if self.scope != "event" or collection not in _COLLECTIONS:
            raise _invalid(self.text, f"'{collection}' cannot be used with {kind}")
        items = _COLLECTIONS[collection]
        quantifier = any if kind.lower() == "any" else all

        def evaluate(x: Any, env: dict[str, Any]) -> bool:
            return quantifier(body(x, {**env, variable: element}) for element in items(x))

        return evaluate

    def getter(self, path: str) -> Callable[[Any, dict[str, Any]], Any]:
        head, _, rest = path.partition("/")
        if self.scope == "property" and path in ("id", "value"):
            return lambda x, env: x["key"] if path == "id" else x["value"]
        if rest in ("id", "value"):
            # ep/id and ep/value inside singleValueExtendedProperties/any(ep: ...)
            return lambda x, env: _from_variable(env, head, rest, self.text)
        if not rest and head not in _EVENT_FIELDS:
            # a bare lambda variable, as in categories/any(c: c eq 'x')
            return lambda x, env: _from_variable(env, head, "", self.text)
        field = _EVENT_FIELDS.get(path)
        if field is None or self.scope != "event":
            raise GraphError(
                400, "ErrorInvalidProperty", f"The property '{path}' does not support filtering."
            )
        return lambda x, env: field(x)


def _from_variable(env: dict[str, Any], name: str, member: str, text: str) -> Any:
    if name not in env:
        raise _invalid(text, f"unknown range variable '{name}'")
    value = env[name]
    if member == "":
        return value
    return value["key"] if member == "id" else value["value"]


#: Collections a lambda (``any``/``all``) ranges over; extended properties as {"key", "value"} pairs.
_COLLECTIONS: dict[str, Callable[[Item], list[Any]]] = {
    "singleValueExtendedProperties": lambda item: [{"key": k, "value": v} for k, v in item.extended],
    "categories": lambda item: list(item.categories),
}

_EVENT_FIELDS: dict[str, Callable[[Item], Any]] = {
    "subject": lambda i: i.subject,
    "id": lambda i: i.id,
    "isAllDay": lambda i: i.is_all_day,
    "showAs": lambda i: i.show_as,
    "sensitivity": lambda i: i.sensitivity,
    "transactionId": lambda i: i.transaction_id,
    "start/dateTime": lambda i: i.start,
    "end/dateTime": lambda i: i.end,
    "createdDateTime": lambda i: i.created,
    "lastModifiedDateTime": lambda i: i.modified,
    "type": lambda i: "singleInstance",
}


def _literal(token: str, text: str) -> Literal:
    if token.startswith("'"):
        return Literal(token[1:-1].replace("''", "'"))
    lowered = token.lower()
    if lowered in ("true", "false"):
        return Literal(lowered == "true")
    if lowered == "null":
        return Literal(None)
    if re.fullmatch(r"-?\d+", token):
        return Literal(int(token))
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}T[\d:.]+(Z|[+-]\d{2}:\d{2})?", token):
        return Literal(parse_instant(token))
    raise _invalid(text, f"cannot read the literal '{token}'")


def _compare(left: Any, operator: str, literal: Literal) -> bool:
    right = literal.value
    if isinstance(left, tuple) and isinstance(right, str):  # an extended property key against its id text
        right = _prop_key_or_none(right)
    elif isinstance(left, datetime) and isinstance(right, str):
        right = parse_instant(right)
    if operator == "eq":
        return bool(left == right)
    if operator == "ne":
        return bool(left != right)
    if left is None or right is None:
        return False
    try:
        return bool(
            {"gt": left > right, "ge": left >= right, "lt": left < right, "le": left <= right}[operator]
        )
    except TypeError:
        return False


def _prop_key_or_none(text: str) -> PropKey | None:
    try:
        return parse_prop_id(text)
    except GraphError:
        return None


def event_filter(text: str) -> Predicate:
    compiled = _Parser(text, "event").parse()
    return lambda item: compiled(item, {})


def property_filter(text: str) -> Callable[[PropKey, str], bool]:
    """The filter of ``$expand=singleValueExtendedProperties($filter=id eq '...')``."""
    compiled = _Parser(text, "property").parse()
    return lambda key, value: compiled({"key": key, "value": value}, {})


# -- $expand, $orderby, $select ------------------------------------------------------------------------------
def expand_option(text: str | None) -> Callable[[PropKey, str], bool] | bool:
    """What ``$expand`` asks of extended properties: False (nothing), True (all) or a filter."""
    if not text:
        return False
    match = re.fullmatch(r"\s*singleValueExtendedProperties\s*(?:\((.*)\))?\s*", text, re.DOTALL)
    if match is None:
        raise bad_request(f"Parsing OData Select and Expand failed: '{text}' cannot be expanded here.")
    options = match.group(1)
    if not options:
        return True
    inner = re.fullmatch(r"\s*\$filter\s*=\s*(.*)", options, re.DOTALL)
    if inner is None:
        raise bad_request(f"Parsing OData Select and Expand failed: unsupported option in '{options}'.")
    return property_filter(inner.group(1))


_ORDER_KEYS: dict[str, Callable[[Item], Any]] = {
    "start/dateTime": lambda i: i.start,
    "end/dateTime": lambda i: i.end,
    "subject": lambda i: i.subject,
    "createdDateTime": lambda i: i.created,
    "lastModifiedDateTime": lambda i: i.modified,
}


def order(items: list[Item], text: str | None) -> list[Item]:
    if not text:
        return items
    out = list(items)
    for clause in reversed([c.strip() for c in text.split(",") if c.strip()]):
        name, _, direction = clause.partition(" ")
        key = _ORDER_KEYS.get(name)
        if key is None:
            raise GraphError(400, "ErrorInvalidProperty", f"The property '{name}' does not support ordering.")
        out.sort(key=key, reverse=direction.strip().lower() == "desc")
    return out


def select(data: dict[str, Any], text: str | None, known: frozenset[str] | None) -> dict[str, Any]:
    """Keep the selected properties (plus id and the etag, as Graph does); 400 for a name the type lacks."""
    if not text:
        return data
    names = [n.strip() for n in text.split(",") if n.strip()]
    for name in names:
        if known is not None and name not in known:
            raise bad_request(f"Could not find a property named '{name}' on type 'microsoft.graph.event'.")
    keep = {"@odata.etag", "id", "singleValueExtendedProperties", *names}
    return {k: v for k, v in data.items() if k in keep}
