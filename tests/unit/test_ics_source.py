"""The iCalendar source: the reference corpus of real-world edge cases, and the rules one by one."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from adapters.source.ics import MAX_OCCURRENCES, IcsScheduleSource
from connector.directory import Directory
from connector.errors import SettingsError, SourceError
from connector.models import (
    AllDaySpan,
    Rejected,
    ScheduleEntry,
    Sensitivity,
    ShowAs,
    Target,
    TimedSpan,
)
from connector.prepare import prepare
from connector.render import RenderRules
from connector.source import ScheduleSource
from connector.window import Window

#: Beside the repository, never copied into it (../shared/reference/README.md).
REFERENCE = Path(__file__).resolve().parents[2] / ".." / "shared" / "reference" / "ics"
PARIS = ZoneInfo("Europe/Paris")
OWNER = "E1001"
MAILBOX = "anna@contoso.example"
DIRECTORY = Directory([Target(address=MAILBOX, owner_key=OWNER)])
RULES = RenderRules("Planning")


def window(first: date, last: date, zone: ZoneInfo = PARIS) -> Window:
    """The window of the days ``first`` up to (not including) ``last`` in ``zone``."""
    start = datetime.combine(first, time(), zone).astimezone(UTC)
    return Window(start, datetime.combine(last, time(), zone).astimezone(UTC), zone)


WIDE = window(date(1990, 1, 1), date(2040, 1, 1))
#: The window the inline calendars are written for: 2026-11-09 .. 2027-05-15.
WINDOW = Window.around(date(2026, 11, 16), PARIS, days_before=7, days_after=180)


def calendar(*lines: str, wrap: bool = True) -> str:
    body = [*lines]
    if wrap:
        body = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//ics source//EN", *body, "END:VCALENDAR"]
    return "\r\n".join(body) + "\r\n"


def event(*lines: str, uid: str = "evt-1") -> list[str]:
    return ["BEGIN:VEVENT", f"UID:{uid}", *lines, "END:VEVENT"]


def write(tmp_path: Path, text: str, name: str = "cal.ics") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def read(
    path: Path,
    within: Window = WINDOW,
    *,
    owner: str | None = OWNER,
    owner_property: str | None = None,
    zone: str = "Europe/Paris",
) -> list[ScheduleEntry | Rejected]:
    source = IcsScheduleSource(path, default_zone=zone, owner=owner, owner_property=owner_property)
    return list(source.read(within))


def read_text(tmp_path: Path, text: str, **kwargs: object) -> list[ScheduleEntry | Rejected]:
    return read(write(tmp_path, text), **kwargs)  # type: ignore[arg-type]


def entries(items: list[ScheduleEntry | Rejected]) -> list[ScheduleEntry]:
    return [item for item in items if isinstance(item, ScheduleEntry)]


def rejections(items: list[ScheduleEntry | Rejected]) -> list[Rejected]:
    return [item for item in items if isinstance(item, Rejected)]


def only_entry(items: list[ScheduleEntry | Rejected]) -> ScheduleEntry:
    assert len(items) == 1, items
    assert isinstance(items[0], ScheduleEntry), items[0]
    return items[0]


def only_rejection(items: list[ScheduleEntry | Rejected]) -> Rejected:
    assert len(items) == 1, items
    assert isinstance(items[0], Rejected), items[0]
    return items[0]


def by_key(items: list[ScheduleEntry | Rejected]) -> dict[str, ScheduleEntry]:
    return {item.source_key: item for item in entries(items)}


def timed(item: ScheduleEntry) -> TimedSpan:
    assert isinstance(item.span, TimedSpan), item.span
    return item.span


def wall(item: ScheduleEntry) -> tuple[str, datetime, datetime]:
    """(zone, local start, local end) with the local times naive, for exact comparisons."""
    span = timed(item)
    return span.timezone, span.start.replace(tzinfo=None), span.end.replace(tzinfo=None)


def utc_start(item: ScheduleEntry) -> datetime:
    return timed(item).start.astimezone(UTC)


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    """A wall-clock time: naive on purpose, compared with ``wall()``."""
    return datetime(year, month, day, hour, minute, second)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


# --- the reference corpus -------------------------------------------------------------------------

#: Per file: the window read, and how many entries fall inside it and how many items are rejected.
#: Each count was checked against the file by hand (see the notes); files with endless RRULEs get a
#: window of a few weeks around their data, the rest a window from 1990 to 2040.
CORPUS: dict[str, tuple[Window, int, int]] = {
    # BEGIN/END:VCALENDAR and nothing else (behind a UTF-8 BOM).
    "icalendar_bom_calendar.ics": (WIDE, 0, 0),
    # UID 123456 and a UID-less zero-length "åäö"; the third VEVENT has only a DESCRIPTION.
    "icalendar_created_calendar_with_unicode_fields.ics": (WIDE, 2, 1),
    # Fragments: a lone VEVENT with only an ORGANIZER, no DTSTART.
    "icalendar_event_with_escaped_characters.ics": (WIDE, 0, 1),
    "icalendar_event_with_unicode_organizer.ics": (WIDE, 0, 1),
    # RRULE "BYDAY=MO, TU, WE, TH, FR" (spaces) cannot be read: rejected, not shrunk to one event.
    "icalendar_issue_165_missing_event.ics": (WIDE, 0, 1),
    # A VTIMEZONE "UTC+11" with a fixed +11:00.
    "icalendar_issue_218_bad_tzid.ics": (WIDE, 1, 0),
    # A VTIMEZONE named "(UTC-03:00) Brasília".
    "icalendar_issue_237_fail_to_parse_timezone_with_non_ascii_tzid.ics": (WIDE, 1, 0),
    # Three globally unique TZIDs (/vendor/Area/City).
    "icalendar_issue_313_globally_unique_tzid.ics": (WIDE, 3, 0),
    # Weekly on Fridays from 2022-10-21, no end: Oct 21, 28, Nov 4 .. Dec 30 = 11.
    "icalendar_issue_466_convert_tzid_with_slash.ics": (window(date(2022, 10, 1), date(2023, 1, 1)), 11, 0),
    # A fragment VEVENT with a TZID, a start and an end.
    "icalendar_issue_53_description_parsed_properly.ics": (WIDE, 1, 0),
    # A fragment VEVENT with only a SUMMARY.
    "icalendar_issue_64_event_with_non_ascii_summary.ics": (WIDE, 0, 1),
    # Four events in a custom zone around its transition.
    "icalendar_issue_722_timezone_transition_ambiguity.ics": (WIDE, 4, 0),
    # Exchange's VTIMEZONE "Eastern Standard Time".
    "icalendar_issue_836_do_not_quote_tzid.ics": (WIDE, 1, 0),
    # One event with DTSTART given twice: rejected.
    "icalendar_pacific_fiji.ics": (WIDE, 0, 1),
    # Exchange's VTIMEZONE "Pacific Standard Time".
    "icalendar_timezone_same_start.ics": (WIDE, 1, 0),
    # Weekdays from Fri 2016-10-28, no end: Oct 28, Oct 31 .. Nov 4 = 6.
    "icalendar_x_location.ics": (window(date(2016, 10, 24), date(2016, 11, 7)), 6, 0),
    # Two weeks across 2019-03-31: Chaostreff We x2, Montessori Th x2 + Fr x2, #TEC Th x2, OpenLab
    # Th x2, OK Lab Tu 04-02 (biweekly since 2017-12-12), machBar Plenum Tu 04-02 (biweekly) = 12.
    "rie_daylight_saving_time.ics": (window(date(2019, 3, 25), date(2019, 4, 8)), 12, 0),
    # Four events; the first has no DTEND (zero length).
    "rie_discourse_no_dtend.ics": (WIDE, 4, 0),
    # P3D on a date, PT3H on a date-time, and one with neither.
    "rie_duration.ics": (WIDE, 3, 0),
    # DTEND 08:00 before DTSTART 08:30.
    "rie_end_before_start_event.ics": (WIDE, 0, 1),
    # Weekly Thursdays 2023-01-05 .. UNTIL 2023-06-08 17:00Z, the last one included = 23.
    "rie_issue_107_omitting_last_event.ics": (WIDE, 23, 0),
    # DTEND 23:30 before DTSTART 23:45 (its VTODO twin is not an event).
    "rie_issue_132_swapped_start_and_end.ics": (WIDE, 0, 1),
    # COUNT=3, the second one cancelled.
    "rie_issue_18_cancel_status.ics": (WIDE, 2, 0),
    # DATE start, DTEND at midnight UTC: a whole-day absence.
    "rie_issue_201_mixed_datetime_and_date.ics": (WIDE, 1, 0),
    # 15 VEVENTs: date/date-time mixes other than a midnight end are rejected (DATE-DATETIME, DATE-UTC,
    # DATE-HOURS, DATETIME-DATE, UTC-DATE); the VTODOs are not events.
    "rie_issue_201_test_matrix.ics": (WIDE, 10, 5),
    # Two biweekly all-day series: 12 + 12, three of them moved by a day.
    "rie_issue_28_rrule_with_UTC_endinginZ.ics": (WIDE, 24, 0),
    # Mondays 11:30 Lisbon from 2020-09-21: Oct 5, 12, 19, 26, Nov 2, 9 = 6.
    "rie_issue_48_daylight_aware_repeats.ics": (window(date(2020, 10, 1), date(2020, 11, 15)), 6, 0),
    # Mon 2020-12-07 .. Fri 12-11 in Chicago: Event#1 Mo Tu Th Fr (4), and one each for u81j (Mo),
    # mji2s (Fr), 7l8ium (Th), m0lbs (Tu), m4dpn70 (Fr), p1lc8 (Fr), m4b9nckq (Mo), 2n0o (Tu),
    # 2ohv (Tu), 29kb (Th) = 14.
    "rie_issue_48_dst.ics": (window(date(2020, 12, 7), date(2020, 12, 12)), 14, 0),
    # Three timed and three all-day occurrences, one of each moved.
    "rie_issue_62_moved_event_2.ics": (WIDE, 6, 0),
    "rie_issue_86_x_wr_timezone_without_time_zone_in_dt.ics": (WIDE, 1, 0),
    "rie_one_day_event.ics": (WIDE, 1, 0),
    # 3 daily occurrences of test7 (one edited) + 4 of New Event (three overridden, one all-day).
    "rie_recurring_events_changed_duration.ics": (WIDE, 7, 0),
    "rie_recurring_events_moved.ics": (WIDE, 7, 0),
    "rie_x_wr_timezone_simple_events_issue_59.ics": (WIDE, 2, 0),
    "rie_zero_size_event.ics": (WIDE, 1, 0),
}


def read_reference(name: str, within: Window = WIDE, **kwargs: str) -> list[ScheduleEntry | Rejected]:
    options: dict[str, str] = {"owner": OWNER} | kwargs
    source = IcsScheduleSource(REFERENCE / name, default_zone="Europe/Paris", **options)
    return list(source.read(within))


def test_the_corpus_table_names_every_reference_file() -> None:
    assert REFERENCE.is_dir(), f"the reference corpus is missing at {REFERENCE.resolve()}"
    assert sorted(CORPUS) == sorted(path.name for path in REFERENCE.glob("*.ics"))
    assert len(CORPUS) == 35


def test_every_reference_file_becomes_entries_or_rejections(capsys: pytest.CaptureFixture[str]) -> None:
    found: dict[str, tuple[int, int]] = {}
    for name, (within, _, _) in sorted(CORPUS.items()):
        items = read_reference(name, within)
        inside = [item for item in entries(items) if within.contains(item.span)]
        rejected = rejections(items)
        found[name] = (len(inside), len(rejected))
        # Every entry becomes a valid event; the core quarantines exactly the rejected items.
        prepared = prepare(items, DIRECTORY, RULES)
        assert len(prepared.quarantined) == len(rejected), (name, prepared.quarantined)
        assert sum(len(specs) for specs in prepared.specs.values()) == len(items) - len(rejected)
        for item in rejected:
            assert item.reason and item.origin.startswith(name), item
    width = max(len(name) for name in found)
    with capsys.disabled():
        print(f"\n{'file':<{width}}  entries  errors")
        for name, (count, errors) in found.items():
            print(f"{name:<{width}}  {count:>7}  {errors:>6}")
    assert found == {name: (count, errors) for name, (_, count, errors) in CORPUS.items()}


# --- reference spot checks: daylight saving time --------------------------------------------------


def test_weekly_berlin_event_keeps_its_wall_clock_across_the_spring_change() -> None:
    items = by_key(read_reference("rie_daylight_saving_time.ics", CORPUS["rie_daylight_saving_time.ics"][0]))
    before = items["7uartkcnhf0elbvs8md0itrf6c@google.com#20190327T180000Z"]
    after = items["7uartkcnhf0elbvs8md0itrf6c@google.com#20190403T170000Z"]
    assert before.title == after.title == "Chaostreff - CCCP"
    assert wall(before) == ("Europe/Berlin", at(2019, 3, 27, 19), at(2019, 3, 27, 21))
    assert wall(after) == ("Europe/Berlin", at(2019, 4, 3, 19), at(2019, 4, 3, 21))
    assert utc_start(before) == utc(2019, 3, 27, 18)
    assert utc_start(after) == utc(2019, 4, 3, 17)


def test_exdate_in_a_berlin_series_is_honoured() -> None:
    items = read_reference("rie_daylight_saving_time.ics", window(date(2017, 11, 1), date(2017, 12, 1)))
    freifunk = [key for key in by_key(items) if key.startswith("5m2ic2qqn1fo43ebfp7ucovj6p@google.com#")]
    # Biweekly on Tuesdays from 2017-09-12: Nov 7 and Nov 21, and 2017-11-21 is an EXDATE.
    assert freifunk == ["5m2ic2qqn1fo43ebfp7ucovj6p@google.com#20171107T170000Z"]


def test_lisbon_series_moves_in_utc_when_summer_time_ends() -> None:
    items = by_key(
        read_reference(
            "rie_issue_48_daylight_aware_repeats.ics", window(date(2020, 10, 15), date(2020, 11, 5))
        )
    )
    assert sorted(items) == ["EVENT2#20201019T103000Z", "EVENT2#20201026T113000Z", "EVENT2#20201102T113000Z"]
    october, november = items["EVENT2#20201019T103000Z"], items["EVENT2#20201102T113000Z"]
    assert wall(october) == ("Europe/Lisbon", at(2020, 10, 19, 11, 30), at(2020, 10, 19, 13))
    assert wall(november) == ("Europe/Lisbon", at(2020, 11, 2, 11, 30), at(2020, 11, 2, 13))
    assert (utc_start(october), utc_start(november)) == (utc(2020, 10, 19, 10, 30), utc(2020, 11, 2, 11, 30))
    assert october.title == "MDS-t"


def test_chicago_calendar_across_the_us_change_and_its_utc_event() -> None:
    items = by_key(read_reference("rie_issue_48_dst.ics", window(date(2020, 10, 20), date(2020, 12, 12))))
    before, after = (
        items["m4b9nckq@google.com#20201026T151500Z"],
        items["m4b9nckq@google.com#20201102T161500Z"],
    )
    assert wall(before) == ("America/Chicago", at(2020, 10, 26, 10, 15), at(2020, 10, 26, 10, 30))
    assert wall(after) == ("America/Chicago", at(2020, 11, 2, 10, 15), at(2020, 11, 2, 10, 30))
    # DTSTART:20201113T141500Z in a calendar with X-WR-TIMEZONE:America/Chicago.
    assert wall(items["5dru@google.com"]) == (
        "America/Chicago",
        at(2020, 11, 13, 8, 15),
        at(2020, 11, 13, 8, 30),
    )
    assert utc_start(items["5dru@google.com"]) == utc(2020, 11, 13, 14, 15)
    # recurring_ical_events' own check: three events on 2020-12-11 between 10:00 and 15:00 in Chicago.
    friday = [
        (wall(item)[1].time(), item.title)
        for item in items.values()
        if wall(item)[1].date() == date(2020, 12, 11) and time(10) <= wall(item)[1].time() < time(15)
    ]
    assert sorted(friday) == [(time(10, 15), "Event#2"), (time(12, 30), "Event#3"), (time(14, 15), "Event#4")]


def test_custom_zone_around_its_own_transition_keeps_each_instant() -> None:
    # MyTimezone is +12 until 2024-05-05 08:00 local, then +10 (clocks go back from 08:00 to 06:00).
    # No IANA zone matches it, so the instants are kept and shown in the connector's zone.
    items = by_key(read_reference("icalendar_issue_722_timezone_transition_ambiguity.ics"))
    expected = {
        "0": utc(2024, 3, 2, 20),  # 2024-03-03 08:00 +12
        "1": utc(2024, 8, 2, 22),  # 2024-08-03 08:00 +10
        "2": utc(2024, 5, 4, 22, 0, 1),  # 08:00:01 is after the transition: +10
        "3": utc(2024, 5, 4, 19, 0, 1),  # 07:00:01 exists twice: its first occurrence, +12
    }
    assert {key: utc_start(item) for key, item in items.items()} == expected
    for item in items.values():
        span = timed(item)
        assert span.timezone == "Europe/Paris" and span.start == span.end  # no DTEND: zero length


# --- reference spot checks: zones by name ---------------------------------------------------------


def test_fiji_file_with_two_starts_is_rejected_naming_both() -> None:
    rejected = only_rejection(read_reference("icalendar_pacific_fiji.ics"))
    assert rejected.source_key == "noend123"
    assert "DTSTART is given 2 times (20140829T080000, 20140829T100000)" in rejected.reason
    assert rejected.origin == "icalendar_pacific_fiji.ics#noend123"


def test_fiji_vtimezone_maps_to_pacific_fiji_only_where_they_agree(tmp_path: Path) -> None:
    # The corpus file's VTIMEZONE with one DTSTART per event. It starts summer time on 2014-10-26,
    # while the IANA zone (and Fiji) started it on 2014-11-02.
    text = (REFERENCE / "icalendar_pacific_fiji.ics").read_text(encoding="utf-8")
    text = text.replace("DTSTART;TZID=custom_Pacific/Fiji;VALUE=DATE-TIME:20140829T100000\n", "")
    extra = "".join(
        f"BEGIN:VEVENT\nUID:{uid}\nDTSTART;TZID=custom_Pacific/Fiji:{start}\nSUMMARY:{uid}\nEND:VEVENT\n"
        for uid, start in (("october", "20141028T080000"), ("november", "20141105T080000"))
    )
    text = text.replace("END:VCALENDAR", extra + "END:VCALENDAR")
    items = by_key(read(write(tmp_path, text), WIDE))
    assert wall(items["noend123"])[:2] == ("Pacific/Fiji", at(2014, 8, 29, 8))
    assert utc_start(items["noend123"]) == utc(2014, 8, 28, 20)
    assert wall(items["november"])[:2] == ("Pacific/Fiji", at(2014, 11, 5, 8))
    assert utc_start(items["november"]) == utc(2014, 11, 4, 19)
    # The file says +13 on 2014-10-28, IANA says +12: the instant of the file wins, in our zone.
    assert utc_start(items["october"]) == utc(2014, 10, 27, 19)
    assert wall(items["october"])[:2] == ("Europe/Paris", at(2014, 10, 27, 20))


def test_windows_zone_names_with_exchange_vtimezones() -> None:
    eastern = only_entry(read_reference("icalendar_issue_836_do_not_quote_tzid.ics"))
    assert wall(eastern) == ("America/New_York", at(2024, 10, 28, 17), at(2024, 10, 28, 18))
    assert utc_start(eastern) == utc(2024, 10, 28, 21)
    pacific = only_entry(read_reference("icalendar_timezone_same_start.ics"))
    assert wall(pacific) == ("America/Los_Angeles", at(2017, 2, 24, 12), at(2017, 2, 24, 12, 30))
    assert utc_start(pacific) == utc(2017, 2, 24, 20)
    assert pacific.title == "Test 4"


def test_windows_zone_name_whose_vtimezone_is_misnamed() -> None:
    # The VTIMEZONE is called "Pacific Standard Time:" (trailing colon); the events use the Windows name.
    items = entries(read_reference("rie_issue_107_omitting_last_event.ics"))
    assert len(items) == 23
    first, last = items[0], items[-1]
    assert wall(first) == ("America/Los_Angeles", at(2023, 1, 5, 10), at(2023, 1, 5, 11))
    assert wall(last) == ("America/Los_Angeles", at(2023, 6, 8, 10), at(2023, 6, 8, 11))
    assert (utc_start(first), utc_start(last)) == (utc(2023, 1, 5, 18), utc(2023, 6, 8, 17))
    # No UID: the key is derived, with the occurrence appended, and the origin says so.
    assert re.fullmatch(r"ics-[0-9a-f]{32}#20230105T180000Z", first.source_key)
    assert (
        first.origin
        == "rie_issue_107_omitting_last_event.ics#VEVENT 1 (no UID) (occurrence 20230105T180000Z)"
    )


def test_exchange_all_day_series_with_moved_occurrences_keeps_their_keys() -> None:
    items = by_key(read_reference("rie_issue_28_rrule_with_UTC_endinginZ.ics"))
    uid = (
        "040000008200E00074C5B7101A82E00800000000017E1BADC42ED601000000000000000"
        "010000000FBF1FBAE2E9FBC4D81F16854E2F4D51B"
    )
    # RECURRENCE-ID;TZID=GMT Standard Time:20200416T000000 moves the 04-16 occurrence to 04-17.
    moved = items[f"{uid}#20200416"]
    assert moved.span == AllDaySpan(date(2020, 4, 17), date(2020, 4, 18))
    assert items[f"{uid}#20200402"].span == AllDaySpan(date(2020, 4, 2), date(2020, 4, 3))
    assert moved.title == "Refuse black bin" and moved.show_as is ShowAs.FREE


def test_globally_unique_tzids_name_their_iana_zone() -> None:
    items = by_key(read_reference("icalendar_issue_313_globally_unique_tzid.ics"))
    assert {key: wall(item)[:2] for key, item in items.items()} == {
        "libical-evolution@issue-313": ("Europe/Berlin", at(2020, 4, 26, 14)),
        "mozilla-lightning@issue-313": ("America/New_York", at(2020, 4, 26, 14)),
        "multipart-olson@issue-313": ("America/Argentina/Buenos_Aires", at(2020, 4, 26, 14)),
    }


def test_x_wr_timezone_places_utc_and_floating_times() -> None:
    google = by_key(read_reference("rie_x_wr_timezone_simple_events_issue_59.ics"))
    noon = google["3bc4jff97631or97ntnk75n4se@google.com"]
    assert wall(noon) == ("America/New_York", at(2021, 12, 22, 12), at(2021, 12, 22, 13))
    assert noon.title == "Google Calendar says this is noon to 1PM on 12/22/2021"
    floating = only_entry(read_reference("rie_issue_86_x_wr_timezone_without_time_zone_in_dt.ics"))
    assert wall(floating) == ("Europe/Brussels", at(2021, 9, 16, 21), at(2021, 9, 16, 22, 45))


# --- reference spot checks: text ------------------------------------------------------------------


def test_non_ascii_summary_without_a_start_is_rejected_and_named() -> None:
    rejected = only_rejection(read_reference("icalendar_issue_64_event_with_non_ascii_summary.ics"))
    assert rejected.origin == 'icalendar_issue_64_event_with_non_ascii_summary.ics#VEVENT 1 "åäö" (no UID)'
    assert "no DTSTART" in rejected.reason


def test_unicode_fields_arrive_unchanged() -> None:
    items = read_reference("icalendar_created_calendar_with_unicode_fields.ics")
    named = by_key(items)["123456"]
    assert named.title == "Non-ASCII Test: ÄÖÜ äöü €"
    assert named.location == "Tribstrül"
    assert named.body == "icalendar should be able to de/serialize non-ascii."
    assert wall(named) == ("Europe/Paris", at(2010, 10, 10, 12), at(2010, 10, 10, 14))
    unnamed = next(item for item in entries(items) if item.source_key != "123456")
    assert unnamed.title == "åäö"
    assert timed(unnamed).start == timed(unnamed).end == utc(2010, 10, 10)
    assert len(rejections(items)) == 1


def test_escaped_text_and_folded_lines_are_decoded() -> None:
    meetup = only_entry(read_reference("icalendar_issue_53_description_parsed_properly.ics"))
    assert meetup.body.startswith("DevOpsDC\nThursday, July 12 at 6:30 PM\n\nThis will be a joint meetup")
    # RFC 5545 unfolding drops the line break and one blank, so "Washington" and "D.C." meet.
    assert meetup.location == "Fathom Creative, Inc. (1333 14th Street Northwest, WashingtonD.C., DC 20005)"
    assert wall(meetup) == ("America/New_York", at(2012, 7, 12, 18, 30), at(2012, 7, 12, 21, 30))
    discourse = by_key(read_reference("rie_discourse_no_dtend.ics"))["51e14101-6ccb-446c-99d4-662fe4d6acad"]
    assert discourse.title == "Einmietung HACKademy - erste drei Märzwochenenden"
    assert discourse.body.startswith("FYI \n\nFür euch als Info, die Leute um matchMyMaker")
    assert discourse.body.endswith("&hellip;")


def test_non_ascii_tzid_of_a_vtimezone_keeps_the_instant() -> None:
    item = only_entry(read_reference("icalendar_issue_237_fail_to_parse_timezone_with_non_ascii_tzid.ics"))
    assert utc_start(item) == utc(2017, 5, 11, 16, 30)  # 13:30 at -03:00
    assert timed(item).timezone == "Europe/Paris"


def test_organizer_as_owner_of_the_unicode_and_escaped_fragments() -> None:
    unicode_owner = only_rejection(
        read_reference("icalendar_event_with_unicode_organizer.ics", owner_property="ORGANIZER")
    )
    assert unicode_owner.owner == "john.doe@example.org"
    escaped = only_rejection(
        read_reference("icalendar_event_with_escaped_characters.ics", owner_property="ORGANIZER")
    )
    assert escaped.owner.startswith("это, то; that")


# --- owners ---------------------------------------------------------------------------------------


def test_owner_applies_to_every_entry(tmp_path: Path) -> None:
    items = read_text(
        tmp_path,
        calendar(
            *event("DTSTART:20261201T080000Z", "X-OWNER:E2002", uid="a"),
            *event("DTSTART:20261202T080000Z", uid="b"),
        ),
    )
    assert [item.owner for item in entries(items)] == [OWNER, OWNER]


def test_owner_property_names_the_owner_and_owner_is_the_fallback(tmp_path: Path) -> None:
    text = calendar(
        *event("DTSTART:20261201T080000Z", "X-OWNER:E2002", uid="x-owner"),
        *event("DTSTART:20261201T080000Z", uid="no-owner"),
    )
    items = by_key(read_text(tmp_path, text, owner_property="x-owner"))
    assert items["x-owner"].owner == "E2002"
    assert items["no-owner"].owner == OWNER


@pytest.mark.parametrize(
    "value", ["mailto:bob@contoso.example", "MAILTO:bob@contoso.example", "bob@contoso.example"]
)
def test_organizer_address_loses_its_mailto(tmp_path: Path, value: str) -> None:
    text = calendar(*event("DTSTART:20261201T080000Z", f"ORGANIZER;CN=Bob:{value}"))
    assert only_entry(read_text(tmp_path, text, owner=None, owner_property="ORGANIZER")).owner == (
        "bob@contoso.example"
    )


def test_owner_property_with_several_owners_is_rejected(tmp_path: Path) -> None:
    text = calendar(
        *event(
            "DTSTART:20261201T080000Z",
            "ATTENDEE:mailto:a@contoso.example",
            "ATTENDEE:mailto:b@contoso.example",
        )
    )
    rejected = only_rejection(read_text(tmp_path, text, owner_property="ATTENDEE"))
    assert rejected.source_key == "evt-1"
    assert "ATTENDEE names 2 different owners (a@contoso.example, b@contoso.example)" in rejected.reason


def test_event_without_owner_property_and_no_fallback_is_rejected(tmp_path: Path) -> None:
    rejected = only_rejection(
        read_text(
            tmp_path, calendar(*event("DTSTART:20261201T080000Z")), owner=None, owner_property="X-OWNER"
        )
    )
    assert rejected.reason.startswith("no owner:")
    assert "set owner = ..." in rejected.reason and "X-OWNER property" in rejected.reason


def test_settings_are_checked_at_construction(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as neither:
        IcsScheduleSource(tmp_path, default_zone="Europe/Paris")
    assert "owner" in neither.value.problems[0] and "owner_property" in neither.value.problems[0]
    with pytest.raises(SettingsError) as bad:
        IcsScheduleSource(tmp_path, default_zone="Mars/Olympus", owner=" ", owner_property="X OWNER")
    assert len(bad.value.problems) == 2
    assert any("Mars/Olympus" in problem for problem in bad.value.problems)
    assert any("'X OWNER'" in problem for problem in bad.value.problems)


# --- files and folders ----------------------------------------------------------------------------


def test_a_folder_is_read_in_name_order_and_only_its_ics_files(tmp_path: Path) -> None:
    write(tmp_path, calendar(*event("DTSTART:20261202T080000Z", uid="from-b")), "b.ics")
    write(tmp_path, calendar(*event("DTSTART:20261201T080000Z", uid="from-a")), "A.ICS")
    write(tmp_path, calendar(*event("DTSTART:20261201T080000Z", uid="hidden")), ".partial.ics")
    write(tmp_path, calendar(*event("DTSTART:20261201T080000Z", uid="text")), "notes.txt")
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub", calendar(*event("DTSTART:20261201T080000Z", uid="nested")), "c.ics")
    source = IcsScheduleSource(tmp_path, default_zone="Europe/Paris", owner=OWNER)
    items = list(source.read(WINDOW))
    assert [(item.source_key, item.origin) for item in items] == [
        ("from-a", "A.ICS#from-a"),
        ("from-b", "b.ics#from-b"),
    ]
    assert source.describe() == f"iCalendar folder {tmp_path} (2 files)"
    assert IcsScheduleSource(tmp_path / "b.ics", default_zone="UTC", owner="x").describe() == (
        f"iCalendar file {tmp_path / 'b.ics'}"
    )


def test_a_bad_file_in_a_folder_is_one_rejection_and_the_others_are_read(tmp_path: Path) -> None:
    write(tmp_path, calendar(*event("DTSTART:20261201T080000Z", uid="good")), "good.ics")
    write(tmp_path, "this is not a calendar\r\n", "garbage.ics")
    (tmp_path / "latin1.ics").write_bytes(calendar(*event("SUMMARY:Café")).encode("latin-1"))
    truncated = calendar(*event("DTSTART:20261201T080000Z", uid="cut")).split("END:VEVENT")[0]
    write(tmp_path, truncated, "truncated.ics")
    write(tmp_path, "", "empty.ics")
    items = read(tmp_path)
    assert [item.source_key for item in entries(items)] == ["good"]
    reasons = {item.origin: item.reason for item in rejections(items)}
    assert sorted(reasons) == ["empty.ics", "garbage.ics", "latin1.ics", "truncated.ics"]
    assert "it is empty" in reasons["empty.ics"]
    assert "Content line could not be parsed" in reasons["garbage.ics"]
    assert "not UTF-8" in reasons["latin1.ics"]
    assert "cut off or still being written" in reasons["truncated.ics"]
    assert all(item.source_key == "" and item.owner == OWNER for item in rejections(items))


def test_a_bad_single_file_is_a_source_error(tmp_path: Path) -> None:
    cut = write(tmp_path, calendar(*event("DTSTART:20261201T080000Z")).split("END:VEVENT")[0])
    with pytest.raises(SourceError, match="cannot be read as iCalendar: it ends inside BEGIN:VEVENT"):
        read(cut)


def test_missing_paths_and_empty_folders_are_source_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist") as missing:
        read(tmp_path / "nowhere.ics")
    assert missing.value.fix and "path in the settings" in missing.value.fix
    with pytest.raises(SourceError, match=r"holds no \.ics files"):
        read(tmp_path)


def test_a_misplaced_end_rejects_the_file_but_a_typo_in_a_task_does_not(tmp_path: Path) -> None:
    # An END:VEVENT that closes the VCALENDAR would pour every later event into one.
    misplaced = calendar(*event("DTSTART:20261201T080000Z")).replace(
        "END:VEVENT", "END:VCALENDAR\r\nEND:VEVENT", 1
    )
    write(tmp_path, misplaced, "misplaced.ics")
    typo = calendar("BEGIN:VTODO", "UID:task", "END:VTOOD", *event("DTSTART:20261201T080000Z", uid="kept"))
    write(tmp_path, typo, "typo.ics")
    items = read(tmp_path)
    assert [item.source_key for item in entries(items)] == ["kept"]
    [rejected] = rejections(items)
    assert rejected.origin == "misplaced.ics"
    assert "END:VCALENDAR on line 7 closes BEGIN:VEVENT" in rejected.reason


#: Edits that break a file the way copies, hand edits and buggy exporters do.
MUTATIONS = ("drop", "duplicate", "cut", "swap", "value")
ODD_VALUES = (
    b"",
    b"X",
    b"20261301T250000",
    b"-P1D",
    b"FREQ=YEARLY;BYMONTH=13",
    b"99991231T235959Z",
    b"2000/01",
)


def mutated(data: bytes, seed: int) -> bytes:
    lines = data.split(b"\n")
    for step in range(3):
        index = (seed * 7919 + step * 104729) % len(lines)
        other = (seed * 31 + step * 17) % len(lines)
        match MUTATIONS[(seed + step) % len(MUTATIONS)]:
            case "drop":
                del lines[index]
            case "duplicate":
                lines.insert(index, lines[index])
            case "cut":
                lines[index] = lines[index][: len(lines[index]) // 2]
            case "swap":
                lines[index], lines[other] = lines[other], lines[index]
            case _:
                name, colon, _value = lines[index].partition(b":")
                if colon:
                    lines[index] = name + colon + ODD_VALUES[seed % len(ODD_VALUES)]
    return b"\n".join(lines)


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_broken_copies_of_the_corpus_never_raise_in_a_folder(tmp_path: Path, name: str) -> None:
    data = (REFERENCE / name).read_bytes()
    within = CORPUS[name][0]
    for seed in range(8):
        (tmp_path / f"{seed}.ics").write_bytes(mutated(data, seed))
    items = read(tmp_path, within)
    assert all(item.reason for item in rejections(items))
    # Alone, a file that cannot be read at all is a SourceError, and nothing else escapes.
    errors: list[str] = []
    for seed in range(8):
        try:
            read(tmp_path / f"{seed}.ics", within)
        except SourceError as error:
            errors.append(str(error))
    assert all("cannot be read as iCalendar" in error for error in errors)


def test_the_source_fits_the_port(tmp_path: Path) -> None:
    source: ScheduleSource = IcsScheduleSource(tmp_path, default_zone="Europe/Paris", owner=OWNER)
    assert source.describe().startswith("iCalendar folder")


# --- times ----------------------------------------------------------------------------------------


def test_floating_time_is_wall_clock_in_the_default_zone(tmp_path: Path) -> None:
    text = calendar(*event("DTSTART:20261201T090000", "DTEND:20261201T173000"))
    item = only_entry(read_text(tmp_path, text))
    assert wall(item) == ("Europe/Paris", at(2026, 12, 1, 9), at(2026, 12, 1, 17, 30))
    tokyo = only_entry(read_text(tmp_path, text, zone="Asia/Tokyo"))
    assert wall(tokyo) == ("Asia/Tokyo", at(2026, 12, 1, 9), at(2026, 12, 1, 17, 30))


def test_floating_and_utc_times_follow_x_wr_timezone(tmp_path: Path) -> None:
    text = calendar(
        "X-WR-TIMEZONE:America/New_York",
        *event("DTSTART:20261201T090000", "DTEND:20261201T100000", uid="floating"),
        *event("DTSTART:20261201T170000Z", "DTEND:20261201T180000Z", uid="utc"),
    )
    items = by_key(read_text(tmp_path, text))
    assert wall(items["floating"]) == ("America/New_York", at(2026, 12, 1, 9), at(2026, 12, 1, 10))
    assert wall(items["utc"]) == ("America/New_York", at(2026, 12, 1, 12), at(2026, 12, 1, 13))


def test_unknown_x_wr_timezone_rejects_the_calendar(tmp_path: Path) -> None:
    rejected = only_rejection(
        read_text(tmp_path, calendar("X-WR-TIMEZONE:Atlantis/Capital", *event("DTSTART:20261201T090000")))
    )
    assert "X-WR-TIMEZONE 'Atlantis/Capital' is not a time zone name" in rejected.reason


def test_utc_time_is_an_instant_shown_in_the_default_zone(tmp_path: Path) -> None:
    item = only_entry(
        read_text(tmp_path, calendar(*event("DTSTART:20261201T080000Z", "DTEND:20261201T090000Z")))
    )
    assert wall(item) == ("Europe/Paris", at(2026, 12, 1, 9), at(2026, 12, 1, 10))


def test_utc_series_repeats_in_utc_across_a_dst_change(tmp_path: Path) -> None:
    # A rule on a UTC start repeats at the same UTC time (RFC 5545): 08:00Z is 09:00 in Paris in
    # March and 10:00 in April. Converting first and repeating the wall clock would move it.
    text = calendar(*event("DTSTART:20270325T080000Z", "DTEND:20270325T090000Z", "RRULE:FREQ=WEEKLY;COUNT=2"))
    items = entries(read_text(tmp_path, text))
    assert [utc_start(item) for item in items] == [utc(2027, 3, 25, 8), utc(2027, 4, 1, 8)]
    assert [wall(item)[1] for item in items] == [at(2027, 3, 25, 9), at(2027, 4, 1, 10)]


def test_time_in_the_spring_gap_means_the_time_after_it(tmp_path: Path) -> None:
    # RFC 5545 §3.3.5: a nonexistent local time takes the offset before the gap.
    text = calendar(
        *event("DTSTART;TZID=Europe/Paris:20270328T023000", "DTEND;TZID=Europe/Paris:20270328T043000")
    )
    item = only_entry(read_text(tmp_path, text))
    assert wall(item) == ("Europe/Paris", at(2027, 3, 28, 3, 30), at(2027, 3, 28, 4, 30))
    assert utc_start(item) == utc(2027, 3, 28, 1, 30)


def test_time_in_the_autumn_overlap_means_its_first_occurrence(tmp_path: Path) -> None:
    text = calendar(
        *event("DTSTART;TZID=Europe/Paris:20261025T023000", "DTEND;TZID=Europe/Paris:20261025T040000")
    )
    item = only_entry(read_text(tmp_path, text, within=window(date(2026, 10, 1), date(2026, 11, 1))))
    assert utc_start(item) == utc(2026, 10, 25, 0, 30)  # 02:30 summer time, +02:00
    start, end = timed(item).utc_bounds(PARIS)
    assert end - start == timedelta(hours=2, minutes=30)  # 04:00 is winter time again


def test_windows_tzid_without_vtimezone(tmp_path: Path) -> None:
    text = calendar(
        *event(
            "DTSTART;TZID=W. Europe Standard Time:20261201T090000",
            "DTEND;TZID=W. Europe Standard Time:20261201T100000",
        )
    )
    item = only_entry(read_text(tmp_path, text))
    assert wall(item) == ("Europe/Berlin", at(2026, 12, 1, 9), at(2026, 12, 1, 10))


def test_unknown_tzid_without_vtimezone_is_rejected_naming_it(tmp_path: Path) -> None:
    text = calendar(*event("DTSTART;TZID=Office Time:20261201T090000", "SUMMARY:Early shift"))
    rejected = only_rejection(read_text(tmp_path, text))
    assert rejected.source_key == "evt-1" and rejected.origin == "cal.ics#evt-1"
    assert "DTSTART uses the time zone 'Office Time'" in rejected.reason
    assert "include its VTIMEZONE" in rejected.reason


def vtimezone(tzid: str, offset: str, *, name: bool = True) -> list[str]:
    return [
        "BEGIN:VTIMEZONE",
        f"TZID:{tzid}",
        "BEGIN:STANDARD",
        "DTSTART:20000101T000000",
        f"TZOFFSETFROM:{offset}",
        f"TZOFFSETTO:{offset}",
        *([f"TZNAME:{tzid}"] if name else []),
        "END:STANDARD",
        "END:VTIMEZONE",
    ]


def test_each_file_uses_its_own_vtimezone_definition(tmp_path: Path) -> None:
    # icalendar caches the first VTIMEZONE it ever sees for a TZID, process-wide.
    start = "DTSTART;TZID=Shop Time:20261201T100000"
    write(tmp_path, calendar(*vtimezone("Shop Time", "+1200"), *event(start, uid="plus-12")), "a.ics")
    write(tmp_path, calendar(*vtimezone("Shop Time", "+0500"), *event(start, uid="plus-5")), "b.ics")
    write(tmp_path, calendar(*event(start, uid="undefined")), "c.ics")
    items = read(tmp_path)
    assert {item.source_key: utc_start(item) for item in entries(items)} == {
        "plus-12": utc(2026, 11, 30, 22),
        "plus-5": utc(2026, 12, 1, 5),
    }
    [undefined] = rejections(items)
    assert undefined.source_key == "undefined" and "'Shop Time'" in undefined.reason


def test_x_wr_timezone_leaves_a_vtimezone_without_tzname_alone(tmp_path: Path) -> None:
    text = calendar(
        "X-WR-TIMEZONE:Europe/Berlin",
        *vtimezone("Shop Time", "+0500", name=False),
        *event("DTSTART;TZID=Shop Time:20261201T100000", "DTEND;TZID=Shop Time:20261201T110000"),
    )
    assert utc_start(only_entry(read_text(tmp_path, text))) == utc(2026, 12, 1, 5)


# --- spans ----------------------------------------------------------------------------------------


def test_dates_are_all_day_with_an_exclusive_end(tmp_path: Path) -> None:
    text = calendar(
        *event("DTSTART;VALUE=DATE:20261201", uid="one-day"),
        *event("DTSTART;VALUE=DATE:20261201", "DTEND;VALUE=DATE:20261204", uid="three-days"),
        *event("DTSTART;VALUE=DATE:20261201", "DTEND:20261203T000000Z", uid="midnight-end"),
    )
    items = by_key(read_text(tmp_path, text))
    assert items["one-day"].span == AllDaySpan(date(2026, 12, 1), date(2026, 12, 2))
    assert items["three-days"].span == AllDaySpan(date(2026, 12, 1), date(2026, 12, 4))
    assert items["midnight-end"].span == AllDaySpan(date(2026, 12, 1), date(2026, 12, 3))


def test_date_time_without_end_is_zero_length(tmp_path: Path) -> None:
    item = only_entry(read_text(tmp_path, calendar(*event("DTSTART;TZID=Europe/Berlin:20261201T090000"))))
    assert wall(item) == ("Europe/Berlin", at(2026, 12, 1, 9), at(2026, 12, 1, 9))


def test_duration(tmp_path: Path) -> None:
    text = calendar(
        *event("DTSTART;TZID=Europe/Berlin:20261201T090000", "DURATION:PT1H30M", uid="timed"),
        *event("DTSTART;VALUE=DATE:20261201", "DURATION:P2D", uid="days"),
        *event("DTSTART;VALUE=DATE:20261201", "DURATION:PT10H", uid="hours-on-a-date"),
        *event("DTSTART:20261201T090000Z", "DURATION:-PT1H", uid="negative"),
        *event("DTSTART;VALUE=DATE:20261201", "DTEND;VALUE=DATE:20261202", "DURATION:PT0S", uid="both"),
    )
    items = read_text(tmp_path, text)
    good = by_key(items)
    assert wall(good["timed"]) == ("Europe/Berlin", at(2026, 12, 1, 9), at(2026, 12, 1, 10, 30))
    assert good["days"].span == AllDaySpan(date(2026, 12, 1), date(2026, 12, 3))
    assert good["both"].span == AllDaySpan(date(2026, 12, 1), date(2026, 12, 2))  # DTEND wins
    reasons = {item.source_key: item.reason for item in rejections(items)}
    assert "DURATION is not whole days (PT10H)" in reasons["hours-on-a-date"]
    assert "DURATION is negative (-PT1H)" in reasons["negative"]


def test_end_before_start_rejects_each_occurrence_under_its_own_key(tmp_path: Path) -> None:
    text = calendar(
        *event(
            "DTSTART;TZID=Europe/Berlin:20261201T090000",
            "DTEND;TZID=Europe/Berlin:20261201T083000",
            "RRULE:FREQ=DAILY;COUNT=2",
        )
    )
    items = read_text(tmp_path, text)
    assert [(item.source_key, type(item).__name__) for item in items] == [
        ("evt-1#20261201T080000Z", "Rejected"),
        ("evt-1#20261202T080000Z", "Rejected"),
    ]
    assert (
        "ends (2026-12-01 08:30:00+01:00) before it starts (2026-12-01 09:00:00+01:00)"
        in rejections(items)[0].reason
    )


def test_date_start_with_a_time_of_day_end_is_rejected(tmp_path: Path) -> None:
    rejected = only_rejection(
        read_text(tmp_path, calendar(*event("DTSTART;VALUE=DATE:20261201", "DTEND:20261201T120000")))
    )
    assert (
        "DTSTART is a date (a whole-day entry) but DTEND has a time of day (20261201T120000)"
        in rejected.reason
    )


def test_unreadable_rrule_and_missing_start_are_rejected(tmp_path: Path) -> None:
    text = calendar(
        *event("DTSTART:20261201T090000Z", "RRULE:FREQ=DAILY;BYDAY=MO, TU", uid="bad-rule"),
        *event("SUMMARY:Nothing else", uid="no-start"),
    )
    reasons = {item.source_key: item.reason for item in rejections(read_text(tmp_path, text))}
    assert reasons["bad-rule"].startswith("RRULE cannot be read (")
    assert reasons["no-start"].startswith("it has no DTSTART")


def test_too_frequent_rules_are_rejected_without_expanding_them(tmp_path: Path) -> None:
    text = calendar(
        *event("DTSTART:20261201T090000Z", "RRULE:FREQ=SECONDLY", uid="secondly"),
        *event("DTSTART:20261201T090000Z", "RRULE:FREQ=HOURLY;BYMINUTE=0,10,20,30,40,50", uid="dense"),
        *event("DTSTART:20261201T090000Z", "RRULE:FREQ=HOURLY;COUNT=3", uid="hourly"),
    )
    items = read_text(tmp_path, text)
    reasons = {item.source_key: item.reason for item in rejections(items)}
    assert "RRULE repeats SECONDLY" in reasons["secondly"]
    assert f"repeats more than {MAX_OCCURRENCES} times inside the sync window" in reasons["dense"]
    assert len(entries(items)) == 3


# --- recurrence -----------------------------------------------------------------------------------


def series(*override: str, master: tuple[str, ...] = ()) -> str:
    """Mondays 09:00-10:00 in Berlin, 2026-11-16 .. 12-14, without 11-23; ``override`` edits one."""
    return calendar(
        *event(
            "DTSTART;TZID=Europe/Berlin:20261116T090000",
            "DTEND;TZID=Europe/Berlin:20261116T100000",
            "RRULE:FREQ=WEEKLY;COUNT=5",
            "EXDATE;TZID=Europe/Berlin:20261123T090000",
            "SUMMARY:Team meeting",
            *master,
            uid="weekly",
        ),
        *(event(*override, uid="weekly") if override else ()),
    )


def test_rrule_exdate_and_a_moved_occurrence(tmp_path: Path) -> None:
    text = series(
        "RECURRENCE-ID;TZID=Europe/Berlin:20261130T090000",
        "DTSTART;TZID=Europe/Berlin:20261201T140000",
        "DTEND;TZID=Europe/Berlin:20261201T153000",
        "SUMMARY:Team meeting (moved)",
    )
    items = by_key(read_text(tmp_path, text))
    assert sorted(items) == [
        "weekly#20261116T080000Z",
        "weekly#20261130T080000Z",
        "weekly#20261207T080000Z",
        "weekly#20261214T080000Z",
    ]
    moved = items["weekly#20261130T080000Z"]  # keeps the key of the occurrence it replaces
    assert wall(moved) == ("Europe/Berlin", at(2026, 12, 1, 14), at(2026, 12, 1, 15, 30))
    assert moved.title == "Team meeting (moved)"
    assert moved.origin == "cal.ics#weekly (occurrence 20261130T080000Z)"
    assert wall(items["weekly#20261207T080000Z"]) == (
        "Europe/Berlin",
        at(2026, 12, 7, 9),
        at(2026, 12, 7, 10),
    )


def test_cancelled_occurrence_and_cancelled_event_yield_nothing(tmp_path: Path) -> None:
    cancelled_one = series(
        "RECURRENCE-ID;TZID=Europe/Berlin:20261130T090000",
        "DTSTART;TZID=Europe/Berlin:20261130T090000",
        "STATUS:CANCELLED",
    )
    assert "weekly#20261130T080000Z" not in by_key(read_text(tmp_path, cancelled_one))
    assert len(read_text(tmp_path, cancelled_one)) == 3
    assert read_text(tmp_path, series(master=("STATUS:CANCELLED",))) == []
    # Cancelled wins even over a broken event: it must vanish, not be quarantined.
    broken = calendar(*event("DTSTART;TZID=Nowhere:20261201T090000", "STATUS:CANCELLED"))
    assert read_text(tmp_path, broken) == []


def test_all_day_series_keys_are_dates(tmp_path: Path) -> None:
    text = calendar(*event("DTSTART;VALUE=DATE:20261201", "RRULE:FREQ=DAILY;COUNT=2", uid="days"))
    items = by_key(read_text(tmp_path, text))
    assert items["days#20261202"].span == AllDaySpan(date(2026, 12, 2), date(2026, 12, 3))
    assert sorted(items) == ["days#20261201", "days#20261202"]


def test_rdates_with_periods_and_exdates(tmp_path: Path) -> None:
    text = calendar(
        *event(
            "DTSTART;TZID=Europe/Berlin:20261201T090000",
            "DTEND;TZID=Europe/Berlin:20261201T100000",
            "RDATE;TZID=Europe/Berlin:20261203T090000,20261205T110000",
            "RDATE;VALUE=PERIOD:20261210T080000Z/20261210T120000Z",
            "EXDATE;TZID=Europe/Berlin:20261205T110000",
            uid="extra",
        )
    )
    items = by_key(read_text(tmp_path, text))
    assert sorted(items) == ["extra#20261201T080000Z", "extra#20261203T080000Z", "extra#20261210T080000Z"]
    assert wall(items["extra#20261203T080000Z"]) == ("Europe/Berlin", at(2026, 12, 3, 9), at(2026, 12, 3, 10))
    # A period in UTC is an instant with its own length, shown in the connector's zone.
    assert wall(items["extra#20261210T080000Z"]) == (
        "Europe/Paris",
        at(2026, 12, 10, 9),
        at(2026, 12, 10, 13),
    )


def test_the_owner_hint_narrows_nothing(tmp_path: Path) -> None:
    path = write(tmp_path, calendar(*event("DTSTART:20261201T080000Z", "X-OWNER:E2002")))
    source = IcsScheduleSource(path, default_zone="Europe/Paris", owner=OWNER, owner_property="X-OWNER")
    assert list(source.read(WINDOW, owner="E9999")) == list(source.read(WINDOW))


# --- keys -----------------------------------------------------------------------------------------


def test_keys_are_stable_across_reads(tmp_path: Path) -> None:
    text = calendar(
        *event("DTSTART;TZID=Europe/Berlin:20261201T090000", "RRULE:FREQ=WEEKLY;COUNT=3", uid="series"),
        "BEGIN:VEVENT",
        "DTSTART:20261203T090000Z",
        "SUMMARY:Written by hand",
        "END:VEVENT",
        *event("DTSTART:20261204T090000Z", uid="x" * 300),
    )
    path = write(tmp_path, text)
    first, second = read(path), read(path)
    assert first == second
    keys = [item.source_key for item in first]
    assert keys[:3] == ["series#20261201T080000Z", "series#20261208T080000Z", "series#20261215T080000Z"]
    assert re.fullmatch(r"ics-[0-9a-f]{32}", keys[3])
    assert re.fullmatch(r"uid-sha256-[0-9a-f]{40}", keys[4])
    assert len(set(keys)) == 5
    assert first[3].origin == 'cal.ics#VEVENT 2 "Written by hand" (no UID)'


def test_derived_key_changes_with_the_summary(tmp_path: Path) -> None:
    def key(summary: str) -> str:
        text = calendar("BEGIN:VEVENT", "DTSTART:20261203T090000Z", f"SUMMARY:{summary}", "END:VEVENT")
        return only_entry(read_text(tmp_path, text)).source_key

    assert key("Early") == key("Early") != key("Late")


# --- fields ---------------------------------------------------------------------------------------


def test_fields_map_to_the_entry(tmp_path: Path) -> None:
    text = calendar(
        *event(
            "DTSTART;TZID=Europe/Berlin:20261201T060000",
            "DTEND;TZID=Europe/Berlin:20261201T140000",
            "SUMMARY:Frühschicht\\, Station 3",
            "DESCRIPTION:Übergabe um 13:45\\nBitte pünktlich\\; danke",
            "LOCATION:Haus B",
            "CATEGORIES:Pflege,Früh",
            "CATEGORIES:Extra",
            "TRANSP:TRANSPARENT",
            "CLASS:CONFIDENTIAL",
            "BEGIN:VALARM",
            "ACTION:AUDIO",
            "TRIGGER:-PT1H",
            "END:VALARM",
            "BEGIN:VALARM",
            "ACTION:DISPLAY",
            "TRIGGER;RELATED=START:-PT14M30S",
            "END:VALARM",
        )
    )
    item = only_entry(read_text(tmp_path, text))
    assert item.title == "Frühschicht, Station 3"
    assert item.body == "Übergabe um 13:45\nBitte pünktlich; danke"
    assert (item.location, item.category) == ("Haus B", "Pflege")
    assert (item.show_as, item.sensitivity, item.reminder_minutes) == (
        ShowAs.FREE,
        Sensitivity.CONFIDENTIAL,
        15,
    )
    assert item.origin == "cal.ics#evt-1"


@pytest.mark.parametrize(
    ("lines", "show_as", "sensitivity"),
    [
        ((), None, None),
        (("TRANSP:OPAQUE", "CLASS:PUBLIC"), None, None),
        (("X-MICROSOFT-CDO-BUSYSTATUS:OOF", "TRANSP:TRANSPARENT"), ShowAs.OOF, None),
        (("STATUS:TENTATIVE", "CLASS:PRIVATE"), ShowAs.TENTATIVE, Sensitivity.PRIVATE),
    ],
)
def test_busy_status_and_class(
    tmp_path: Path, lines: tuple[str, ...], show_as: ShowAs | None, sensitivity: Sensitivity | None
) -> None:
    item = only_entry(read_text(tmp_path, calendar(*event("DTSTART:20261201T090000Z", *lines))))
    assert (item.show_as, item.sensitivity) == (show_as, sensitivity)


def test_alarms_without_an_exchange_equivalent_set_no_reminder(tmp_path: Path) -> None:
    alarms = [
        ("ACTION:DISPLAY", "TRIGGER:PT5M"),  # after the start
        ("ACTION:DISPLAY", "TRIGGER;RELATED=END:-PT5M"),
        ("ACTION:DISPLAY", "TRIGGER;VALUE=DATE-TIME:20261201T080000Z"),
    ]
    lines = [line for alarm in alarms for line in ("BEGIN:VALARM", *alarm, "END:VALARM")]
    item = only_entry(read_text(tmp_path, calendar(*event("DTSTART:20261201T090000Z", *lines))))
    assert item.reminder_minutes is None


def test_a_bare_vevent_fragment_is_read(tmp_path: Path) -> None:
    text = calendar(*event("DTSTART;TZID=Europe/Berlin:20261201T090000", "SUMMARY:Fragment"), wrap=False)
    item = only_entry(read_text(tmp_path, text))
    assert (item.title, wall(item)[1]) == ("Fragment", at(2026, 12, 1, 9))


# --- into the core ----------------------------------------------------------------------------------


def test_entries_become_valid_event_specs(tmp_path: Path) -> None:
    text = series(
        "RECURRENCE-ID;TZID=Europe/Berlin:20261130T090000",
        "DTSTART;TZID=Europe/Berlin:20261201T140000",
        "DTEND;TZID=Europe/Berlin:20261201T153000",
        "SUMMARY:Team meeting (moved)",
    ) + calendar(
        *event("DTSTART;VALUE=DATE:20261224", "DTEND;VALUE=DATE:20261227", "SUMMARY:Weihnachten", uid="xmas"),
        *event("DTSTART;TZID=Pacific Standard Time:20261201T090000", "SUMMARY:Call", uid="windows"),
        *event("DTSTART;TZID=Nowhere:20261201T090000", uid="broken"),
    )
    items = read_text(tmp_path, text)
    prepared = prepare(items, DIRECTORY, RULES)
    specs = prepared.specs[MAILBOX]
    assert sorted(specs) == [
        "weekly#20261116T080000Z",
        "weekly#20261130T080000Z",
        "weekly#20261207T080000Z",
        "weekly#20261214T080000Z",
        "windows",
        "xmas",
    ]
    assert [(q.source_key, q.mailbox) for q in prepared.quarantined] == [("broken", MAILBOX)]
    assert prepared.protected == {"broken"}
    moved = specs["weekly#20261130T080000Z"]
    assert moved.subject == "Team meeting (moved)"
    assert moved.categories[0] == "Planning"
    assert isinstance(moved.span, TimedSpan) and moved.span.timezone == "Europe/Berlin"
    assert specs["xmas"].span == AllDaySpan(date(2026, 12, 24), date(2026, 12, 27))
    assert specs["windows"].span == TimedSpan(
        datetime(2026, 12, 1, 9, tzinfo=ZoneInfo("America/Los_Angeles")),
        datetime(2026, 12, 1, 9, tzinfo=ZoneInfo("America/Los_Angeles")),
        "America/Los_Angeles",
    )
    assert all(WINDOW.contains(spec.span) for spec in specs.values())
