"""From a database row or an API item to the cells ``rows`` parses: which source column (or JSON field)
holds each of the connector's fields, and how typed values become cells without changing their meaning.

The mapping is ``{connector field: source column}`` (``[source.columns]``). A field that is not mapped is
taken from a column of its own name (matched like CSV headers: case and surrounding blanks ignored); every
other column passes through as an extra field for the templates. A column whose name is a connector field
that is mapped to another column is left out: the mapping says where that field comes from.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from adapters.source.rows import RowValue, canonical_column, text
from connector.errors import SourceError


def cell(value: Any) -> tuple[RowValue, str]:
    """``value`` as a cell, and a problem (for ``RawRow.problem``) when it cannot be one.

    An aware datetime is written with its offset, so it stays an instant; a naive one without, so it
    stays a wall-clock time in the row's zone; a date stays a date (all-day rows). A whole-number
    ``Decimal`` (``NUMERIC`` columns: reminder minutes, flags) becomes an int, any other keeps its digits.
    """
    if value is None or isinstance(value, str | bool | int | float):
        return value, ""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat(), ""
    if isinstance(value, Decimal):
        if value.is_finite() and value == value.to_integral_value():
            return int(value), ""
        return str(value), ""
    if isinstance(value, uuid.UUID):
        return str(value), ""
    if isinstance(value, bytes | bytearray | memoryview):
        try:
            return bytes(value).decode("utf-8"), ""
        except UnicodeDecodeError:
            return None, "holds binary data that is not UTF-8 text — select it as text"
    if isinstance(value, dt.timedelta):
        return None, "holds a duration — select a date/time (e.g. the start plus the duration) instead"
    if isinstance(value, Mapping | Sequence | set):
        return None, "holds a structured value (a list or an object) — select a plain value"
    return str(value), ""


def find(data: Any, path: str) -> tuple[bool, Any]:
    """The value at ``path`` in parsed JSON: ``(found, value)``.

    ``path`` is a JSON pointer (``/data/items``) or dotted (``data.items``, ``items.0.id``). Dotted paths
    try the longest key first, so keys that contain dots themselves (``@odata.nextLink``) are found.
    ``""`` is ``data`` itself.
    """
    if path.startswith("/"):
        parts = [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]
        for part in parts:
            found, data = _step(data, part)
            if not found:
                return False, None
        return True, data
    return _dotted(data, path.split(".")) if path else (True, data)


def _dotted(data: Any, parts: list[str]) -> tuple[bool, Any]:
    if not parts:
        return True, data
    for take in range(len(parts), 0, -1):
        found, value = _step(data, ".".join(parts[:take]))
        if found:
            deeper, result = _dotted(value, parts[take:])
            if deeper:
                return True, result
    return False, None


def _step(data: Any, key: str) -> tuple[bool, Any]:
    if isinstance(data, Mapping):
        return (True, data[key]) if key in data else (False, None)
    if isinstance(data, list) and key.isdigit() and int(key) < len(data):
        return True, data[int(key)]
    return False, None


def column_layout(
    columns: Sequence[str],
    mapping: Mapping[str, str],
    known: frozenset[str],
    required: Sequence[str],
    *,
    setting: str,
) -> list[tuple[int, str]]:
    """Which result column feeds which field: ``(column index, field or extra name)`` pairs.

    Raises ``SourceError`` when a mapped column is not in the result, a required field has no column, or
    two columns would feed one field: those are mistakes in the query or the mapping, and reading on
    would quarantine (or, worse, lose) every row."""
    by_exact = {name: index for index, name in reversed(list(enumerate(columns)))}
    by_folded: dict[str, list[int]] = {}
    for index, name in enumerate(columns):
        by_folded.setdefault(name.strip().casefold(), []).append(index)
    listed = ", ".join(columns) or "none"
    layout: dict[int, str] = {}
    missing = []
    for field, column in mapping.items():
        found = by_exact.get(column)
        if found is None:
            matches = by_folded.get(column.strip().casefold(), [])
            found = matches[0] if len(matches) == 1 else None
        if found is None:
            missing.append(f"{column} (for {field})")
        else:
            layout[found] = field
    if missing:
        raise SourceError(
            f"the query returns no column {', '.join(missing)}; it returns: {listed}",
            fix=f"select that column, or map the field to a column it returns in [{setting}.columns]",
        )
    fed: dict[str, str] = {field: columns[index] for index, field in layout.items()}
    for index, name in enumerate(columns):
        if index in layout:
            continue
        field = canonical_column(name, known)
        if not field or field in mapping:
            continue
        if field in fed:
            raise SourceError(
                f"the query returns two columns for {field}: {fed[field]} and {name}",
                fix="give each column its own name (SELECT ... AS other_name)",
            )
        fed[field] = name
        layout[index] = field
    absent = [field for field in required if field not in fed]
    if absent:
        raise SourceError(
            f"the query returns no column for {', '.join(absent)}; it returns: {listed}",
            fix=f"select them (e.g. SELECT shift_id AS key ...) or map them in [{setting}.columns]",
        )
    return sorted(layout.items())


def item_values(
    item: Mapping[str, Any], mapping: Mapping[str, str], known: frozenset[str]
) -> tuple[dict[str, RowValue], str]:
    """The cells of one API item, and the first problem found (the row is then rejected).

    Mapped fields may be paths into the item (``employee.email``). Unmapped fields whose value is an
    object or a list are skipped: APIs nest much that has nothing to do with the calendar."""
    values: dict[str, RowValue] = {}
    problem = ""
    for field, path in mapping.items():
        found, raw = find(item, path)
        if not found:
            continue
        value, trouble = cell(raw)
        if trouble and not problem:
            problem = f"field '{path}' (for {field}) {trouble}"
        values[field] = value
    mapped = set(mapping.values())
    for name, raw in item.items():
        field = canonical_column(name, known)
        if not field or name in mapped or field in mapping or field in values:
            continue
        if field not in known and isinstance(raw, Mapping | list):
            continue
        value, trouble = cell(raw)
        if trouble and not problem:
            problem = f"field '{name}' {trouble}"
        values[field] = value
    return values, problem


def naming(values: Mapping[str, RowValue]) -> str:
    """What names a row for the admin besides its position (which shifts as rows come and go): its key,
    or a target's address, as `` (key SHIFT-1)``."""
    for field in ("key", "address"):
        name = text(values.get(field)).strip()
        if name:
            return f" ({field} {name})"
    return ""
