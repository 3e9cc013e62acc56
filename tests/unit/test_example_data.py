"""The committed example data: it parses, holds what examples/README.md promises, and is reproducible."""

from __future__ import annotations

import csv
import subprocess
import sys
from collections import Counter
from datetime import UTC, date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from adapters.source.files import CsvScheduleSource, CsvTargetSource
from connector.models import AllDaySpan, Rejected, ScheduleEntry, Target, TargetKind, TimedSpan
from connector.window import Window

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SCHEDULE = EXAMPLES / "schedule.csv"
TARGETS = EXAMPLES / "targets.csv"
WINDOW = Window.around(date(2026, 11, 16), ZoneInfo("Europe/Paris"), days_before=0, days_after=182)

# Title fragment of each deliberately invalid row → whether the parser itself rejects it (the others
# are well-formed rows that only the core's validation quarantines).
INVALID = {
    "end before start": False,
    "unknown time zone 'Europe/Pariss'": True,
    "unknown owner 'E9999'": False,
    "title of 300 characters": False,
    "unparseable date '2026-13-45'": True,
    "(DST gap)": True,
    "duplicate key": False,
}


@pytest.fixture(scope="module")
def raw_rows() -> list[dict[str, str]]:
    with SCHEDULE.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def items() -> list[ScheduleEntry | Rejected]:
    return list(CsvScheduleSource(SCHEDULE, default_zone="Europe/Paris").read(WINDOW))


@pytest.fixture(scope="module")
def entries(items: list[ScheduleEntry | Rejected]) -> list[ScheduleEntry]:
    return [item for item in items if isinstance(item, ScheduleEntry)]


@pytest.fixture(scope="module")
def targets() -> list[Target]:
    parsed = list(CsvTargetSource(TARGETS).read_targets())
    assert all(isinstance(item, Target) for item in parsed), parsed
    return [item for item in parsed if isinstance(item, Target)]


def invalid_row(raw_rows: list[dict[str, str]], fragment: str) -> dict[str, str]:
    (row,) = [row for row in raw_rows if row["title"].startswith("INVALID:") and fragment in row["title"]]
    return row


def test_targets(targets: list[Target]) -> None:
    assert len(targets) == 23
    kinds = Counter(target.kind for target in targets)
    assert kinds == {TargetKind.USER: 20, TargetKind.ROOM: 2, TargetKind.EQUIPMENT: 1}
    assert sorted(t.owner_key for t in targets if not t.enabled) == ["E1018", "E1020"]
    assert all(t.address.endswith("@contoso.example") and t.address.isascii() for t in targets)
    names = {t.display_name for t in targets}
    assert {"山田 花子", "Konferenzraum Süd", "会議室 A", "Beamer 3"} <= names
    assert any(ch in "".join(names) for ch in "åäößł")


def test_about_500_entries_with_stable_unique_looking_keys(
    raw_rows: list[dict[str, str]], entries: list[ScheduleEntry]
) -> None:
    assert 480 <= len(entries) <= 520
    assert all(
        row["key"].split("-")[-1].isdigit() and len(row["key"].split("-")[-1]) == 6 for row in raw_rows
    )


def test_exactly_the_invalid_rows_the_parser_can_see_are_rejected(
    raw_rows: list[dict[str, str]], items: list[ScheduleEntry | Rejected]
) -> None:
    assert len([row for row in raw_rows if row["title"].startswith("INVALID:")]) == len(INVALID)
    expected = {
        invalid_row(raw_rows, fragment)["key"] for fragment, by_parser in INVALID.items() if by_parser
    }
    rejected = [item for item in items if isinstance(item, Rejected)]
    assert {item.source_key for item in rejected} == expected
    assert len(rejected) == len(expected)
    lines = SCHEDULE.read_text(encoding="utf-8").splitlines()
    for item in rejected:
        name, line = item.origin.split(":")
        assert name == "schedule.csv"
        assert lines[int(line) - 1].startswith(f"{item.source_key},"), item


