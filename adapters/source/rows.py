"""From one source row (column → value) to a ``ScheduleEntry``, a ``Target`` or a ``Rejected``.

Shared by the CSV and JSON sources, which only differ in how they read rows. The conventions, which
``examples/README.md`` explains to admins:

* Naive times (``2026-12-01T09:00`` or ``2026-12-01 09:00``) are wall-clock times in the row's
  ``timezone``, else in the connector's default zone. Times with an offset or ``Z`` are instants: they
  are converted to that zone, keeping the instant.
* A naive time that does not exist (the hour clocks skip when daylight saving time begins) is rejected:
  shifting it would put the entry at a time nobody wrote. A naive time that exists twice (the hour
  repeated when daylight saving time ends) takes its first occurrence (``fold=0``, still summer time);
  write an offset to mean the second one.
* All-day rows take dates; ``end`` is the *inclusive* last day, as spreadsheet users mean it, and an
  empty ``end`` means one day. The model's end is exclusive, so one day is added. A date-time at
  00:00 is accepted as its date (spreadsheets like to add it); any other time of day is rejected.
* ``status`` cancelled/canceled makes the row yield nothing: a cancelled entry must vanish from the
  calendars, exactly like a removed one.

Only parsing happens here. End before start, text lengths, duplicate keys and unknown owners are checked
by the core for every kind of source.
"""

from __future__ import annotations

import contextlib
import enum
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, tzinfo
from typing import TypeAlias, TypeVar

from connector.directory import looks_like_address
from connector.errors import SourceError
from connector.models import (
    ONE_DAY,
    AllDaySpan,
    Rejected,
    ScheduleEntry,
    Sensitivity,
    ShowAs,
    Span,
    Target,
    TargetKind,
    TimedSpan,
    zone,
)

#: What a cell may hold: CSV gives strings, JSON also numbers, booleans and null.
RowValue: TypeAlias = str | bool | int | float | None

#: The columns an entry row may have, in the order the examples and exports use.
ENTRY_COLUMN_ORDER = (
    "key",
    "owner",
    "start",
    "end",
    "all_day",
    "timezone",
    "title",
    "body",
    "location",
    "category",
    "show_as",
    "sensitivity",
    "reminder_minutes",
    "status",
)
ENTRY_COLUMNS = frozenset(ENTRY_COLUMN_ORDER)
ENTRY_REQUIRED_COLUMNS = ("key", "owner", "start")

TARGET_COLUMNS = frozenset({"address", "owner_key", "kind", "enabled", "display_name"})
TARGET_REQUIRED_COLUMNS = ("address",)

_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})
_CANCELLED = frozenset({"cancelled", "canceled"})
_ACTIVE = frozenset({"", "confirmed", "tentative"})
_DIGITS = re.compile(r"[0-9]+")

_E = TypeVar("_E", bound=enum.StrEnum)


@dataclass(frozen=True, slots=True)
class RawRow:
    """One row as a reader found it, before any interpretation."""

    #: Where the row is, for the admin: ``schedule.csv:17`` or ``schedule.json#3``.
    origin: str
    #: Cells by canonical column name (see ``canonical_column``); absent cells are simply missing.
    values: Mapping[str, RowValue]
    #: A problem the reader already found (too many fields, a nested JSON value); rejects the row.
    problem: str = ""


class _RowProblem(Exception):
    """Raised while parsing one row; becomes the ``Rejected`` reason."""


def canonical_column(name: str, known: frozenset[str]) -> str:
    """Known columns match case-insensitively and ignoring surrounding blanks, since spreadsheet
    headers get retyped by hand; other (extra) columns keep their spelling for the templates."""
    stripped = name.strip()
    lowered = stripped.lower()
    return lowered if lowered in known else stripped


def checked_zone(name: str) -> str:
    """``name`` if it is a known IANA zone; a source's default zone must be, or no naive time can be read."""
    try:
        zone(name)
    except KeyError:
        raise SourceError(
            f"unknown default time zone '{name}'",
            fix="set the connector's time zone to an IANA name such as Europe/Paris",
        ) from None
    return name


def text(value: RowValue) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --- schedule entries ---------------------------------------------------------------------------


