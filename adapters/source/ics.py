"""Schedules from iCalendar (.ics) files: one file, or a folder of them (an export per person or per room).

Recurring events are expanded inside the sync window by ``recurring_ical_events``; every occurrence becomes
its own entry, because the connector writes single events (DESIGN §4), never Exchange series.

What a file means, and the decisions taken where iCalendar leaves room:

* **Owner.** ``owner`` gives every entry the same owner; ``owner_property`` (``X-OWNER``, ``ORGANIZER``,
  ``ATTENDEE`` ...) reads it per event, with a ``mailto:`` prefix dropped, and falls back to ``owner`` when
  the event lacks it. A property that names several different owners is rejected rather than guessed.
* **Keys.** A single event's key is its UID. An occurrence of a recurring event (RRULE, RDATE or
  RECURRENCE-ID) is ``UID#<original start>``: the RECURRENCE-ID, which for an unmoved occurrence is its
  start, in UTC and ISO basic format (``20261201T080000Z``), or the date (``20261201``) for all-day series.
  A moved occurrence keeps its key, so it is updated where it is, not deleted and created again. A UID
  longer than 160 characters is replaced by its SHA-256 (``uid-sha256-...``): the key is stored in a
  string property of each event, EWS returns such properties cut at 255 characters in FindItem
  results, and a cut key would never match its entry again. An event without UID (invalid, but fragments
  and hand-written files have them) gets ``ics-<hash of file name, DTSTART and SUMMARY>``: stable while
  those three stay the same.
* **Times.** A TZID that is an IANA name uses the IANA zone, even where the file also has a VTIMEZONE of
  that name (IANA knows the zone's whole history; exported VTIMEZONEs often carry only recent rules). A
  TZID defined by a VTIMEZONE in the file uses that definition; the entry then gets an IANA zone that
  shows the same wall clock at the same instant for that occurrence's start (the TZID itself, its
  Windows → IANA mapping, the VTIMEZONE's X-LIC-LOCATION, or the IANA name inside a globally unique
  ``/vendor/Area/City`` TZID). When none does, the instant is kept and shown in the connector's zone:
  the event is at the right moment, only its zone label differs. Instants are never changed. A TZID
  with no VTIMEZONE is looked up as an IANA name, a Windows name (``W. Europe Standard Time``: the CLDR
  table icalendar ships) or a globally unique TZID; anything else rejects the event, naming the TZID.
  Times in UTC are instants and are shown in the connector's zone (in the X-WR-TIMEZONE if the calendar
  has one); floating times (no TZID, no ``Z``) are wall-clock times in the X-WR-TIMEZONE, else in the
  connector's zone. A rule on a UTC start repeats in UTC (RFC 5545), except under an X-WR-TIMEZONE,
  which Google writes to mean that zone's wall clock for its UTC times. A time that does not exist
  (in the hour skipped when daylight saving time begins) means the time after the gap and one that
  exists twice means its first occurrence, as RFC 5545 §3.3.5 defines.
* **Spans.** DATE values become all-day entries (DTEND exclusive, as in iCalendar). No DTEND and no
  DURATION: one day for a date, zero length for a date-time (RFC 5545 §3.6.1; Exchange keeps a
  zero-length event as a point in time, and the core's window handles it). DURATION is supported. With
  both DTEND and DURATION (Mozilla writes ``DURATION:PT0S`` beside a DTEND) DTEND wins, as it does in
  recurring_ical_events. A date DTSTART with a date-time DTEND at midnight is taken as
  that date (the rows source does the same); other mixes of dates and date-times are rejected. An end
  before the start is rejected here, although the core checks it for every source, because
  recurring_ical_events swaps such a start and end before the core could see them.
* **Cancelled.** STATUS:CANCELLED events and occurrences yield nothing, exactly like removed ones.
  EXDATEs are honoured.
* **Fields.** SUMMARY → title, DESCRIPTION → body, LOCATION → location, the first CATEGORIES value →
  category, X-MICROSOFT-CDO-BUSYSTATUS (written by Exchange), else TRANSP:TRANSPARENT → free, else
  STATUS:TENTATIVE → tentative; CLASS:PRIVATE and CONFIDENTIAL → sensitivity; the first DISPLAY alarm
  that fires at or before the start → reminder minutes. Text arrives decoded (escapes, UTF-8).
* **Bad data.** A problem with one event (no DTSTART, two DTSTARTs, an unreadable RRULE, an unknown
  TZID) rejects that event with a reason naming the property; an occurrence whose own times are wrong
  is rejected under its own key, so its existing calendar event is left alone. A series that repeats
  more than 10,000 times inside the window is rejected whole, and FREQ=SECONDLY or MINUTELY rules are
  rejected without being expanded at all. VTODO and VJOURNAL components are not events and are
  skipped. A file that cannot be read as iCalendar (empty, not UTF-8, cut off, not iCalendar) raises
  ``SourceError`` when it is the source's only file; in a folder it becomes one ``Rejected`` (origin:
  the file name) and the other files are still read.
  Note that the entries of such a file are then missing from the read: their events count as removed,
  and only the delete guard holds large removals back. A file or folder that cannot be opened at all
  raises ``SourceError``: nothing is deleted on account of a file we could not even open.

A folder is read non-recursively, in file-name order; only ``*.ics`` files count (any case), and hidden
files (a leading dot, as editors and copy tools use for files being written) are skipped.

icalendar resolves TZIDs at parse time through a process-wide cache in which the first VTIMEZONE ever
seen for a TZID wins: a second file (or a corrected version of the same file) defining that TZID
differently would silently get the first definition. So every TZID is resolved again here, from the file
itself. For the same reason X-WR-TIMEZONE is applied here instead of by ``x_wr_timezone``, which takes
any time whose zone has no name (a VTIMEZONE without TZNAME, as Exchange writes them) for a floating
time and would move it into the X-WR-TIMEZONE.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
import warnings
import zoneinfo
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import cache
from pathlib import Path
from typing import Any

import icalendar
import recurring_ical_events  # type: ignore[import-untyped]
from icalendar.error import GloballyUniqueTZIDGuessed
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from connector.errors import SettingsError, SourceError
from connector.models import (
    AllDaySpan,
    Rejected,
    ScheduleEntry,
    Sensitivity,
    ShowAs,
    Span,
    TimedSpan,
    zone,
)
from connector.window import Window

#: More occurrences than this inside the window is not a schedule but a broken rule (FREQ=MINUTELY ...).
MAX_OCCURRENCES = 10_000
#: Longer UIDs are hashed (see the module docstring: Exchange cuts string properties at 255 in searches).
MAX_UID_CHARS = 160
#: Dates and floating times only get a zone here, and an event may start before the window yet overlap
#: it; a day on each side covers every UTC offset. The core filters the entries exactly.
_QUERY_MARGIN = timedelta(days=1)
#: The properties that decide whether and when an event happens: if icalendar could not read one, the
#: event is rejected instead of being placed at a time nobody wrote.
_DECISIVE_PROPERTIES = frozenset(
    {"DTSTART", "DTEND", "DURATION", "RRULE", "RDATE", "EXDATE", "EXRULE", "RECURRENCE-ID", "STATUS"}
)
#: The properties that hold dates and times, whose zone is resolved here.
_ZONED_PROPERTIES = ("DTSTART", "DTEND", "RECURRENCE-ID", "EXDATE", "RDATE")
#: Each of these appears at most once in an event (RFC 5545 §3.6.1); two are a contradiction.
_SINGLE_PROPERTIES = ("DTSTART", "DTEND", "DURATION", "RECURRENCE-ID")
#: Set on each component before expansion so that an occurrence can be traced back to the component it
#: came from (the master or one override): recurring_ical_events copies a component's properties into
#: each occurrence, and hands out no other link.
_REF = "X-SCHEDULE-CONNECTOR-REF"
#: The components whose BEGIN and END must match (see _check_nesting).
_READ_COMPONENTS = frozenset({"VCALENDAR", "VEVENT", "VTIMEZONE", "STANDARD", "DAYLIGHT", "VALARM"})
#: Rules this frequent are rejected before expansion (see _check_group).
_TOO_FREQUENT = frozenset({"SECONDLY", "MINUTELY"})
_SUFFIX = ".ics"
_PROPERTY_NAME = re.compile(r"^[A-Za-z0-9-]+$")
_BUSY_STATUS = {
    "FREE": ShowAs.FREE,
    "TENTATIVE": ShowAs.TENTATIVE,
    "BUSY": ShowAs.BUSY,
    "OOF": ShowAs.OOF,
    "WORKINGELSEWHERE": ShowAs.WORKING_ELSEWHERE,
}
_SENSITIVITY = {"PRIVATE": Sensitivity.PRIVATE, "CONFIDENTIAL": Sensitivity.CONFIDENTIAL}
_DATE_TIME_EXAMPLE = "such as DTSTART;TZID=Europe/Paris:20261201T090000"


class IcsScheduleSource:
    """Entries from one ``.ics`` file or a folder of them; see the module docstring for the rules."""

    def __init__(
        self,
        path: Path | str,
        *,
        default_zone: str,
        owner: str | None = None,
        owner_property: str | None = None,
    ) -> None:
        self._path = Path(path)
        owner = (owner or "").strip()
        owner_property = (owner_property or "").strip()
        problems: list[str] = []
        if not owner and not owner_property:
            problems.append(
                "an iCalendar source needs owner (the owner key or mailbox every entry belongs to) or "
                "owner_property (the event property naming each entry's owner, such as X-OWNER or "
                "ORGANIZER), or both"
            )
        if owner_property and not _PROPERTY_NAME.match(owner_property):
            problems.append(
                f"owner_property '{owner_property}' is not an iCalendar property name — use letters, "
                "digits and '-' only, such as X-OWNER"
            )
        try:
            default = zone(default_zone)
        except KeyError:
            problems.append(
                f"unknown default time zone '{default_zone}' — set the connector's time zone to an IANA "
                "name such as Europe/Paris"
            )
        if problems:
            raise SettingsError(problems)
        self._options = _Options(owner, owner_property.upper(), default, default_zone)

    def describe(self) -> str:
        if self._path.is_dir():
            try:
                count = len(self._files())
            except SourceError:
                return f"iCalendar folder {self._path} (unreadable)"
            return f"iCalendar folder {self._path} ({count} file{'' if count == 1 else 's'})"
        return f"iCalendar file {self._path}"

    def read(self, window: Window, owner: str | None = None) -> Iterator[ScheduleEntry | Rejected]:
        """Entries of every occurrence overlapping ``window`` (and a day around it).

        ``owner`` is ignored: a file must be parsed whole anyway, and the hint may name an owner by its
        key where the file names it by address; the core keeps what it needs."""
        files = self._files()
        single = not self._path.is_dir()
        return itertools.chain.from_iterable(self._read_file(path, window, single=single) for path in files)

    # --- files ------------------------------------------------------------------------------------

    def _files(self) -> list[Path]:
        path = self._path
        try:
            if path.is_dir():
                files = sorted(
                    (
                        child
                        for child in path.iterdir()
                        if child.suffix.lower() == _SUFFIX
                        and not child.name.startswith(".")
                        and child.is_file()
                    ),
                    key=lambda child: child.name,
                )
                if not files:
                    raise SourceError(
                        f"the folder {path} holds no {_SUFFIX} files",
                        fix="put the calendar files there, or check the path in the settings",
                    )
                return files
            if not path.exists():
                raise SourceError(
                    f"{path} does not exist",
                    fix="check the path in the settings: it must name an .ics file or a folder of them",
                )
        except OSError as exc:
            raise _open_error(path, exc) from exc
        return [path]

    def _read_file(self, path: Path, window: Window, *, single: bool) -> Iterator[ScheduleEntry | Rejected]:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise _open_error(path, exc) from exc
        try:
            calendars = _parse(data)
        except _Problem as problem:
            if single:
                raise SourceError(
                    f"{path} cannot be read as iCalendar: {problem}",
                    fix="export the calendar again as an .ics file (iCalendar, UTF-8)",
                ) from None
            yield Rejected(
                source_key="",
                owner=self._options.owner,
                reason=f"the file cannot be read as iCalendar: {problem} — export it again as an .ics "
                "file (iCalendar, UTF-8); its entries are missing until then",
                origin=path.name,
            )
            return
        reader = _FileReader(self._options, path.name, window)
        for calendar in calendars:
            yield from reader.read_calendar(calendar)


# --- parsing a whole file -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Options:
    """The source's settings, as every file reader needs them."""

    owner: str
    owner_property: str
    zone: tzinfo
    zone_name: str


