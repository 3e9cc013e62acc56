"""Request bodies checked against Graph's own schema: the CSDL (OData v4 EDMX) of Graph v1.0 in
``../shared/reference/graph/cleanMetadata.xml``, so an unknown property or a wrong JSON type gets the
400 real Graph sends, and the sandbox never accepts a body the real service would refuse.

Only the structure matters here (properties, inheritance, complex types, enums, primitive JSON types);
semantics (time zones, all-day midnights) are checked by ``convert``.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from lxml import etree

from sandbox.graph.errors import GraphError

log = logging.getLogger(__name__)

EDM = "{http://docs.oasis-open.org/odata/ns/edm}"
#: Where the reference lives beside the repository; ``SANDBOX_GRAPH_CSDL`` overrides it.
DEFAULT_PATH = Path(__file__).resolve().parents[3] / "shared" / "reference" / "graph" / "cleanMetadata.xml"

_INTEGERS = {"Edm.Int16", "Edm.Int32", "Edm.Int64", "Edm.Byte", "Edm.SByte"}
_NUMBERS = {"Edm.Double", "Edm.Single", "Edm.Decimal"}
_STRINGS = {"Edm.String", "Edm.Guid", "Edm.Binary", "Edm.Duration", "Edm.TimeOfDay", "Edm.Date"}
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$")


@dataclass(frozen=True, slots=True)
class Prop:
    type: str  # qualified, e.g. "Edm.String", "microsoft.graph.itemBody", "Collection(...)"
    nullable: bool = True
    navigation: bool = False


@dataclass
class TypeDef:
    name: str  # qualified
    kind: str  # "entity" | "complex" | "enum"
    base: str | None = None
    props: dict[str, Prop] = field(default_factory=dict)
    members: frozenset[str] = frozenset()  # enum members, lower case (Graph accepts "HTML" and "html")
    flags: bool = False


class Schema:
    def __init__(self, types: dict[str, TypeDef]) -> None:
        self.types = types

    def properties(self, type_name: str) -> dict[str, Prop]:
        """Own and inherited properties (structural and navigation) of an entity or complex type."""
        out: dict[str, Prop] = {}
        chain: list[TypeDef] = []
        current: str | None = type_name
        while current is not None:
            definition = self.types[current]
            chain.append(definition)
            current = definition.base
        for definition in reversed(chain):
            out.update(definition.props)
        return out

    def derives_from(self, type_name: str, base: str) -> bool:
        current: str | None = type_name
        while current is not None:
            if current == base:
                return True
            current = self.types[current].base if current in self.types else None
        return False

    # -- validation ----------------------------------------------------------------------------------------
    def validate(self, value: Any, type_name: str) -> None:
        """Raise a 400 ``GraphError`` (code ``RequestBodyRead``) unless ``value`` fits ``type_name``."""
        self._check(value, type_name, nullable=False, where=type_name)

    def _check(self, value: Any, type_name: str, *, nullable: bool, where: str) -> None:
        if value is None:
            if not nullable:
                raise _read_error(
                    f"A null value was found for the property named '{where}', which has the expected type '{type_name}[Nullable=False]'. The expected type '{type_name}[Nullable=False]' does not allow null values."
                )
            return
        if type_name.startswith("Collection("):
            inner = type_name[len("Collection(") : -1]
            if not isinstance(value, list):
                raise _read_error(
                    f"A node of type '{_node(value)}' was read from the JSON reader when trying to read the value of the property '{where}'; however, a 'StartArray' node was expected."
                )
            for element in value:
                self._check(element, inner, nullable=True, where=where)
            return
        if type_name.startswith("Edm."):
            self._check_primitive(value, type_name, where)
            return
        definition = self.types.get(type_name)
        if definition is None:  # a type the file does not describe: nothing to hold the value against
            return
        if definition.kind == "enum":
            names = [v.strip().lower() for v in value.split(",")] if isinstance(value, str) else []
            if (
                not names
                or any(n not in definition.members for n in names)
                or (len(names) > 1 and not definition.flags)
            ):
                raise _read_error(f"The value '{value}' is not valid for the enumeration type '{type_name}'.")
            return
        if not isinstance(value, dict):
            raise _read_error(
                f"A node of type '{_node(value)}' was read from the JSON reader when trying to read a resource of type '{type_name}'; however, a 'StartObject' node was expected."
            )
        actual = type_name
        odata_type = value.get("@odata.type")
        if odata_type is not None:
            named = str(odata_type).lstrip("#")
            named = "microsoft." + named if named.startswith("graph.") else named
            if named not in self.types or not self.derives_from(named, type_name):
                raise _read_error(
                    f"A type named '{named}' could not be resolved by the model, or is not compatible with the expected type '{type_name}'."
                )
            actual = named
        props = self.properties(actual)
        for key, item in value.items():
            if "@" in key:  # instance and property annotations (@odata.type, @odata.etag, subject@...)
                continue
            prop = props.get(key)
            if prop is None:
                raise _read_error(
                    f"The property '{key}' does not exist on type '{actual}'. Make sure to only use property names that are defined by the type or mark the type as open type."
                )
            self._check(item, prop.type, nullable=prop.nullable, where=key)

    @staticmethod
    def _check_primitive(value: Any, type_name: str, where: str) -> None:
        ok: bool
        if type_name == "Edm.Boolean":
            ok = isinstance(value, bool)
        elif type_name in _INTEGERS:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif type_name in _NUMBERS:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        elif type_name == "Edm.DateTimeOffset":
            ok = isinstance(value, str) and _is_date_time(value)
        elif type_name in _STRINGS:
            ok = isinstance(value, str)
        else:  # Edm.Untyped, Edm.Stream, geography: anything JSON
            ok = True
        if not ok:
            raise _read_error(
                f"Cannot convert the literal '{value}' to the expected type '{type_name}' (property '{where}')."
            )


def _is_date_time(text: str) -> bool:
    if not _DATE_TIME.match(text):
        return False
    try:
        datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", text.replace("Z", "+00:00")))
    except ValueError:
        return False
    return True


def _node(value: Any) -> str:
    if isinstance(value, list):
        return "StartArray"
    if isinstance(value, dict):
        return "StartObject"
    return "PrimitiveValue"


def _read_error(message: str) -> GraphError:
    return GraphError(400, "RequestBodyRead", message)


def _qualify(type_name: str, aliases: dict[str, str]) -> str:
    if type_name.startswith("Collection("):
        return f"Collection({_qualify(type_name[len('Collection(') : -1], aliases)})"
    prefix, _, name = type_name.rpartition(".")
    return f"{aliases.get(prefix, prefix)}.{name}" if prefix else type_name


def parse(path: Path) -> Schema:
    root = etree.parse(str(path)).getroot()
    types: dict[str, TypeDef] = {}
    for schema in root.iter(f"{EDM}Schema"):
        namespace = schema.get("Namespace", "")
        aliases = {
            a.get("Alias", ""): a.get("Namespace", "") for a in root.iter(f"{EDM}Schema") if a.get("Alias")
        }
        for element in schema:
            tag = etree.QName(element).localname
            name = f"{namespace}.{element.get('Name')}"
            if tag == "EnumType":
                members = frozenset(m.get("Name", "").lower() for m in element.iter(f"{EDM}Member"))
                types[name] = TypeDef(name, "enum", members=members, flags=element.get("IsFlags") == "true")
            elif tag in ("EntityType", "ComplexType"):
                base = element.get("BaseType")
                definition = TypeDef(
                    name,
                    "entity" if tag == "EntityType" else "complex",
                    _qualify(base, aliases) if base else None,
                )
                for child in element:
                    child_tag = etree.QName(child).localname
                    if child_tag in ("Property", "NavigationProperty"):
                        definition.props[child.get("Name", "")] = Prop(
                            _qualify(child.get("Type", "Edm.Untyped"), aliases),
                            nullable=child.get("Nullable") != "false",
                            navigation=child_tag == "NavigationProperty",
                        )
                types[name] = definition
    return Schema(types)


@functools.cache
def schema() -> Schema | None:
    """The parsed CSDL, once per process; None (and a warning) when the reference file is absent, e.g. in
    an installed copy without ``../shared`` — the sandbox then skips structural checks."""
    path = Path(os.environ.get("SANDBOX_GRAPH_CSDL", str(DEFAULT_PATH)))
    if not path.is_file():
        log.warning("Graph CSDL not found at %s: request bodies are not checked against the schema", path)
        return None
    return parse(path)


def validate_event(body: Any) -> None:
    found = schema()
    if found is not None:
        found.validate(body, "microsoft.graph.event")


def event_property_names() -> frozenset[str] | None:
    found = schema()
    return frozenset(found.properties("microsoft.graph.event")) if found is not None else None
