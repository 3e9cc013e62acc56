"""The CSV and JSON file sources: row parsing, time conventions, rejections with their origin."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from adapters.source.files import (
    CsvScheduleSource,
    CsvTargetSource,
    JsonScheduleSource,
    JsonTargetSource,
    file_schedule_source,
    file_target_source,
)
from adapters.source.rows import ENTRY_COLUMN_ORDER
from connector.errors import SourceError
from connector.models import (
    AllDaySpan,
    Rejected,
    ScheduleEntry,
    Sensitivity,
    ShowAs,
    Target,
    TargetKind,
    TimedSpan,
)
from connector.source import ScheduleSource, TargetSource
from connector.window import Window

PARIS = ZoneInfo("Europe/Paris")
WINDOW = Window.around(date(2026, 11, 16), PARIS, days_before=7, days_after=180)
COLUMNS = ENTRY_COLUMN_ORDER


def write_csv(path: Path, rows: list[dict[str, str]], columns: tuple[str, ...] = COLUMNS) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)
    return path


def read_csv(
    tmp_path: Path, rows: list[dict[str, str]], zone: str = "Europe/Paris"
) -> list[ScheduleEntry | Rejected]:
    return list(CsvScheduleSource(write_csv(tmp_path / "s.csv", rows), default_zone=zone).read(WINDOW))


def one(tmp_path: Path, zone: str = "Europe/Paris", **cells: str) -> ScheduleEntry | Rejected:
    row = {"key": "K1", "owner": "E1001", "title": "t"} | cells
    items = read_csv(tmp_path, [row], zone)
    assert len(items) == 1
    return items[0]


def entry(tmp_path: Path, zone: str = "Europe/Paris", **cells: str) -> ScheduleEntry:
    item = one(tmp_path, zone, **cells)
    assert isinstance(item, ScheduleEntry), item
    return item


def rejected(tmp_path: Path, **cells: str) -> Rejected:
    item = one(tmp_path, **cells)
    assert isinstance(item, Rejected), item
    return item


def timed(item: ScheduleEntry) -> TimedSpan:
    assert isinstance(item.span, TimedSpan), item.span
    return item.span


# --- times -----------------------------------------------------------------------------------------


def test_naive_time_is_wall_clock_in_the_default_zone(tmp_path: Path) -> None:
    span = timed(entry(tmp_path, start="2026-12-01T09:00", end="2026-12-01 17:30"))
    assert span.timezone == "Europe/Paris"
    assert span.start == datetime(2026, 12, 1, 9, 0, tzinfo=PARIS)
    assert span.end == datetime(2026, 12, 1, 17, 30, tzinfo=PARIS)
    assert span.start.utcoffset() == timedelta(hours=1)


def test_row_timezone_beats_the_default(tmp_path: Path) -> None:
    span = timed(
        entry(tmp_path, start="2026-12-01T09:00", end="2026-12-01T10:00", timezone="America/New_York")
    )
    assert span.timezone == "America/New_York"
    assert (span.start.hour, span.start.utcoffset()) == (9, timedelta(hours=-5))


def test_default_zone_is_the_constructor_argument(tmp_path: Path) -> None:
    span = timed(entry(tmp_path, zone="Asia/Tokyo", start="2026-12-01T09:00", end="2026-12-01T10:00"))
    assert span.timezone == "Asia/Tokyo"
    assert span.start.utcoffset() == timedelta(hours=9)


@pytest.mark.parametrize(
    ("raw", "wall_hour"),
    [
        ("2026-12-01T08:00:00Z", 9),  # UTC instant, shown in Paris (UTC+1 in winter)
        ("2026-12-01T09:00+01:00", 9),
        ("2026-12-01T12:00+04:00", 9),
        ("2026-12-01T03:00-05:00", 9),
    ],
)
def test_times_with_offset_keep_the_instant_in_the_row_zone(tmp_path: Path, raw: str, wall_hour: int) -> None:
    span = timed(entry(tmp_path, start=raw, end="2026-12-01T18:00"))
    assert span.start == datetime.fromisoformat(raw)  # same instant
    assert span.start.tzinfo == PARIS
    assert span.start.hour == wall_hour


def test_offset_time_is_converted_to_the_row_zone_not_the_default(tmp_path: Path) -> None:
    span = timed(
        entry(tmp_path, start="2027-01-12T00:00:00Z", end="2027-01-12T01:00:00Z", timezone="Asia/Tokyo")
    )
    assert span.timezone == "Asia/Tokyo"
    assert (span.start.hour, span.end.hour) == (9, 10)


def test_day_after_the_eu_change_keeps_wall_clock_and_summer_offset(tmp_path: Path) -> None:
    span = timed(entry(tmp_path, start="2027-03-29T09:00", end="2027-03-29T17:00", timezone="Europe/Berlin"))
    assert span.timezone == "Europe/Berlin"
    assert (span.start.hour, span.start.minute, span.end.hour, span.end.minute) == (9, 0, 17, 0)
    assert span.start.utcoffset() == span.end.utcoffset() == timedelta(hours=2)


def test_night_across_the_eu_change_lasts_seven_real_hours(tmp_path: Path) -> None:
    span = timed(entry(tmp_path, start="2027-03-27T22:00", end="2027-03-28T06:00"))
    start_utc, end_utc = span.utc_bounds(PARIS)
    assert end_utc - start_utc == timedelta(hours=7)
    assert (span.start.hour, span.end.hour) == (22, 6)


def test_time_in_the_dst_gap_is_rejected_not_shifted(tmp_path: Path) -> None:
    item = rejected(tmp_path, start="2027-03-28T02:30", end="2027-03-28T04:00", timezone="Europe/Paris")
    assert "2027-03-28T02:30" in item.reason
    assert "Europe/Paris" in item.reason
    assert "skip" in item.reason
    assert (item.source_key, item.owner, item.origin) == ("K1", "E1001", "s.csv:2")


def test_dst_gap_in_the_end_is_rejected_too(tmp_path: Path) -> None:
    item = rejected(tmp_path, start="2027-03-14T01:00", end="2027-03-14T02:15", timezone="America/New_York")
    assert item.reason.startswith("end '2027-03-14T02:15' does not exist in America/New_York")


def test_ambiguous_time_takes_the_first_occurrence(tmp_path: Path) -> None:
    span = timed(entry(tmp_path, start="2026-10-25T02:30", end="2026-10-25T04:00"))
    assert span.start.fold == 0
    assert span.start.utcoffset() == timedelta(hours=2)  # still summer time
    assert span.end.utcoffset() == timedelta(hours=1)


def test_timed_row_needs_an_end_and_a_time_of_day(tmp_path: Path) -> None:
    assert rejected(tmp_path, start="2026-12-01T09:00").reason.startswith("end is missing")
    item = rejected(tmp_path, start="2026-12-01", end="2026-12-01T10:00")
    assert item.reason.startswith("start '2026-12-01' has no time of day")


@pytest.mark.parametrize("bad", ["2026-13-45", "01.12.2026 09:00", "tomorrow", "2026-12-01T25:00"])
def test_unparseable_date_is_rejected_with_an_example(tmp_path: Path, bad: str) -> None:
    item = rejected(tmp_path, start=bad, end="2026-12-01T10:00")
    assert item.reason == f"start '{bad}' is not a date/time — use ISO 8601 such as 2026-12-01T09:00"


# --- all-day -----------------------------------------------------------------------------------------


def test_all_day_end_is_inclusive_in_the_file_and_exclusive_in_the_model(tmp_path: Path) -> None:
    item = entry(tmp_path, start="2027-02-01", end="2027-02-05", all_day="true")
    assert item.span == AllDaySpan(date(2027, 2, 1), date(2027, 2, 6))


def test_all_day_with_empty_end_is_one_day(tmp_path: Path) -> None:
    item = entry(tmp_path, start="2027-02-01", all_day="yes")
    assert item.span == AllDaySpan(date(2027, 2, 1), date(2027, 2, 2))


def test_all_day_on_new_years_eve_ends_next_year(tmp_path: Path) -> None:
    item = entry(tmp_path, start="2026-12-31", end="2026-12-31", all_day="1")
    assert item.span == AllDaySpan(date(2026, 12, 31), date(2027, 1, 1))


def test_all_day_accepts_midnight_but_no_other_time(tmp_path: Path) -> None:
    item = entry(tmp_path, start="2027-02-01T00:00", end="2027-02-02 00:00:00", all_day="TRUE")
    assert item.span == AllDaySpan(date(2027, 2, 1), date(2027, 2, 3))
    bad = rejected(tmp_path, start="2027-02-01T09:00", all_day="true")
    assert bad.reason.startswith("start '2027-02-01T09:00' has a time of day in an all-day row")


def test_all_day_unparseable_date(tmp_path: Path) -> None:
    item = rejected(tmp_path, start="2027-02-30", all_day="true")
    assert item.reason.startswith("start '2027-02-30' is not a date")


@pytest.mark.parametrize(("raw", "expected"), [("", False), ("no", False), ("0", False), ("False", False)])
def test_all_day_false_values(tmp_path: Path, raw: str, expected: bool) -> None:
    item = entry(tmp_path, start="2026-12-01T09:00", end="2026-12-01T10:00", all_day=raw)
    assert item.span.is_all_day is expected


def test_bad_all_day_flag_is_rejected(tmp_path: Path) -> None:
    item = rejected(tmp_path, start="2026-12-01", all_day="ganztägig")
    assert item.reason.startswith("all_day 'ganztägig' is not valid — use true, false")


# --- fields ------------------------------------------------------------------------------------------


def test_optional_fields_and_extras(tmp_path: Path) -> None:
    columns = (*COLUMNS, "project", "Kostenstelle")
    row = {
        "key": " SHIFT-000123 ",
        "owner": "E1001",
        "start": "2026-12-01T09:00",
        "end": "2026-12-01T10:00",
        "title": "  Frühschicht  am Tor 3 ",
        "body": "  Zeile 1\n  Zeile 2  ",
        "location": " Lager Süd ",
        "category": " Schicht ",
        "show_as": "WorkingElsewhere",
        "sensitivity": "PRIVATE",
        "reminder_minutes": " 15 ",
        "status": "Confirmed",
        "project": " Łódź ",
        "Kostenstelle": "4711",
    }
    items = list(
        CsvScheduleSource(write_csv(tmp_path / "s.csv", [row], columns), default_zone="Europe/Paris").read(
            WINDOW
        )
    )
    assert len(items) == 1
    item = items[0]
    assert isinstance(item, ScheduleEntry)
    assert item.source_key == "SHIFT-000123"
    assert item.title == "Frühschicht  am Tor 3"
    assert item.body == "  Zeile 1\n  Zeile 2  "
    assert item.location == "Lager Süd"
    assert item.category == " Schicht "
    assert item.show_as is ShowAs.WORKING_ELSEWHERE
    assert item.sensitivity is Sensitivity.PRIVATE
    assert item.reminder_minutes == 15
    assert item.extra == {"project": " Łódź ", "Kostenstelle": "4711"}
    assert item.origin == "s.csv:2"


def test_empty_optional_fields_are_none(tmp_path: Path) -> None:
    item = entry(tmp_path, start="2026-12-01T09:00", end="2026-12-01T10:00")
    assert (item.show_as, item.sensitivity, item.reminder_minutes) == (None, None, None)
    assert (item.body, item.location, item.category, dict(item.extra)) == ("", "", "", {})


def test_non_ascii_text_survives(tmp_path: Path) -> None:
    text = "Übergabe å ä ö ß ł 日本語 会議室 🚀🎉"
    item = entry(
        tmp_path, start="2026-12-01T09:00", end="2026-12-01T10:00", title=text, location=text, body=text
    )
    assert (item.title, item.location, item.body) == (text, text, text)


def test_utf8_bom_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(
        "\ufeffkey,owner,start,end,title\nK1,E1001,2026-12-01T09:00,2026-12-01T10:00,Grüße\n".encode()
    )
    items = list(CsvScheduleSource(path, default_zone="Europe/Paris").read(WINDOW))
    assert len(items) == 1
    assert isinstance(items[0], ScheduleEntry)
    assert (items[0].source_key, items[0].title) == ("K1", "Grüße")


def test_header_names_match_case_insensitively(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text(" Key ,OWNER,Start,End,Title,Project\nK1,E1,2026-12-01T09:00,2026-12-01T10:00,x,P\n")
    (item,) = CsvScheduleSource(path, default_zone="Europe/Paris").read(WINDOW)
    assert isinstance(item, ScheduleEntry)
    assert (item.source_key, item.owner, item.extra) == ("K1", "E1", {"Project": "P"})


@pytest.mark.parametrize("status", ["cancelled", "Canceled", "CANCELLED", " cancelled "])
def test_cancelled_rows_yield_nothing(tmp_path: Path, status: str) -> None:
    rows = [
        {
            "key": "K1",
            "owner": "E1",
            "start": "2026-12-01T09:00",
            "end": "2026-12-01T10:00",
            "status": status,
        },
        # Cancelled rows vanish even when the rest of the row is broken.
        {"key": "K2", "owner": "E1", "start": "garbage", "status": status},
        {
            "key": "K3",
            "owner": "E1",
            "start": "2026-12-01T09:00",
            "end": "2026-12-01T10:00",
            "status": "tentative",
        },
    ]
    items = read_csv(tmp_path, rows)
    assert [item.source_key for item in items] == ["K3"]
    assert isinstance(items[0], ScheduleEntry)


def test_invalid_rows_are_rejected_with_their_physical_line(tmp_path: Path) -> None:
    path = tmp_path / "schedule.csv"
    path.write_text(
        "key,owner,start,end,all_day,timezone,title,body,show_as,sensitivity,reminder_minutes,status\n"
        'K1,E1,2026-12-01T09:00,2026-12-01T10:00,,,ok,"line 1\nline 2\nline 3",,,,\n'  # lines 2-4
        "K2,E2,2026-12-01T09:00,2026-12-01T10:00,,Europe/Pariss,bad zone,,,,,\n"  # line 5
        "\n"  # line 6: blank lines are skipped but still counted
        "K3,E3,2026-12-01T09:00,2026-12-01T10:00,,,bad enum,,busyy,,,\n"  # line 7
        'K4,E4,2026-12-01T09:00,2026-12-01T10:00,,,"multi\nline title",,,secret,,\n'  # lines 8-9
        "K5,E5,2026-12-01T09:00,2026-12-01T10:00,,,bad reminder,,,,-5,\n"  # line 10
        "K6,E6,2026-13-45,2026-12-01T10:00,,,bad date,,,,,\n"  # line 11
        ",E7,2026-12-01T09:00,2026-12-01T10:00,,,no key,,,,,\n"  # line 12
        "K8,,2026-12-01T09:00,2026-12-01T10:00,,,no owner,,,,,\n"  # line 13
        "K9,E9,,2026-12-01T10:00,,,no start,,,,,\n"  # line 14
        "K10,E10,2026-12-01T09:00,2026-12-01T10:00,,,bad status,,,,,done\n"  # line 15
        "K11,E11,2026-12-01T09:00,2026-12-01T10:00,,,too,many,,,,,,\n"  # line 16
        ",,,,,,,,,,,\n"  # line 17: a spreadsheet's empty row
        "K12,E12,2026-12-01T09:00,2026-12-01T10:00,,,ok,,,,0,\n",  # line 18
        encoding="utf-8",
    )
    items = list(CsvScheduleSource(path, default_zone="Europe/Paris").read(WINDOW))
    got = {item.source_key: item for item in items}
    assert len(items) == 12
    good = got["K1"]
    assert isinstance(good, ScheduleEntry)
    assert (good.body, good.origin) == ("line 1\nline 2\nline 3", "schedule.csv:2")
    last = got["K12"]
    assert isinstance(last, ScheduleEntry)
    assert (last.origin, last.reminder_minutes) == ("schedule.csv:18", 0)
    expected = {
        "K2": (5, "unknown time zone 'Europe/Pariss' — use an IANA name such as Europe/Paris"),
        "K3": (7, "show_as 'busyy' is not valid — use one of free, tentative, busy, oof, workingElsewhere"),
        "K4": (8, "sensitivity 'secret' is not valid — use one of normal, personal, private, confidential"),
        "K5": (10, "reminder_minutes '-5' is not valid — use a whole number of minutes"),
        "K6": (11, "start '2026-13-45' is not a date/time"),
        "": (12, "key is missing"),
        "K8": (13, "owner is missing"),
        "K9": (14, "start is missing"),
        "K10": (15, "status 'done' is not valid — use confirmed, tentative or cancelled"),
        "K11": (16, "row has 14 values but the header names 12 columns"),
    }
    for key, (line, reason) in expected.items():
        item = got[key]
        assert isinstance(item, Rejected), item
        assert item.origin == f"schedule.csv:{line}", (key, item)
        assert item.reason.startswith(reason), (key, item.reason)
    no_key = got[""]
    assert no_key.owner == "E7"
    no_owner = got["K8"]
    assert (no_owner.source_key, no_owner.owner) == ("K8", "")


@pytest.mark.parametrize("value", ["fifteen", "1.5", "-1", "1e3"])
def test_bad_reminder_names_the_value(tmp_path: Path, value: str) -> None:
    item = rejected(tmp_path, start="2026-12-01T09:00", end="2026-12-01T10:00", reminder_minutes=value)
    assert f"reminder_minutes '{value}' is not valid" in item.reason


def test_parser_leaves_semantic_checks_to_the_core(tmp_path: Path) -> None:
    # End before start, oversized titles and unknown owners are the core's to quarantine.
    item = entry(tmp_path, owner="E9999", start="2026-12-01T10:00", end="2026-12-01T09:00", title="x" * 300)
    assert timed(item).end < timed(item).start
    assert len(item.title) == 300


# --- JSON --------------------------------------------------------------------------------------------

SAME_ROWS: list[dict[str, str]] = [
    {
        "key": "A",
        "owner": "E1001",
        "start": "2026-12-01T09:00",
        "end": "2026-12-01T17:00",
        "title": "Schicht",
    },
    {
        "key": "B",
        "owner": "asa.lindqvist@contoso.example",
        "start": "2027-03-29 09:00",
        "end": "2027-03-29 17:00",
        "timezone": "Europe/Berlin",
        "title": "会議 🎉",
        "body": "Zeile 1\nZeile 2",
        "show_as": "oof",
        "sensitivity": "personal",
        "reminder_minutes": "30",
    },
    {"key": "C", "owner": "E1002", "start": "2026-12-31", "end": "", "all_day": "true", "title": "Silvester"},
    {
        "key": "D",
        "owner": "E1002",
        "start": "2026-12-24",
        "end": "2026-12-26",
        "all_day": "yes",
        "title": "Frei",
    },
    {"key": "E", "owner": "E1003", "start": "2026-12-01T09:00Z", "end": "2026-12-01T10:00Z", "title": "UTC"},
    {"key": "F", "owner": "E1003", "start": "2027-03-28T02:30", "end": "2027-03-28T04:00", "title": "gap"},
    {
        "key": "G",
        "owner": "E1004",
        "start": "2026-12-01T09:00",
        "end": "2026-12-01T10:00",
        "status": "canceled",
    },
    {
        "key": "H",
        "owner": "E1004",
        "start": "2026-12-01T09:00",
        "end": "2026-12-01T10:00",
        "show_as": "maybe",
    },
]


def test_csv_and_json_give_the_same_entries(tmp_path: Path) -> None:
    csv_items = list(
        CsvScheduleSource(write_csv(tmp_path / "s.csv", SAME_ROWS), default_zone="Europe/Paris").read(WINDOW)
    )
    json_path = tmp_path / "s.json"
    json_path.write_text(json.dumps(SAME_ROWS, ensure_ascii=False), encoding="utf-8")
    json_items = list(JsonScheduleSource(json_path, default_zone="Europe/Paris").read(WINDOW))
    assert [item.origin for item in csv_items] == [
        f"s.csv:{n}" for n in (2, 3, 5, 6, 7, 8, 10)
    ]  # B spans 3-4
    assert [item.origin for item in json_items] == [f"s.json#{n}" for n in (0, 1, 2, 3, 4, 5, 7)]
    assert [replace(item, origin="") for item in csv_items] == [
        replace(item, origin="") for item in json_items
    ]
    assert [type(item).__name__ for item in json_items] == ["ScheduleEntry"] * 5 + ["Rejected"] * 2


def test_json_takes_real_types_and_the_entries_wrapper(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    rows = [
        {
            "key": "A",
            "owner": "E1",
            "start": "2026-12-01",
            "all_day": True,
            "reminder_minutes": 10,
            "title": None,
            "cost": 12.5,
        },
        {"key": "B", "owner": "E1", "start": "2026-12-01T09:00", "end": "2026-12-01T10:00", "all_day": False},
        {"key": "C", "owner": "E1", "start": "2026-12-01", "all_day": True, "reminder_minutes": True},
        {"key": "D", "owner": "E1", "start": "2026-12-01", "all_day": True, "tags": ["a"]},
        "not an object",
    ]
    path.write_text(json.dumps({"entries": rows}), encoding="utf-8")
    items = list(JsonScheduleSource(path, default_zone="Europe/Paris").read(WINDOW))
    first, second, third, fourth, fifth = items
    assert isinstance(first, ScheduleEntry)
    assert first.span == AllDaySpan(date(2026, 12, 1), date(2026, 12, 2))
    assert (first.reminder_minutes, first.title, dict(first.extra)) == (10, "", {"cost": "12.5"})
    assert isinstance(second, ScheduleEntry)
    assert not second.span.is_all_day
    assert isinstance(third, Rejected)
    assert third.reason.startswith("reminder_minutes 'true' is not valid")
    assert isinstance(fourth, Rejected)
    assert (fourth.source_key, fourth.origin) == ("D", "s.json#3")
    assert "column 'tags' holds a list" in fourth.reason
    assert isinstance(fifth, Rejected)
    assert (fifth.origin, fifth.source_key) == ("s.json#4", "")
    assert "not an object" in fifth.reason


# --- whole-file problems -----------------------------------------------------------------------------


def test_missing_file_raises_source_error(tmp_path: Path) -> None:
    source = CsvScheduleSource(tmp_path / "nope.csv", default_zone="Europe/Paris")
    with pytest.raises(SourceError, match=r"nope\.csv does not exist") as caught:
        list(source.read(WINDOW))
    assert caught.value.fix


def test_directory_instead_of_file_raises_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="cannot read"):
        list(JsonScheduleSource(tmp_path, default_zone="Europe/Paris").read(WINDOW))


def test_malformed_json_raises_source_error_with_position(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text('[{"key": "A",\n "owner": }]', encoding="utf-8")
    with pytest.raises(SourceError, match=r"not valid JSON: .* line 2"):
        list(JsonScheduleSource(path, default_zone="Europe/Paris").read(WINDOW))


@pytest.mark.parametrize("content", ['{"rows": []}', '"text"', '{"entries": {"key": "A"}}'])
def test_json_without_a_list_raises_source_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "s.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(SourceError, match="no list of rows"):
        list(JsonScheduleSource(path, default_zone="Europe/Paris").read(WINDOW))


def test_csv_without_required_columns_raises_source_error(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("id,owner,begin\n1,E1,2026-12-01\n", encoding="utf-8")
    with pytest.raises(SourceError, match="has no column"):
        list(CsvScheduleSource(path, default_zone="Europe/Paris").read(WINDOW))


def test_empty_and_duplicate_header_csv_raise_source_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(SourceError, match="is empty"):
        list(CsvScheduleSource(empty, default_zone="Europe/Paris").read(WINDOW))
    twice = tmp_path / "twice.csv"
    twice.write_text("key,owner,start,Title,title\n", encoding="utf-8")
    with pytest.raises(SourceError, match="title more than once"):
        list(CsvScheduleSource(twice, default_zone="Europe/Paris").read(WINDOW))


def test_unterminated_quote_raises_instead_of_swallowing_rows(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text(
        "key,owner,start,end,title\n"
        "K1,E1,2026-12-01T09:00,2026-12-01T10:00,ok\n"
        'K2,E1,2026-12-01T09:00,2026-12-01T10:00,"broken\n'
        "K3,E1,2026-12-01T09:00,2026-12-01T10:00,lost\n",
        encoding="utf-8",
    )
    with pytest.raises(SourceError, match="starting at line 3"):
        list(CsvScheduleSource(path, default_zone="Europe/Paris").read(WINDOW))


def test_non_utf8_csv_raises_source_error(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_bytes(
        "key,owner,start,end,title\nK1,E1,2026-12-01T09:00,2026-12-01T10:00,Grüße\n".encode("cp1252")
    )
    with pytest.raises(SourceError, match="not UTF-8") as caught:
        list(CsvScheduleSource(path, default_zone="Europe/Paris").read(WINDOW))
    assert "CSV UTF-8" in str(caught.value)


def test_unknown_default_zone_raises_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="Mars/Olympus"):
        CsvScheduleSource(tmp_path / "s.csv", default_zone="Mars/Olympus")


def test_factories_pick_by_suffix(tmp_path: Path) -> None:
    schedule: ScheduleSource = file_schedule_source(tmp_path / "a.CSV", "Europe/Paris")
    assert isinstance(schedule, CsvScheduleSource)
    assert schedule.describe() == f"CSV file {tmp_path / 'a.CSV'}"
    assert isinstance(file_schedule_source(tmp_path / "a.json", "Europe/Paris"), JsonScheduleSource)
    targets: TargetSource = file_target_source(tmp_path / "t.csv")
    assert isinstance(targets, CsvTargetSource)
    assert isinstance(file_target_source(tmp_path / "t.json"), JsonTargetSource)
    assert file_target_source(tmp_path / "t.json").describe() == f"JSON file {tmp_path / 't.json'}"


@pytest.mark.parametrize("name", ["schedule.xlsx", "schedule"])
def test_factories_reject_other_suffixes(tmp_path: Path, name: str) -> None:
    with pytest.raises(SourceError, match=r"\.csv or \.json") as caught:
        file_schedule_source(tmp_path / name, "Europe/Paris")
    assert ("'.xlsx'" if name.endswith(".xlsx") else "no suffix") in str(caught.value)
    with pytest.raises(SourceError, match="targets file"):
        file_target_source(tmp_path / name)


# --- targets -----------------------------------------------------------------------------------------


def test_targets_from_csv(tmp_path: Path) -> None:
    path = tmp_path / "targets.csv"
    path.write_text(
        "\ufeffaddress,owner_key,kind,enabled,display_name\n"
        "Asa.Lindqvist@Contoso.example,E1001,,,Åsa Lindqvist\n"  # 2
        "hanako.yamada@contoso.example,,user,no,山田 花子\n"  # 3
        "room.sued@contoso.example,R01,Room,true,Konferenzraum Süd\n"  # 4
        "beamer3@contoso.example,R03,equipment,1,Beamer 3\n"  # 5
        "not-an-address,E1005,user,,Nobody\n"  # 6
        "bad.kind@contoso.example,E1006,robot,,Robot\n"  # 7
        "asa.lindqvist@contoso.example,E1007,user,,Åsa again\n"  # 8: duplicate address
        "other@contoso.example,e1001,user,,Other\n"  # 9: duplicate owner key (case-insensitive)
        "third@contoso.example,hanako.yamada@contoso.example,user,,Third\n"  # 10: owner key = an address
        "enabled.bad@contoso.example,E1010,user,maybe,X\n"  # 11
        ",E1011,user,,No address\n",  # 12
        encoding="utf-8",
    )
    items = list(CsvTargetSource(path).read_targets())
    targets = [item for item in items if isinstance(item, Target)]
    assert targets == [
        Target("asa.lindqvist@contoso.example", "E1001", TargetKind.USER, True, "Åsa Lindqvist"),
        Target(
            "hanako.yamada@contoso.example",
            "hanako.yamada@contoso.example",
            TargetKind.USER,
            False,
            "山田 花子",
        ),
        Target("room.sued@contoso.example", "R01", TargetKind.ROOM, True, "Konferenzraum Süd"),
        Target("beamer3@contoso.example", "R03", TargetKind.EQUIPMENT, True, "Beamer 3"),
    ]
    rejected_items = {item.origin: item for item in items if isinstance(item, Rejected)}
    expected = {
        "targets.csv:6": ("not-an-address", "address 'not-an-address' does not look like an e-mail address"),
        "targets.csv:7": (
            "bad.kind@contoso.example",
            "kind 'robot' is not valid — use one of user, room, equipment",
        ),
        "targets.csv:8": (
            "asa.lindqvist@contoso.example",
            "address 'asa.lindqvist@contoso.example' is already used at targets.csv:2",
        ),
        "targets.csv:9": ("other@contoso.example", "owner_key 'e1001' is already used at targets.csv:2"),
        "targets.csv:10": (
            "third@contoso.example",
            "owner_key 'hanako.yamada@contoso.example' is already used at targets.csv:3",
        ),
        "targets.csv:11": ("enabled.bad@contoso.example", "enabled 'maybe' is not valid"),
        "targets.csv:12": ("", "address is missing"),
    }
    assert set(rejected_items) == set(expected)
    for origin, (owner, reason) in expected.items():
        item = rejected_items[origin]
        assert (item.source_key, item.owner) == ("", owner)
        assert item.reason.startswith(reason), item.reason


def test_targets_from_json_match_csv(tmp_path: Path) -> None:
    rows = [
        {
            "address": "a@contoso.example",
            "owner_key": "E1",
            "kind": "user",
            "enabled": True,
            "display_name": "Å",
        },
        {"address": "b@contoso.example", "kind": "room", "enabled": False},
        {"address": "a@contoso.example", "owner_key": "E2"},
    ]
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"targets": rows}), encoding="utf-8")
    items = list(JsonTargetSource(path).read_targets())
    assert items[:2] == [
        Target("a@contoso.example", "E1", TargetKind.USER, True, "Å"),
        Target("b@contoso.example", "b@contoso.example", TargetKind.ROOM, False, ""),
    ]
    third = items[2]
    assert isinstance(third, Rejected)
    assert third.origin == "t.json#2"
    assert "already used at t.json#0" in third.reason


def test_targets_csv_needs_an_address_column(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("mail,owner_key\nx@contoso.example,E1\n", encoding="utf-8")
    with pytest.raises(SourceError, match="has no column"):
        list(CsvTargetSource(path).read_targets())