def test_invalid_rows_left_to_the_core_are_still_entries(
    raw_rows: list[dict[str, str]], entries: list[ScheduleEntry], targets: list[Target]
) -> None:
    by_title = {entry.title: entry for entry in entries}
    backwards = by_title[invalid_row(raw_rows, "end before start")["title"]]
    assert isinstance(backwards.span, TimedSpan)
    assert backwards.span.end < backwards.span.start
    stranger = by_title[invalid_row(raw_rows, "unknown owner")["title"]]
    assert stranger.owner == "E9999"
    assert stranger.owner not in {t.owner_key for t in targets}
    assert len(by_title[invalid_row(raw_rows, "title of 300 characters")["title"]].title) == 300
    duplicate = invalid_row(raw_rows, "duplicate key")
    same_key = [entry for entry in entries if entry.source_key == duplicate["key"]]
    assert len(same_key) == 2
    assert same_key[0].title != duplicate["title"]  # the valid row comes first


def test_owners_resolve_by_key_or_address(entries: list[ScheduleEntry], targets: list[Target]) -> None:
    known = {t.owner_key.casefold() for t in targets} | {t.address for t in targets}
    unknown = {entry.owner for entry in entries if entry.owner.casefold() not in known}
    assert unknown == {"E9999"}
    by_address = [entry for entry in entries if "@" in entry.owner]
    assert 5 <= len(by_address) <= 20


def test_cancelled_rows_are_absent(
    raw_rows: list[dict[str, str]], items: list[ScheduleEntry | Rejected]
) -> None:
    cancelled = {row["key"] for row in raw_rows if row["status"].lower() in {"cancelled", "canceled"}}
    assert len(cancelled) == 3
    assert not cancelled & {item.source_key for item in items}
    assert len(items) == len(raw_rows) - 3


def test_calendar_edge_cases_are_covered(entries: list[ScheduleEntry]) -> None:
    all_day = [entry.span for entry in entries if isinstance(entry.span, AllDaySpan)]
    assert AllDaySpan(date(2026, 12, 31), date(2027, 1, 1)) in all_day
    assert any(timedelta(days=3) <= span.end - span.start <= timedelta(days=5) for span in all_day)
    timed = [entry.span for entry in entries if isinstance(entry.span, TimedSpan)]
    zones = Counter(span.timezone for span in timed)
    assert zones["America/New_York"] >= 2
    assert zones["Asia/Tokyo"] >= 1
    assert zones["Europe/Paris"] > 400
    # Trade fair: 09:00 on day 1 to 17:00 on day 3.
    assert any(
        (span.start.hour, span.end.hour, (span.end.date() - span.start.date()).days) == (9, 17, 2)
        for span in timed
    )
    # Night shift across the EU change: 22:00 → 06:00 is 7 real hours.
    night = [s for s in timed if s.start.date() == date(2027, 3, 27) and s.end.date() == date(2027, 3, 28)]
    assert night
    # Subtracting datetimes of one zone is wall-clock arithmetic in Python; compare in UTC.
    assert all(s.end.astimezone(UTC) - s.start.astimezone(UTC) == timedelta(hours=7) for s in night)
    monday = [
        s for s in timed if s.start.date() == date(2027, 3, 29) and (s.start.hour, s.end.hour) == (9, 17)
    ]
    assert monday
    assert monday[0].start.utcoffset() == timedelta(hours=2)
    # Across the US change on 2027-03-14.
    assert any(
        s.timezone == "America/New_York"
        and s.start.date() == date(2027, 3, 13)
        and s.end.date() == date(2027, 3, 14)
        for s in timed
    )


def test_text_and_optional_fields_are_exercised(entries: list[ScheduleEntry]) -> None:
    text = " ".join(f"{e.title} {e.body} {e.location}" for e in entries)
    for sample in ("å", "ä", "ö", "ß", "ł", "会議室", "東京", "🌙", "📄"):
        assert sample in text, sample
    assert any("\n" in entry.body for entry in entries)
    assert sum(entry.show_as is not None for entry in entries) > 50
    assert sum(entry.sensitivity is not None for entry in entries) > 50
    assert sum(entry.reminder_minutes is not None for entry in entries) > 50
    assert all(set(entry.extra) == {"project"} for entry in entries)
    assert sum(bool(entry.extra["project"]) for entry in entries) > 50


def test_regenerating_gives_the_committed_files(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "generate.py"),
            "--start",
            "2026-11-16",
            "--weeks",
            "26",
            "--out",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
    )
    for name in ("targets.csv", "schedule.csv"):
        assert (tmp_path / name).read_bytes() == (EXAMPLES / name).read_bytes(), name
