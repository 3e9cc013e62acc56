from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, available_timezones

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.directory import Directory
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
from connector.prepare import TextLimits, prepare
from connector.render import REPLACEMENT, RenderRules, render, span_key, template_fields
from connector.window import Window

BERLIN = ZoneInfo("Europe/Berlin")
PARIS = ZoneInfo("Europe/Paris")
RULES = RenderRules(host_app="Planning")
ALEX = Target("alex@contoso.example", "E1", TargetKind.USER, True, "Alex Åström")
ROOM = Target("room@contoso.example", "R1", TargetKind.ROOM, True, "Konferenzraum Süd")


def timed(day: date, start: int, end: int, zone: str = "Europe/Berlin") -> TimedSpan:
    tz = ZoneInfo(zone)
    return TimedSpan(datetime.combine(day, time(start), tz), datetime.combine(day, time(end), tz), zone)


def entry(key: str = "K1", owner: str = "E1", **kwargs: object) -> ScheduleEntry:
    values: dict[str, object] = {"span": timed(date(2027, 3, 29), 9, 17), "title": "Schicht"}
    values.update(kwargs)
    return ScheduleEntry(source_key=key, owner=owner, **values)  # type: ignore[arg-type]


# -- render ------------------------------------------------------------------------------------------


def test_dst_monday_and_new_years_eve_keep_wall_clock_and_dates_through_render() -> None:
    spec = render(entry(), ALEX, RULES)
    assert isinstance(spec.span, TimedSpan)
    assert (spec.span.start.hour, spec.span.end.hour, spec.span.timezone) == (9, 17, "Europe/Berlin")
    assert spec.span.start.utcoffset() == timedelta(hours=2)
    nye = render(entry(span=AllDaySpan(date(2026, 12, 31), date(2027, 1, 1))), ALEX, RULES)
    assert nye.span == AllDaySpan(date(2026, 12, 31), date(2027, 1, 1))
    assert span_key(nye.span) == ["all-day", "2026-12-31", "2027-01-01"]


def test_templates_notice_categories_and_defaults() -> None:
    rules = RenderRules(
        host_app="Planning",
        title_template="{title} – {project}",
        body_template="{body}\nProjekt: {project} ({display_name})",
        location_template="{location}",
        categories=("Schichten", "planning"),
    )
    spec = render(
        entry(body="Bitte pünktlich", location="Halle 3", category="Früh", extra={"project": "Ω-7"}),
        ALEX,
        rules,
    )
    assert spec.subject == "Schicht – Ω-7"
    assert spec.body.startswith("Bitte pünktlich\nProjekt: Ω-7 (Alex Åström)")
    assert "managed by Planning" in spec.body and "overwritten" in spec.body
    assert spec.categories == ("Planning", "Früh", "Schichten")  # host app first, no case duplicates
    assert spec.show_as is ShowAs.BUSY and spec.sensitivity is Sensitivity.NORMAL
    assert spec.reminder_minutes is None
    # A row without the extra column renders it empty instead of failing.
    assert render(entry(), ALEX, rules).subject == "Schicht –"


def test_entry_values_win_over_defaults_and_rooms_are_always_busy() -> None:
    rules = RenderRules(host_app="Planning", default_show_as=ShowAs.FREE, default_reminder_minutes=15)
    spec = render(entry(show_as=ShowAs.OOF, sensitivity=Sensitivity.PRIVATE, reminder_minutes=0), ALEX, rules)
    assert (spec.show_as, spec.sensitivity, spec.reminder_minutes) == (ShowAs.OOF, Sensitivity.PRIVATE, 0)
    assert render(entry(), ALEX, rules).show_as is ShowAs.FREE
    assert render(entry(), ALEX, rules).reminder_minutes == 15
    assert render(entry(), ROOM, rules).show_as is ShowAs.BUSY


def test_control_characters_are_replaced_not_fatal() -> None:
    spec = render(entry(title="Früh\x00schicht\x1b", body="Zeile 1\r\nZeile\t2\x0b"), ALEX, RULES)
    assert spec.subject == f"Früh{REPLACEMENT}schicht{REPLACEMENT}"
    assert spec.body.startswith(f"Zeile 1\r\nZeile\t2{REPLACEMENT}")


def test_the_content_hash_covers_every_rendered_field() -> None:
    base = render(entry(), ALEX, RULES)
    variants = [
        entry(title="Other"),
        entry(body="x"),
        entry(location="y"),
        entry(category="z"),
        entry(show_as=ShowAs.FREE),
        entry(sensitivity=Sensitivity.PRIVATE),
        entry(reminder_minutes=5),
        entry(span=timed(date(2027, 3, 29), 9, 18)),
        entry(span=timed(date(2027, 3, 29), 9, 17, "Europe/Paris")),  # same instants, other zone
    ]
    hashes = {render(v, ALEX, RULES).content_hash for v in variants}
    assert len(hashes) == len(variants) and base.content_hash not in hashes
    assert render(entry(), ALEX, RULES).content_hash == base.content_hash


@pytest.mark.parametrize("template", ["{title.upper}", "{0}", "{title!r}", "{title:>10}", "{title"])
def test_only_plain_template_fields_are_allowed(template: str) -> None:
    with pytest.raises(ValueError, match=r"\S"):
        template_fields(template)


# -- window ------------------------------------------------------------------------------------------


def test_window_is_whole_days_in_the_configured_zone_across_dst() -> None:
    window = Window.around(date(2027, 3, 27), PARIS, days_before=1, days_after=2)
    assert window.start == datetime(2027, 3, 25, 23, tzinfo=UTC)  # 26 March 00:00 CET
    assert window.end == datetime(2027, 3, 28, 22, tzinfo=UTC)  # 29 March 00:00 CEST (23-hour day inside)