class _Problem(Exception):
    """Raised while reading a file or an event; becomes the ``Rejected`` reason."""


def _parse(data: bytes) -> list[icalendar.Component]:
    """The top-level components of a file, or ``_Problem`` saying why it is no iCalendar."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if not data.strip():
        raise _Problem("it is empty")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        # icalendar would replace the bad bytes silently, and names would arrive garbled.
        raise _Problem(f"it is not UTF-8 text (byte {exc.start} is not), as RFC 5545 requires") from None
    _check_nesting(text)
    try:
        with warnings.catch_warnings():
            # icalendar warns that it guessed a globally unique TZID; we resolve every TZID again
            # anyway (see the module docstring), and the guess is documented there.
            warnings.simplefilter("ignore", GloballyUniqueTZIDGuessed)
            # Bytes, not str: icalendar takes a one-line str for a file name to open.
            components = icalendar.Component.from_ical(data, multiple=True)
    except ValueError as exc:
        raise _Problem(str(exc)) from None
    except (TypeError, AttributeError, LookupError) as exc:
        # icalendar trips over some malformed input instead of reporting it (a TZID given twice in a
        # VTIMEZONE, an END that closes the wrong component ...).
        raise _Problem(f"icalendar cannot parse it ({type(exc).__name__}: {exc})") from None
    if not components:
        raise _Problem("it holds no BEGIN:VCALENDAR")
    return components


def _check_nesting(text: str) -> None:
    """icalendar drops a component that is never closed without a word: a file cut off in the middle
    (still being written, or truncated by a copy) would lose its last events silently. And it lets any
    END close whatever is open, so a misplaced END:VEVENT would pour the following events into one.
    A wrong END between components we do not read (END:VTOOD for a VTODO, found in the wild) is let
    through, as icalendar does."""
    opened: list[str] = []
    # Content lines end in CRLF (or a bare LF in the wild); str.splitlines() would also break at
    # characters such as U+2028 that are plain text inside a value.
    for number, line in enumerate(text.split("\n"), start=1):
        if line[:6].upper() == "BEGIN:":
            opened.append(line[6:].strip().upper())
        elif line[:4].upper() == "END:":
            closed = line[4:].strip().upper()
            if not opened:
                raise _Problem(f"END:{closed} on line {number} closes a component that was never opened")
            begun = opened.pop()
            if begun != closed and {begun, closed} & _READ_COMPONENTS:
                raise _Problem(
                    f"END:{closed} on line {number} closes BEGIN:{begun} — an END line is missing or misplaced"
                )
    if opened:
        raise _Problem(
            f"it ends inside BEGIN:{opened[-1]} ({len(opened)} component(s) never closed) — the file is "
            "cut off or still being written"
        )


# --- one file's calendars -------------------------------------------------------------------------


@dataclass
class _Group:
    """The components of one event: the master and its overrides (same UID), or one UID-less event."""

    uid: str
    components: list[icalendar.Component]
    #: Position of the first component among the VEVENTs of its calendar, counting from 1.
    index: int


@dataclass
class _CustomZone:
    """A zone defined by a VTIMEZONE of the file, and the IANA names that may stand for it."""

    tz: tzinfo
    candidates: tuple[str, ...]


@dataclass
class _Zones:
    """Resolves the TZIDs of one calendar, from that calendar alone (see the module docstring)."""

    floating: tzinfo
    #: The X-WR-TIMEZONE, which Google-style calendars mean for their UTC times too.
    calendar_zone: tzinfo | None
    vtimezones: Mapping[str, icalendar.Component]
    custom: dict[str, _CustomZone] = field(default_factory=dict)
    #: id(tzinfo) → the custom zone, to find a custom zone again from an occurrence's datetime.
    by_tz: dict[int, _CustomZone] = field(default_factory=dict)

    def place(self, value: Any, tzid: str | None, name: str) -> Any:
        """``value`` (a date, a datetime or an RDATE period) with the zone its TZID means."""
        if isinstance(value, tuple):
            return tuple(self.place(part, tzid, name) for part in value)
        if not isinstance(value, datetime):
            return value  # dates and the durations of periods have no zone
        wall = value.replace(tzinfo=None)
        if tzid:
            return wall.replace(tzinfo=self.resolve(tzid, name))
        if value.tzinfo is None:
            return wall.replace(tzinfo=self.floating)
        # Aware without TZID: UTC ("Z"). Kept as an instant, so that a UTC-based RRULE stays in UTC.
        if self.calendar_zone is not None:
            return value.astimezone(self.calendar_zone)
        return value

    def resolve(self, tzid: str, name: str) -> tzinfo:
        cleaned = tzid.strip()
        iana = _iana(cleaned) or _iana(cleaned.strip("/"))
        if iana:
            return zone(iana)
        if cleaned in self.custom:
            return self.custom[cleaned].tz
        component = self.vtimezones.get(cleaned)
        if component is not None:
            return self._custom_zone(cleaned, component).tz
        windows = WINDOWS_TO_OLSON.get(cleaned)
        if windows:
            return zone(windows)
        unique = _globally_unique(cleaned)
        if unique:
            return zone(unique)
        raise _Problem(
            f"{name} uses the time zone '{tzid}', which is neither an IANA nor a Windows zone name and "
            f"has no VTIMEZONE in the file — use a name such as Europe/Paris or W. Europe Standard Time, "
            "or include its VTIMEZONE"
        )

    def _custom_zone(self, tzid: str, component: icalendar.Component) -> _CustomZone:
        try:
            if not isinstance(component, icalendar.Timezone):
                raise TypeError("not a VTIMEZONE")
            # lookup_tzid=False: build it from this component, bypassing icalendar's shared cache.
            tz = component.to_tz(lookup_tzid=False)
        except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
            raise _Problem(
                f"the VTIMEZONE '{tzid}' cannot be used ({exc}) — fix it or use an IANA zone name as TZID"
            ) from None
        candidates = [tzid.strip("/"), WINDOWS_TO_OLSON.get(tzid, ""), _text(component, "X-LIC-LOCATION")]
        candidates.append(_globally_unique(tzid) or "")
        custom = _CustomZone(tz, tuple(dict.fromkeys(name for name in candidates if _iana(name))))
        self.custom[tzid] = custom
        self.by_tz[id(tz)] = custom
        return custom


class _FileReader:
    def __init__(self, options: _Options, file_name: str, window: Window) -> None:
        self._options = options
        self._file = file_name
        self._query_start = window.start - _QUERY_MARGIN
        self._query_end = window.end + _QUERY_MARGIN

    def read_calendar(self, calendar: icalendar.Component) -> Iterator[ScheduleEntry | Rejected]:
        if calendar.name == "VEVENT":
            # A bare VEVENT (a fragment, as mail clients and tests pass around): no zones, no X-WR.
            events, vtimezones, calendar_zone = [calendar], {}, None
        elif calendar.name == "VCALENDAR":
            try:
                calendar_zone = self._calendar_zone(calendar)
            except _Problem as problem:
                yield Rejected(
                    source_key="", owner=self._options.owner, reason=str(problem), origin=self._file
                )
                return
            events = [c for c in calendar.subcomponents if c.name == "VEVENT"]
            vtimezones = {
                _text(c, "TZID").strip(): c for c in calendar.subcomponents if c.name == "VTIMEZONE"
            }
        else:
            return  # VTODO, VJOURNAL, a lone VTIMEZONE: nothing to put in a calendar
        zones = _Zones(calendar_zone or self._options.zone, calendar_zone, vtimezones)
        for group in _groups(events):
            yield from self._read_group(group, zones)

    def _calendar_zone(self, calendar: icalendar.Component) -> tzinfo | None:
        scale = _text(calendar, "CALSCALE").strip().upper()
        if scale and scale != "GREGORIAN":
            raise _Problem(f"CALSCALE:{scale} is not supported — only Gregorian calendars can go to Exchange")
        name = _text(calendar, "X-WR-TIMEZONE").strip()
        if not name:
            return None
        iana = _iana(name) or WINDOWS_TO_OLSON.get(name)
        if not iana:
            raise _Problem(
                f"X-WR-TIMEZONE '{name}' is not a time zone name — the calendar's times cannot be placed; "
                "set it to an IANA name such as Europe/Paris, or remove it"
            )
        return zone(iana)

    # --- one event and its occurrences ---------------------------------------------------------

    def _read_group(self, group: _Group, zones: _Zones) -> Iterator[ScheduleEntry | Rejected]:
        if all(_cancelled(c) for c in group.components):
            return  # cancelled entries vanish, even broken ones (as in the rows source)
        base_key = self._base_key(group)
        origin = self._origin(group)
        try:
            _check_group(group.components, self._options.owner_property)
            problems = {str(i): _prepare(c, zones) for i, c in enumerate(group.components)}
            for i, component in enumerate(group.components):
                component[_REF] = str(i)
            occurrences = self._expand(group.components)
            master = next((c for c in group.components if "RECURRENCE-ID" not in c), group.components[0])
            whole_days = _is_date(_moment(master, "DTSTART"))
        except _Problem as problem:
            owner = self._owner_of(group.components[0], lenient=True)
            yield Rejected(source_key=base_key, owner=owner, reason=str(problem), origin=origin)
            return
        recurring = any(name in c for c in group.components for name in ("RRULE", "RDATE", "RECURRENCE-ID"))
        for occurrence in occurrences:
            if _cancelled(occurrence):
                continue
            key, where = base_key, origin
            try:
                if recurring:
                    original = _occurrence_id(_moment(occurrence, "RECURRENCE-ID"), whole_days=whole_days)
                    key, where = f"{base_key}#{original}", f"{origin} (occurrence {original})"
                item = self._item(occurrence, key, where, problems.get(_text(occurrence, _REF)), zones)
            except _Problem as problem:
                item = Rejected(source_key=key, owner="", reason=str(problem), origin=where)
            yield item

    def _expand(self, components: list[icalendar.Component]) -> list[icalendar.Component]:
        calendar = icalendar.Calendar()
        for component in components:
            calendar.add_component(component)
        try:
            query = recurring_ical_events.of(calendar)
            # Series by series rather than query.between(): Series.between() yields its occurrences
            # one by one, so a runaway rule is stopped at the cap before any component is copied.
            # (query.after() would cut it off too, but re-expands the rule from its start for every
            # step of its search: minutes for one FREQ=HOURLY rule.)
            found = []
            for series in query.series:
                for occurrence in series.between(self._query_start, self._query_end):
                    found.append(occurrence)
                    if len(found) > MAX_OCCURRENCES:
                        raise _Problem(
                            f"it repeats more than {MAX_OCCURRENCES} times inside the sync window — "
                            "check its RRULE (FREQ, INTERVAL, BYxxx)"
                        )
            return [occurrence.as_component(False) for occurrence in found]
        except recurring_ical_events.InvalidCalendar as exc:
            raise _Problem(f"its recurrence cannot be computed: {exc.message}") from None
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
            # dateutil, icalendar and recurring_ical_events raise these on malformed rules and on
            # values the parser let through; they concern this event only.
            raise _Problem(f"its recurrence cannot be computed: {exc}") from None

    def _item(
        self, occurrence: icalendar.Component, key: str, origin: str, problem: str | None, zones: _Zones
    ) -> ScheduleEntry | Rejected:
        try:
            owner = self._owner_of(occurrence, lenient=False)
        except _Problem as owner_problem:
            return Rejected(source_key=key, owner="", reason=str(owner_problem), origin=origin)
        if problem:
            return Rejected(source_key=key, owner=owner, reason=problem, origin=origin)
        if not owner:
            return Rejected(
                source_key=key,
                owner="",
                reason=f"no owner: the event has no {self._options.owner_property} property and the "
                f"source sets no owner — set owner = ... for the source, or give the event a "
                f"{self._options.owner_property} property",
                origin=origin,
            )
        return ScheduleEntry(
            source_key=key,
            owner=owner,
            span=self._span(_moment(occurrence, "DTSTART"), _moment(occurrence, "DTEND"), zones),
            title=_text(occurrence, "SUMMARY").strip(),
            body=_text(occurrence, "DESCRIPTION"),
            location=_text(occurrence, "LOCATION").strip(),
            category=_category(occurrence),
            show_as=_show_as(occurrence),
            sensitivity=_SENSITIVITY.get(_text(occurrence, "CLASS").strip().upper()),
            reminder_minutes=_reminder(occurrence),
            origin=origin,
        )

    def _span(self, start: date, end: date, zones: _Zones) -> Span:
        if not isinstance(start, datetime) or not isinstance(end, datetime):
            # _prepare made start and end the same kind, so both are dates here.
            return AllDaySpan(_as_date(start), _as_date(end))
        name = self._zone_name(start, zones)
        if name is None:
            # A VTIMEZONE no IANA zone matches at this moment: keep the instant, shown in our zone.
            name = self._options.zone_name
        local = zone(name)
        try:
            # Via UTC: a wall-clock time in a DST gap becomes the time after the gap (RFC 5545 §3.3.5);
            # astimezone() to the very same zone object would not touch it.
            return TimedSpan(
                start.astimezone(UTC).astimezone(local), end.astimezone(UTC).astimezone(local), name
            )
        except OverflowError:
            raise _Problem(f"its time is out of range ({_shown(start)} .. {_shown(end)})") from None

    def _zone_name(self, moment: datetime, zones: _Zones) -> str | None:
        tz = moment.tzinfo
        if isinstance(tz, zoneinfo.ZoneInfo):
            # UTC instants are shown in the connector's zone, as the rows source does with offsets.
            return None if tz.key in ("UTC", "Etc/UTC") else tz.key
        custom = zones.by_tz.get(id(tz))
        if custom is None:
            return None
        instant = moment.astimezone(UTC)
        for name in custom.candidates:
            # The IANA zone may stand for the VTIMEZONE only where it shows the same wall clock at the
            # same instant: otherwise the event would move.
            if instant.astimezone(zone(name)).replace(tzinfo=None) == moment.replace(tzinfo=None):
                return name
        return None

    # --- owners, keys, origins -----------------------------------------------------------------

    def _owner_of(self, component: icalendar.Component, *, lenient: bool) -> str:
        prop = self._options.owner_property
        if not prop:
            return self._options.owner
        raw = component.get(prop)
        values = raw if isinstance(raw, list) else [] if raw is None else [raw]
        owners = list(dict.fromkeys(_owner_value(value) for value in values))
        owners = [owner for owner in owners if owner]
        if len(owners) > 1 and not lenient:
            raise _Problem(
                f"{prop} names {len(owners)} different owners ({', '.join(owners)}) — an entry belongs to "
                "exactly one mailbox; use a property with one value per event, such as X-OWNER"
            )
        return owners[0] if owners else self._options.owner

    def _base_key(self, group: _Group) -> str:
        if group.uid:
            if len(group.uid) <= MAX_UID_CHARS:
                return group.uid
            return "uid-sha256-" + hashlib.sha256(group.uid.encode()).hexdigest()[:40]
        first = group.components[0]
        start = first.get("DTSTART")
        start_text = ""
        if start is not None and not isinstance(start, list):
            start_text = f"{getattr(start, 'params', {}).get('TZID', '')}:{_raw_value(start)}"
        basis = "\x1f".join((self._file, start_text, _text(first, "SUMMARY")))
        return "ics-" + hashlib.sha256(basis.encode()).hexdigest()[:32]

    def _origin(self, group: _Group) -> str:
        if group.uid:
            return f"{self._file}#{group.uid}"
        title = _text(group.components[0], "SUMMARY").strip()
        named = f' "{title}"' if title else ""
        return f"{self._file}#VEVENT {group.index}{named} (no UID)"


# --- per-event checks and normalisation -----------------------------------------------------------


def _groups(events: Sequence[icalendar.Component]) -> list[_Group]:
    """The events of a calendar by UID, in the order of their first component in the file."""
    groups: list[_Group] = []
    by_uid: dict[str, _Group] = {}
    for index, event in enumerate(events, start=1):
        uid = _text(event, "UID").strip()
        if uid in by_uid:
            by_uid[uid].components.append(event)
            continue
        group = _Group(uid, [event], index)
        groups.append(group)
        if uid:
            by_uid[uid] = group
    return groups


def _check_group(components: Iterable[icalendar.Component], owner_property: str) -> None:
    """Problems that make every occurrence of the event unknowable."""
    relevant = _DECISIVE_PROPERTIES | {owner_property}
    for component in components:
        for name, message in component.errors:
            if name is None:
                raise _Problem(f"a line of the event cannot be read ({message}) — fix or remove it")
            if name.upper() in relevant:
                raise _Problem(f"{name.upper()} cannot be read ({message}): {_raw(component, name)} — fix it")
        for name in _SINGLE_PROPERTIES:
            value = component.get(name)
            if isinstance(value, list):
                shown = ", ".join(_raw_value(v) for v in value)
                raise _Problem(f"{name} is given {len(value)} times ({shown}) — an event has exactly one")
        if "DTSTART" not in component:
            raise _Problem(f"it has no DTSTART — every event needs a start, {_DATE_TIME_EXAMPLE}")
        for name in ("DTSTART", "DTEND", "RECURRENCE-ID"):
            if name in component:
                _moment(component, name)  # raises unless it is a date or a date-time
        if "DURATION" in component and not isinstance(
            getattr(component.get("DURATION"), "dt", None), timedelta
        ):
            raise _Problem(
                f"DURATION is not a duration ({_raw(component, 'DURATION')}) — write it like PT1H30M or P1D"
            )
        if any(sub.name == "VEVENT" for sub in component.walk() if sub is not component):
            raise _Problem("it holds another VEVENT — an END:VEVENT is missing or misplaced")
        rules = component.get("RRULE")
        for rule in rules if isinstance(rules, list) else [] if rules is None else [rules]:
            frequency = (
                " ".join(str(part) for part in rule.get("FREQ", [])).upper() if isinstance(rule, dict) else ""
            )
            if frequency in _TOO_FREQUENT:
                # dateutil lists every occurrence of the window before the cap could act: 15 million
                # for a FREQ=SECONDLY rule over half a year.
                raise _Problem(
                    f"RRULE repeats {frequency} — a calendar entry can repeat at most hourly; Exchange "
                    "itself offers daily, weekly, monthly and yearly"
                )


def _prepare(component: icalendar.Component, zones: _Zones) -> str | None:
    """Give every date-time of ``component`` its zone; return what is wrong with its own span, if anything.

    A component whose span is wrong keeps only its start (and so expands to the right occurrences with
    the right keys); its occurrences are then rejected with the problem. A TZID that cannot be resolved
    raises ``_Problem``: then not even the start is known."""
    problem = _kind_problem(component)
    if problem:
        _drop_end(component)
    for name in _ZONED_PROPERTIES:
        value = component.get(name)
        if value is not None:
            try:
                component[name] = _placed(value, zones, name)
            except OverflowError:
                raise _Problem(f"{name} is out of range: {_raw_value(value)}") from None
    if problem:
        return problem
    problem = _order_problem(component)
    if problem:
        _drop_end(component)
    return problem


def _kind_problem(component: icalendar.Component) -> str | None:
    """Checked on the values as written, before any zone conversion can move a midnight."""
    start = _moment(component, "DTSTART")
    if "DTEND" in component and "DURATION" in component:
        del component["DURATION"]  # DTEND wins; see the module docstring
    end_prop = component.get("DTEND")
    if end_prop is not None:
        end = _moment(component, "DTEND")
        if _is_date(start) and isinstance(end, datetime):
            if end.time() != time():
                return (
                    f"DTSTART is a date (a whole-day entry) but DTEND has a time of day ({_raw_value(end_prop)})"
                    " — give DTEND;VALUE=DATE as the day after the last day, or give DTSTART a time too"
                )
            component["DTEND"] = icalendar.vDDDTypes(end.date())
        elif isinstance(start, datetime) and _is_date(end):
            return (
                f"DTSTART has a time of day but DTEND is a date ({_raw_value(end_prop)}) — give both with a "
                "time, or both as dates for a whole-day entry"
            )
        return None
    duration_prop = component.get("DURATION")
    if duration_prop is not None:
        duration = getattr(duration_prop, "dt", None)
        if not isinstance(duration, timedelta):
            return None  # _check_group rejected the whole event already
        if duration < timedelta(0):
            return (
                f"DURATION is negative ({_raw_value(duration_prop)}) — an event cannot end before it starts"
            )
        if _is_date(start) and duration % timedelta(days=1):
            return (
                f"DTSTART is a date (a whole-day entry) but DURATION is not whole days "
                f"({_raw_value(duration_prop)}) — use P1D, P2D ... or give DTSTART a time"
            )
    return None


def _order_problem(component: icalendar.Component) -> str | None:
    if "DTEND" not in component:
        return None
    start, end = _moment(component, "DTSTART"), _moment(component, "DTEND")
    # Both dates or both aware datetimes here: _kind_problem and the zones saw to that.
    if end < start:
        return (
            f"ends ({_shown(end)}) before it starts ({_shown(start)}) — fix DTSTART or DTEND in the calendar"
        )
    return None


def _drop_end(component: icalendar.Component) -> None:
    for name in ("DTEND", "DURATION"):
        if name in component:
            del component[name]


def _placed(value: Any, zones: _Zones, name: str) -> Any:
    if isinstance(value, list):
        return [_placed(item, zones, name) for item in value]
    if isinstance(value, icalendar.vDDDLists):
        tzid = value.params.get("TZID")
        return icalendar.vDDDLists(
            [zones.place(item.dt, item.params.get("TZID") or tzid, name) for item in value.dts]
        )
    if isinstance(value, icalendar.vDDDTypes):
        return icalendar.vDDDTypes(zones.place(value.dt, value.params.get("TZID"), name))
    raise _Problem(
        f"{name} cannot be read: {_raw_value(value)} — give a date or date-time, {_DATE_TIME_EXAMPLE}"
    )


# --- small helpers ------------------------------------------------------------------------------


@cache
def _iana_names() -> frozenset[str]:
    # "localtime" and "Factory" are in the tz database's file list but name no real place.
    return frozenset(zoneinfo.available_timezones() - {"localtime", "Factory"})


def _iana(name: str) -> str | None:
    return name if name in _iana_names() else None


def _globally_unique(tzid: str) -> str | None:
    """The IANA name inside a globally unique TZID (RFC 5545 §3.2.19), as libical and Mozilla write them:
    ``/freeassociation.sourceforge.net/Tzfile/America/Argentina/Buenos_Aires``. Longest suffix first,
    and at least Area/Location, so that a vendor path never matches a one-word legacy alias."""
    if not tzid.startswith("/"):
        return None
    parts = tzid.strip("/").split("/")
    for first in range(1, len(parts) - 1):
        candidate = "/".join(parts[first:])
        if _iana(candidate):
            return candidate
    return None


def _text(component: icalendar.Component, name: str) -> str:
    value = component.get(name)
    if isinstance(value, list):
        value = value[0] if value else None
    return "" if value is None else str(value)


def _raw(component: icalendar.Component, name: str) -> str:
    value = component.get(name)
    return "(missing)" if value is None else _raw_value(value)


def _raw_value(value: Any) -> str:
    """A value as the file wrote it, for reasons (icalendar cannot serialise every broken value)."""
    try:
        raw = value.to_ical()
    except (AttributeError, TypeError, ValueError):
        return str(value)
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def _shown(value: date) -> str:
    return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()


def _is_date(value: object) -> bool:
    return isinstance(value, date) and not isinstance(value, datetime)


def _as_date(value: date) -> date:
    return value.date() if isinstance(value, datetime) else value


def _moment(component: icalendar.Component, name: str) -> date:
    """The date or datetime of ``name``, which the caller knows is present."""
    moment = getattr(component.get(name), "dt", None)
    if not isinstance(moment, date):
        raise _Problem(f"{name} is not a date or date-time: {_raw(component, name)} — {_DATE_TIME_EXAMPLE}")
    return moment


def _occurrence_id(value: date, *, whole_days: bool) -> str:
    if isinstance(value, datetime):
        if whole_days:
            # An all-day series whose override names its occurrence by a time (Exchange writes
            # RECURRENCE-ID;TZID=...:20200416T000000 for DTSTART;VALUE=DATE:20200402): its date.
            return value.strftime("%Y%m%d")
        return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return value.strftime("%Y%m%d")


def _cancelled(component: icalendar.Component) -> bool:
    return _text(component, "STATUS").strip().upper() == "CANCELLED"


def _owner_value(value: Any) -> str:
    text = str(value).strip()
    if text[:7].lower() == "mailto:":
        text = text[7:].strip()
    return text


def _category(component: icalendar.Component) -> str:
    raw = component.get("CATEGORIES")
    for value in raw if isinstance(raw, list) else [] if raw is None else [raw]:
        for category in getattr(value, "cats", ()):
            if str(category).strip():
                return str(category).strip()
    return ""


def _show_as(component: icalendar.Component) -> ShowAs | None:
    busy = _BUSY_STATUS.get(_text(component, "X-MICROSOFT-CDO-BUSYSTATUS").strip().upper())
    if busy is not None:
        return busy
    if _text(component, "TRANSP").strip().upper() == "TRANSPARENT":
        return ShowAs.FREE
    if _text(component, "STATUS").strip().upper() == "TENTATIVE":
        return ShowAs.TENTATIVE
    return None


def _reminder(component: icalendar.Component) -> int | None:
    """Minutes before the start of the first display alarm that fires at or before the start. Alarms
    after the start, relative to the end or at a fixed time have no Exchange equivalent and are skipped."""
    for alarm in component.walk("VALARM"):
        if _text(alarm, "ACTION").strip().upper() != "DISPLAY":
            continue
        trigger = alarm.get("TRIGGER")
        if trigger is None or isinstance(trigger, list):
            continue
        offset = getattr(trigger, "dt", None)
        related = str(trigger.params.get("RELATED", "START")).upper()
        if isinstance(offset, timedelta) and related == "START" and offset <= timedelta(0):
            # Rounded up: the reminder must not come later than the calendar asked for.
            return math.ceil(-offset.total_seconds() / 60)
    return None


def _open_error(path: Path, exc: OSError) -> SourceError:
    if isinstance(exc, FileNotFoundError):
        return SourceError(f"{path} does not exist", fix="check the path in the settings")
    return SourceError(
        f"cannot read {path}: {exc.strerror or exc}",
        fix="check that the path names a file or folder the connector's account may read",
    )