def entries_from_rows(rows: Iterable[RawRow], default_zone: str) -> Iterator[ScheduleEntry | Rejected]:
    for row in rows:
        parsed = parse_entry(row, default_zone)
        if parsed is not None:
            yield parsed


def parse_entry(row: RawRow, default_zone: str) -> ScheduleEntry | Rejected | None:
    """The entry of ``row``, a ``Rejected`` saying what is wrong, or ``None`` for a cancelled row."""
    values = row.values
    key = text(values.get("key")).strip()
    owner = text(values.get("owner")).strip()
    try:
        if row.problem:
            raise _RowProblem(row.problem)
        # Status first: a cancelled row must disappear even if the rest of it is broken.
        status = text(values.get("status")).strip()
        if status.lower() in _CANCELLED:
            return None
        if status.lower() not in _ACTIVE:
            raise _RowProblem(
                f"status '{status}' is not valid — use confirmed, tentative or cancelled (or leave it empty)"
            )
        if not key:
            raise _RowProblem("key is missing — every row needs its own stable key, such as SHIFT-000123")
        if not owner:
            raise _RowProblem("owner is missing — give the owner key (such as E1001) or the mailbox address")
        return ScheduleEntry(
            source_key=key,
            owner=owner,
            span=_span(values, default_zone),
            title=text(values.get("title")).strip(),
            body=text(values.get("body")),
            location=text(values.get("location")).strip(),
            category=text(values.get("category")),
            show_as=_choice(values, "show_as", ShowAs),
            sensitivity=_choice(values, "sensitivity", Sensitivity),
            reminder_minutes=_reminder(values.get("reminder_minutes")),
            extra={name: text(value) for name, value in values.items() if name not in ENTRY_COLUMNS},
            origin=row.origin,
        )
    except _RowProblem as problem:
        return Rejected(source_key=key, owner=owner, reason=str(problem), origin=row.origin)


def _span(values: Mapping[str, RowValue], default_zone: str) -> Span:
    start_raw = text(values.get("start")).strip()
    end_raw = text(values.get("end")).strip()
    zone_name = text(values.get("timezone")).strip() or default_zone
    # Checked for all-day rows too, although they do not use it: a typo is worth reporting anyway.
    row_zone = _zone(zone_name)
    if not start_raw:
        raise _RowProblem("start is missing — give a date/time in ISO 8601 such as 2026-12-01T09:00")
    if _flag(values.get("all_day"), "all_day", default=False):
        first = _day("start", start_raw)
        last = _day("end", end_raw) if end_raw else first
        try:
            return AllDaySpan(first, last + ONE_DAY)
        except OverflowError:
            raise _RowProblem(f"end '{end_raw}' is too far in the future") from None
    if not end_raw:
        raise _RowProblem(
            "end is missing — timed entries need an end such as 2026-12-01T17:00 "
            "(for whole days set all_day to true)"
        )
    start = _local_time("start", start_raw, row_zone, zone_name)
    end = _local_time("end", end_raw, row_zone, zone_name)
    return TimedSpan(start, end, zone_name)


def _zone(name: str) -> tzinfo:
    try:
        return zone(name)
    except KeyError:
        raise _RowProblem(f"unknown time zone '{name}' — use an IANA name such as Europe/Paris") from None


def _local_time(column: str, raw: str, row_zone: tzinfo, zone_name: str) -> datetime:
    if _is_date(raw):
        raise _RowProblem(
            f"{column} '{raw}' has no time of day — give one such as {raw}T09:00, "
            "or set all_day to true for whole days"
        )
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise _RowProblem(
            f"{column} '{raw}' is not a date/time — use ISO 8601 such as 2026-12-01T09:00"
        ) from None
    try:
        if parsed.tzinfo is not None:
            return parsed.astimezone(row_zone)
        local = parsed.replace(tzinfo=row_zone, fold=0)
        round_trip = local.astimezone(UTC).astimezone(row_zone)
    except OverflowError:
        raise _RowProblem(f"{column} '{raw}' is out of range") from None
    if round_trip.replace(tzinfo=None) != parsed:
        raise _RowProblem(
            f"{column} '{raw}' does not exist in {zone_name}: clocks skip that hour on "
            f"{parsed.date().isoformat()} (daylight saving time begins) — use a time before or after the gap"
        )
    return local