def test_overlap_edges() -> None:
    window = Window.around(date(2027, 3, 1), PARIS, days_before=0, days_after=1)
    start, end = window.start, window.end
    hour = timedelta(hours=1)
    assert not window.overlaps_utc(start - hour, start)  # ends exactly at the start
    assert not window.overlaps_utc(end, end + hour)  # starts exactly at the end
    assert window.overlaps_utc(start - hour, end + hour)  # spans the window
    assert window.overlaps_utc(start, start)  # zero length at the start instant
    assert not window.overlaps_utc(end, end)
    assert window.contains(AllDaySpan(date(2027, 3, 1), date(2027, 3, 2)))
    assert not window.contains(AllDaySpan(date(2027, 2, 28), date(2027, 3, 1)))


def test_negative_days_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        Window.around(date(2027, 3, 1), PARIS, days_before=-1, days_after=3)


ZONES = sorted(z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/")))


@settings(max_examples=300, deadline=None)
@given(
    st.dates(date(2000, 1, 1), date(2037, 12, 31)),
    st.integers(0, 30),
    st.integers(1, 60),
    st.sampled_from(ZONES),
    st.integers(-10, 70),
    st.integers(0, 48 * 60),
)
def test_window_membership_matches_a_plain_overlap_rule(today, before, after, zone, offset, minutes) -> None:
    tz = ZoneInfo(zone)
    window = Window.around(today, tz, days_before=before, days_after=after)
    start = datetime.combine(today + timedelta(days=offset), time(12), tz).astimezone(UTC)
    end = start + timedelta(minutes=minutes)
    first = datetime.combine(today - timedelta(days=before), time(), tz)
    last = datetime.combine(today + timedelta(days=after), time(), tz)
    expected = (first <= start < last) if minutes == 0 else (start < last and end > first)
    assert window.overlaps_utc(start, end) == expected


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(ZONES), st.datetimes(datetime(2000, 1, 1), datetime(2037, 12, 31)), st.integers(0, 600)
)
def test_render_keeps_wall_clock_and_zone_for_any_zone(zone, naive, minutes) -> None:
    tz = ZoneInfo(zone)
    start = naive.replace(tzinfo=tz)
    span = TimedSpan(start, start + timedelta(minutes=minutes), zone)
    spec = render(entry(span=span), ALEX, RULES)
    assert isinstance(spec.span, TimedSpan)
    assert spec.span.start.replace(tzinfo=None) == naive
    assert span_key(spec.span)[1] == naive.isoformat()
    assert span_key(spec.span)[3] == zone


# -- prepare and directory ------------------------------------------------------------------------------


def directory() -> Directory:
    targets = [ALEX, ROOM, Target("off@contoso.example", "E9", TargetKind.USER, False)]
    built, rejected = Directory.build(targets)
    assert rejected == []
    return built


def test_prepare_quarantines_each_bad_entry_with_a_reason_and_keeps_the_rest() -> None:
    items: list[ScheduleEntry | Rejected] = [
        entry("OK1"),
        entry("OK2", owner="ROOM@contoso.example"),  # by address, any case
        Rejected("BAD-PARSE", "E1", "start '2026-13-45' is not a date/time", "s.csv:4"),
        entry("OK1", origin="s.csv:5"),
        entry(
            "BAD-END",
            span=TimedSpan(
                datetime(2027, 1, 1, 10, tzinfo=BERLIN),
                datetime(2027, 1, 1, 9, tzinfo=BERLIN),
                "Europe/Berlin",
            ),
        ),
        entry("BAD-DAYS", span=AllDaySpan(date(2027, 1, 2), date(2027, 1, 2))),
        entry("BAD-OWNER", owner="E404"),
        entry("BAD-LONG", title="x" * 256),
        entry("BAD-LOC", location="y" * 256),
        entry("OFF", owner="E9"),
    ]
    prepared = prepare(items, directory(), RULES, TextLimits())
    assert set(prepared.specs[ALEX.address]) == {"OK1"}
    assert set(prepared.specs[ROOM.address]) == {"OK2"}
    reasons = {q.source_key: q.reason for q in prepared.quarantined}
    assert set(reasons) == {"BAD-PARSE", "OK1", "BAD-END", "BAD-DAYS", "BAD-OWNER", "BAD-LONG", "BAD-LOC"}
    assert "more than once" in reasons["OK1"]
    assert "Exchange accepts at most 255" in reasons["BAD-LONG"] and "title" in reasons["BAD-LONG"]
    assert "location" in reasons["BAD-LOC"]
    assert "E404" in reasons["BAD-OWNER"]
    assert prepared.disabled_skipped == 1 and prepared.source_items == 10
    assert "BAD-END" in prepared.protected and "OFF" not in prepared.protected
    assert prepared.quarantined_for(ALEX.address) == 6  # BAD-OWNER belongs to no mailbox


def test_directory_rejects_duplicates_and_non_addresses_and_can_take_owners_as_addresses() -> None:
    built, rejected = Directory.build(
        [
            ALEX,
            Target("ALEX@contoso.example", "E2"),
            Target("x@y.example", "e1"),
            Target("not-an-address", "E3"),
        ]
    )
    assert [t.address for t in built.targets] == [ALEX.address]
    assert len(rejected) == 3 and all("fix the targets list" in r.reason for r in rejected)
    assert built.resolve("e1") == built.resolve("Alex@Contoso.example") == built.targets[0]
    assert built.resolve("someone@contoso.example") is None
    open_directory = Directory((), owners_are_addresses=True)
    found = open_directory.resolve("Someone@Contoso.example")
    assert found is not None and found.address == "someone@contoso.example"
    assert open_directory.resolve("E1") is None
