"""Schedules and targets from CSV or JSON files, e.g. an export of the host application or a spreadsheet.

The readers here only find rows; ``rows`` turns a row into an entry, a target or a ``Rejected`` (its
docstring lists the date/time conventions: naive times are wall-clock in the row's zone, times in a DST
gap are rejected, ambiguous autumn times take their first occurrence, all-day ends are inclusive). A
file that cannot be read as a whole raises ``SourceError``; a bad row never does.

CSV: UTF-8 with or without BOM, comma-separated, first line = column names. Rows are streamed, and a
row's origin is the physical line it starts on (a quoted value may span lines). Rows of only empty
cells, which spreadsheets leave behind, are skipped.

JSON: an array of objects, or ``{"entries": [...]}`` (``{"targets": [...]}`` for targets). The file is
loaded whole. A row's origin is ``<file name>#<index>``, the index counting from 0 as in JSON tools.

Note that the ``SourceError`` of a CSV file broken half-way (an unterminated quote, invalid UTF-8)
surfaces during iteration, after earlier rows were yielded: the caller must treat the whole read as
failed, as it does for any ``SourceError``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from adapters.source.rows import (
    ENTRY_COLUMNS,
    ENTRY_REQUIRED_COLUMNS,
    TARGET_COLUMNS,
    TARGET_REQUIRED_COLUMNS,
    RawRow,
    RowValue,
    canonical_column,
    checked_zone,
    entries_from_rows,
    targets_from_rows,
)
from connector.errors import SourceError
from connector.models import Rejected, ScheduleEntry, Target
from connector.source import ScheduleSource, TargetSource
from connector.window import Window

_SUFFIXES = (".csv", ".json")
_EXCEL_HINT = "in Excel use Save As → CSV UTF-8 (comma delimited)"


class CsvScheduleSource:
    def __init__(self, path: Path | str, *, default_zone: str) -> None:
        self._path = Path(path)
        self._default_zone = _checked_zone(default_zone)

    def describe(self) -> str:
        return f"CSV file {self._path}"

    def read(self, window: Window, owner: str | None = None) -> Iterator[ScheduleEntry | Rejected]:
        # The window is ignored: the core filters, and a file holds no index to narrow the read.
        rows = _csv_rows(self._path, ENTRY_COLUMNS, ENTRY_REQUIRED_COLUMNS)
        return entries_from_rows(rows, self._default_zone)


class JsonScheduleSource:
    def __init__(self, path: Path | str, *, default_zone: str) -> None:
        self._path = Path(path)
        self._default_zone = _checked_zone(default_zone)

    def describe(self) -> str:
        return f"JSON file {self._path}"

    def read(self, window: Window, owner: str | None = None) -> Iterator[ScheduleEntry | Rejected]:
        return entries_from_rows(_json_rows(self._path, ENTRY_COLUMNS, "entries"), self._default_zone)


class CsvTargetSource:
    def __init__(self, path: Path | str) -> None:
        self._path = Path(path)

    def describe(self) -> str:
        return f"CSV file {self._path}"

    def read_targets(self) -> Iterator[Target | Rejected]:
        return targets_from_rows(_csv_rows(self._path, TARGET_COLUMNS, TARGET_REQUIRED_COLUMNS))


class JsonTargetSource:
    def __init__(self, path: Path | str) -> None:
        self._path = Path(path)

    def describe(self) -> str:
        return f"JSON file {self._path}"

    def read_targets(self) -> Iterator[Target | Rejected]:
        return targets_from_rows(_json_rows(self._path, TARGET_COLUMNS, "targets"))


def file_schedule_source(path: Path | str, default_zone: str) -> ScheduleSource:
    """The schedule source for ``path``, chosen by its suffix (.csv or .json)."""
    path = Path(path)
    if _suffix(path, "schedule") == ".csv":
        return CsvScheduleSource(path, default_zone=default_zone)
    return JsonScheduleSource(path, default_zone=default_zone)


def file_target_source(path: Path | str) -> TargetSource:
    """The target source for ``path``, chosen by its suffix (.csv or .json)."""
    path = Path(path)
    if _suffix(path, "targets") == ".csv":
        return CsvTargetSource(path)
    return JsonTargetSource(path)


def _suffix(path: Path, what: str) -> str:
    suffix = path.suffix.lower()
    if suffix not in _SUFFIXES:
        found = f"suffix '{path.suffix}'" if path.suffix else "no suffix"
        raise SourceError(
            f"cannot read the {what} file {path}: it has {found}",
            fix=f"use a file ending in {' or '.join(_SUFFIXES)} ({_EXCEL_HINT})",
        )
    return suffix


def _checked_zone(name: str) -> str:
    return checked_zone(name)


def _open_error(path: Path, exc: OSError) -> SourceError:
    if isinstance(exc, FileNotFoundError):
        return SourceError(f"{path} does not exist", fix="check the file path in the settings")
    return SourceError(
        f"cannot read {path}: {exc.strerror or exc}",
        fix="check that the path names a file the connector's account may read",
    )


def _csv_rows(path: Path, known: frozenset[str], required: tuple[str, ...]) -> Iterator[RawRow]:
    try:
        # utf-8-sig drops the BOM Excel writes; newline="" lets csv see line breaks inside quotes.
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise _open_error(path, exc) from exc
    with handle:
        # strict: an unterminated quote would otherwise swallow every later row silently, and rows
        # that vanish are events that get deleted.
        reader = csv.reader(handle, strict=True)
        row_line = 1
        try:
            header = next(reader, None)
            if header is None:
                raise SourceError(
                    f"{path} is empty",
                    fix=f"the first line must name the columns, e.g. {','.join(required)}",
                )
            columns = _csv_columns(path, header, known, required)
            while True:
                # Set before reading, so a broken row is reported where it starts.
                row_line = reader.line_num + 1
                fields = next(reader, None)
                if fields is None:
                    break
                if not any(field.strip() for field in fields):
                    continue
                problem = ""
                if len(fields) > len(columns):
                    problem = (
                        f"row has {len(fields)} values but the header names {len(columns)} columns — "
                        "put values containing commas in double quotes"
                    )
                values: dict[str, RowValue] = {
                    column: field for column, field in zip(columns, fields, strict=False) if column
                }
                yield RawRow(f"{path.name}:{row_line}", values, problem)
        except csv.Error as exc:
            raise SourceError(
                f"{path} is not valid CSV in the row starting at line {row_line}: {exc}",
                fix="check the double quotes in that row (a quote inside a value is written twice)",
            ) from exc
        except UnicodeDecodeError as exc:
            raise SourceError(
                f"{path} is not UTF-8 text (at or after line {row_line})",
                fix=f"save it as UTF-8; {_EXCEL_HINT}",
            ) from exc
        except OSError as exc:
            raise _open_error(path, exc) from exc


def _csv_columns(
    path: Path, header: list[str], known: frozenset[str], required: tuple[str, ...]
) -> list[str]:
    columns = [canonical_column(name, known) for name in header]
    named = [column for column in columns if column]
    duplicates = sorted({column for column in named if named.count(column) > 1})
    if duplicates:
        raise SourceError(
            f"{path} names the column(s) {', '.join(duplicates)} more than once",
            fix="keep one column of each name in the first line",
        )
    missing = [column for column in required if column not in columns]
    if missing:
        raise SourceError(
            f"{path} has no column(s) {', '.join(missing)} (its first line names: {', '.join(named)})",
            fix="the first line must name the columns; see examples/README.md",
        )
    return columns


def _json_rows(path: Path, known: frozenset[str], list_key: str) -> Iterator[RawRow]:
    try:
        content = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SourceError(f"{path} is not UTF-8 text", fix="save it as UTF-8") from exc
    except OSError as exc:
        raise _open_error(path, exc) from exc
    try:
        data: Any = json.loads(content)
    except json.JSONDecodeError as exc:
        raise SourceError(
            f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
            fix="fix the syntax there (a JSON validator or editor shows it)",
        ) from exc
    items = data.get(list_key) if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise SourceError(
            f"{path} holds no list of rows",
            fix=f'write an array of objects, or an object {{"{list_key}": [...]}}',
        )
    for index, item in enumerate(items):
        yield _json_row(f"{path.name}#{index}", item, known)


def _json_row(origin: str, item: Any, known: frozenset[str]) -> RawRow:
    if not isinstance(item, dict):
        return RawRow(origin, {}, f"row is {_json_type(item)}, not an object with named values")
    values: dict[str, RowValue] = {}
    problem = ""
    # Keep going after a problem, so the rejection can still name the row's key and owner.
    for name, value in item.items():
        column = canonical_column(name, known)
        if not column:
            continue
        if column in values:
            problem = problem or f"column '{column}' is given more than once"
        elif isinstance(value, dict | list):
            problem = problem or f"column '{name}' holds {_json_type(value)} — give a plain value"
        else:
            values[column] = value
    return RawRow(origin, values, problem)


def _json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    return f"the {type(value).__name__} {value!r}"