def _is_date(raw: str) -> bool:
    try:
        date.fromisoformat(raw)
    except ValueError:
        return False
    return True


def _day(column: str, raw: str) -> date:
    with contextlib.suppress(ValueError):
        return date.fromisoformat(raw)
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise _RowProblem(
            f"{column} '{raw}' is not a date — use ISO 8601 such as 2026-12-01 (all-day row)"
        ) from None
    if parsed.time() != time():
        raise _RowProblem(
            f"{column} '{raw}' has a time of day in an all-day row — give a date such as "
            f"{parsed.date().isoformat()}, or set all_day to false"
        )
    return parsed.date()


def _flag(value: RowValue, column: str, *, default: bool) -> bool:
    if isinstance(value, bool):
        return value
    raw = text(value).strip()
    if not raw:
        return default
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise _RowProblem(f"{column} '{raw}' is not valid — use true, false, yes, no, 1 or 0 (or leave it empty)")


def _choice(values: Mapping[str, RowValue], column: str, kind: type[_E]) -> _E | None:
    raw = text(values.get(column)).strip()
    if not raw:
        return None
    by_name = {member.value.lower(): member for member in kind}
    try:
        return by_name[raw.lower()]
    except KeyError:
        accepted = ", ".join(member.value for member in kind)
        raise _RowProblem(
            f"{column} '{raw}' is not valid — use one of {accepted} (or leave it empty)"
        ) from None


def _reminder(value: RowValue) -> int | None:
    # bool is an int to Python, but ``true`` minutes is surely a mistake.
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    raw = text(value).strip()
    if not raw:
        return None
    if isinstance(value, str) and _DIGITS.fullmatch(raw):
        return int(raw)
    raise _RowProblem(
        f"reminder_minutes '{raw}' is not valid — use a whole number of minutes, 0 or more "
        "(or leave it empty for no reminder)"
    )


# --- targets ------------------------------------------------------------------------------------


def targets_from_rows(rows: Iterable[RawRow]) -> Iterator[Target | Rejected]:
    """Targets of ``rows``; a later row that reuses an address or owner key is rejected, because an
    owner must resolve to exactly one mailbox."""
    # Addresses and owner keys share one namespace, matched case-insensitively as the core's
    # directory does: entries may name their owner by either.
    claimed: dict[str, str] = {}
    for row in rows:
        parsed = parse_target(row)
        if isinstance(parsed, Target):
            names = (("address", parsed.address), ("owner_key", parsed.owner_key))
            clash = next(((column, name) for column, name in names if name.casefold() in claimed), None)
            if clash is None:
                claimed.setdefault(parsed.address.casefold(), row.origin)
                claimed.setdefault(parsed.owner_key.casefold(), row.origin)
            else:
                column, name = clash
                parsed = Rejected(
                    source_key="",
                    owner=parsed.address,
                    reason=f"{column} '{name}' is already used at {claimed[name.casefold()]} — "
                    "each mailbox and each owner key may appear only once",
                    origin=row.origin,
                )
        yield parsed


def parse_target(row: RawRow) -> Target | Rejected:
    values = row.values
    address = text(values.get("address")).strip()
    try:
        if row.problem:
            raise _RowProblem(row.problem)
        if not address:
            raise _RowProblem("address is missing — give the mailbox address, such as anna@contoso.example")
        if not looks_like_address(address):
            raise _RowProblem(
                f"address '{address}' does not look like an e-mail address — use one such as "
                "anna@contoso.example"
            )
        address = address.lower()
        return Target(
            address=address,
            owner_key=text(values.get("owner_key")).strip() or address,
            kind=_choice(values, "kind", TargetKind) or TargetKind.USER,
            enabled=_flag(values.get("enabled"), "enabled", default=True),
            display_name=text(values.get("display_name")).strip(),
        )
    except _RowProblem as problem:
        return Rejected(source_key="", owner=address, reason=str(problem), origin=row.origin)
