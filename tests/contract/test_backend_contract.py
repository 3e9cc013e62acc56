"""The ``CalendarBackend`` contract (``connector/backend.py``), checked against the server's own view.

Every test runs once per harness (``conftest.py``). Assertions read back what the *server* holds via
``harness.all_events`` rather than trusting what the backend reports, because the failures that matter
(a zone turned into an offset, a reminder switched on, an emoji mangled) happen on the way in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta

import pytest

from connector.backend import OpOutcome
from connector.errors import BadDataError, EventNotFoundError, MailboxNotFoundError
from connector.models import (
    AllDaySpan,
    EventSpec,
    Op,
    RemoteEvent,
    Sensitivity,
    ShowAs,
    Span,
    Target,
    TimedSpan,
)
from connector.window import Window

from .harness import BackendHarness, HarnessEvent
from .specs import all_day, create, delete, spec, timed, update

TEXT = "Schicht å ä ö ß ł 日本 😀\nzweite Zeile: Übergabe um 17:00"

# Wide enough for every event the tests create, so "not listed" means "filtered", not "out of range".
EVER = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))


# -- helpers -----------------------------------------------------------------------------------------


def apply(harness: BackendHarness, target: Target, ops: Sequence[Op]) -> list[OpOutcome]:
    """Apply in chunks of the backend's ``max_batch``, checking one outcome per op in input order."""
    outcomes: list[OpOutcome] = []
    size = harness.backend.max_batch
    for first in range(0, len(ops), size):
        chunk = ops[first : first + size]
        got = harness.backend.apply(target, chunk)
        assert [o.op for o in got] == list(chunk), "outcomes must be one per op, in input order"
        outcomes.extend(got)
    return outcomes


def apply_ok(harness: BackendHarness, target: Target, ops: Sequence[Op]) -> list[OpOutcome]:
    outcomes = apply(harness, target, ops)
    failed = [(o.op, o.error) for o in outcomes if not o.ok]
    assert not failed, f"ops failed: {failed}"
    return outcomes


def rid(outcome: OpOutcome) -> str:
    assert outcome.remote_id, f"no remote id in {outcome}"
    return outcome.remote_id


def create_one(harness: BackendHarness, target: Target, event: EventSpec) -> OpOutcome:
    (outcome,) = apply_ok(harness, target, [create(event)])
    assert outcome.remote_id
    assert outcome.change_key
    return outcome


def gone_id(harness: BackendHarness, target: Target) -> str:
    """A well-formed id of an event that no longer exists (a made-up id may be rejected as malformed)."""
    remote_id = rid(create_one(harness, target, spec(target, "doomed")))
    apply_ok(harness, target, [delete(target, "doomed", remote_id)])
    return remote_id


def stored(harness: BackendHarness, target: Target) -> dict[str, HarnessEvent]:
    return {e.id: e for e in harness.all_events(target)}


def listed(harness: BackendHarness, target: Target, start: datetime, end: datetime) -> dict[str, RemoteEvent]:
    found = harness.backend.list_tagged(target, start, end)
    by_id = {e.remote_id: e for e in found}
    assert len(by_id) == len(found), "list_tagged returned an event twice"
    return by_id


def assert_holds(event: HarnessEvent, wanted: EventSpec) -> None:
    assert event.tag == wanted.source_key
    assert event.subject == wanted.subject
    assert event.body == wanted.body
    assert event.location == wanted.location
    assert event.categories == wanted.categories
    assert event.show_as is wanted.show_as
    assert event.sensitivity is wanted.sensitivity
    assert event.reminder_minutes == wanted.reminder_minutes
    assert not event.has_attendees
    assert_same_span(event.span, wanted.span)


def assert_same_span(actual: Span, wanted: Span) -> None:
    """Equal as the person sees it: the same wall clock in the same named zone, or the same dates."""
    if isinstance(wanted, AllDaySpan):
        assert isinstance(actual, AllDaySpan), f"all-day event stored as {actual!r}"
        assert (actual.start, actual.end) == (wanted.start, wanted.end)
        return
    assert isinstance(actual, TimedSpan), f"timed event stored as {actual!r}"
    assert actual.timezone == wanted.timezone
    for got, want in ((actual.start, wanted.start), (actual.end, wanted.end)):
        assert got.replace(tzinfo=None) == want.replace(tzinfo=None), "wall clock changed"
        assert got.utcoffset() == want.utcoffset()
        assert got == want


def assert_utc(remote: RemoteEvent, span: Span, harness: BackendHarness) -> None:
    start, end = span.utc_bounds(harness.zone)
    assert (remote.start_utc, remote.end_utc) == (start, end)
    assert remote.start_utc.utcoffset() == timedelta(0)
    assert remote.end_utc.utcoffset() == timedelta(0)


# -- probe and empty calls ---------------------------------------------------------------------------


def test_probe_accepts_a_known_mailbox(harness: BackendHarness) -> None:
    harness.backend.probe(harness.target("anna@contoso.example"))


def test_an_empty_batch_returns_no_outcomes_and_writes_nothing(harness: BackendHarness) -> None:
    target = harness.target("anna@contoso.example")
    assert harness.backend.apply(target, []) == []
    assert harness.all_events(target) == []


def test_a_fresh_mailbox_lists_nothing(harness: BackendHarness) -> None:
    target = harness.target("anna@contoso.example")
    assert harness.backend.list_tagged(target, *EVER) == []
    assert harness.backend.find_tagged(target, ["a", "b"]) == []


def test_max_batch_is_a_sensible_positive_number(harness: BackendHarness) -> None:
    assert 1 <= harness.backend.max_batch <= 100
    assert harness.backend.name


# -- create: every field arrives exactly ------------------------------------------------------------


def test_create_returns_id_and_change_key_and_the_server_holds_every_field(harness: BackendHarness) -> None:
    target = harness.target("anna@contoso.example")
    rich = spec(
        target,
        "shift-1",
        subject="Frühdienst å ä ö ß ł 日本 😀",
        body=TEXT,
        location="Station 3 — Zimmer ß/ł 日本 😀",
        categories=("Schedule", "Frühdienst 日本"),
        show_as=ShowAs.OOF,
        sensitivity=Sensitivity.PRIVATE,
        reminder_minutes=15,
    )
    plain = spec(target, "shift-2", show_as=ShowAs.FREE, reminder_minutes=None)

    outcomes = apply_ok(harness, target, [create(rich), create(plain)])

    ids = [o.remote_id for o in outcomes]
    assert all(isinstance(i, str) and i for i in ids)
    assert all(isinstance(o.change_key, str) and o.change_key for o in outcomes)
    assert len(set(ids)) == 2
    events = stored(harness, target)
    assert set(events) == set(ids)
    for outcome, wanted in zip(outcomes, (rich, plain), strict=True):
        assert_holds(events[rid(outcome)], wanted)


def test_reminder_none_means_off_and_a_number_is_kept(harness: BackendHarness) -> None:
    target = harness.target("anna@contoso.example")
    off, on = spec(target, "off", reminder_minutes=None), spec(target, "on", reminder_minutes=15)
    outcomes = apply_ok(harness, target, [create(off), create(on)])
    events = stored(harness, target)
    assert events[rid(outcomes[0])].reminder_minutes is None
    assert events[rid(outcomes[1])].reminder_minutes == 15


def test_every_show_as_and_sensitivity_value_is_kept(harness: BackendHarness) -> None:
    target = harness.target("anna@contoso.example")
    specs = [spec(target, f"show-{v.value}", show_as=v) for v in ShowAs]
    specs += [spec(target, f"sens-{v.value}", sensitivity=v) for v in Sensitivity]
    outcomes = apply_ok(harness, target, [create(s) for s in specs])
    events = stored(harness, target)
    for outcome, wanted in zip(outcomes, specs, strict=True):
        assert_holds(events[rid(outcome)], wanted)


def test_created_events_are_listed_with_our_tag_hash_subject_and_change_key(harness: BackendHarness) -> None:
    target = harness.target("anna@contoso.example")
    wanted = spec(target, "shift-1", subject="Spätdienst 😀")
    outcome = create_one(harness, target, wanted)

    (remote,) = harness.backend.list_tagged(target, *EVER)

    assert remote.remote_id == outcome.remote_id
    assert remote.change_key == outcome.change_key
    assert remote.source_key == "shift-1"
    assert remote.content_hash == wanted.content_hash
    assert remote.subject == "Spätdienst 😀"
    assert_utc(remote, wanted.span, harness)


def test_a_full_batch_is_accepted(harness: BackendHarness) -> None:
    target = harness.target("anna@contoso.example")
    ops = [create(spec(target, f"k{i}")) for i in range(harness.backend.max_batch)]
    outcomes = harness.backend.apply(target, ops)
    assert [o.op for o in outcomes] == ops
    assert all(o.ok for o in outcomes)
    assert len({o.remote_id for o in outcomes}) == len(ops)
    assert len(harness.all_events(target)) == len(ops)


# -- time -------------------------------------------------------------------------------------------


def test_timed_event_after_the_spring_change_keeps_wall_clock_and_zone(harness: BackendHarness) -> None:
    target = harness.target("anna@contoso.example")
    # Monday 2027-03-29, the day after Europe/Berlin moves to CEST (+02:00).
    wanted = spec(target, "monday", span=timed("2027-03-29T09:00", "2027-03-29T17:00", "Europe/Berlin"))
    outcome = create_one(harness, target, wanted)

    event = stored(harness, target)[rid(outcome)]
    assert_same_span(event.span, wanted.span)
    assert isinstance(event.span, TimedSpan)
    assert event.span.start.utcoffset() == timedelta(hours=2)
    (remote,) = harness.backend.list_tagged(target, *EVER)
    assert remote.start_utc == datetime(2027, 3, 29, 7, 0, tzinfo=UTC)
    assert remote.end_utc == datetime(2027, 3, 29, 15, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("zone", "start", "end", "utc_start", "utc_end"),
    [
        # Across the spring change itself: three wall-clock hours, two real ones.
        ("Europe/Berlin", "2027-03-28T01:00", "2027-03-28T04:00", "2027-03-28T00:00", "2027-03-28T02:00"),
        # Across the autumn change: two wall-clock hours, three real ones.
        ("Europe/Berlin", "2026-10-25T01:00", "2026-10-25T03:00", "2026-10-24T23:00", "2026-10-25T02:00"),
        # A zone other than the backend's own must be kept, not converted.
        ("America/New_York", "2027-03-15T09:00", "2027-03-15T17:30", "2027-03-15T13:00", "2027-03-15T21:30"),
        ("Asia/Tokyo", "2027-01-04T08:00", "2027-01-04T12:00", "2027-01-03T23:00", "2027-01-04T03:00"),
    ],
)
def test_timed_events_keep_their_zone_across_changes_and_zones(
    harness: BackendHarness, zone: str, start: str, end: str, utc_start: str, utc_end: str
) -> None:
    target = harness.target("anna@contoso.example")
    wanted = spec(target, "k", span=timed(start, end, zone))
    outcome = create_one(harness, target, wanted)

    assert_same_span(stored(harness, target)[rid(outcome)].span, wanted.span)
    (remote,) = harness.backend.list_tagged(target, *EVER)
    assert remote.start_utc == datetime.fromisoformat(utc_start).replace(tzinfo=UTC)
    assert remote.end_utc == datetime.fromisoformat(utc_end).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("first", "end_exclusive"),
    [
        ("2026-12-31", "2027-01-01"),  # New Year's Eve: the exclusive end is in the next year
        ("2027-03-27", "2027-03-30"),  # several days across the spring change
        ("2028-02-29", "2028-03-01"),  # a leap day
    ],
)
def test_all_day_event_keeps_its_dates(harness: BackendHarness, first: str, end_exclusive: str) -> None:
    target = harness.target("anna@contoso.example")
    wanted = spec(target, "holiday", span=all_day(first, end_exclusive))
    outcome = create_one(harness, target, wanted)

    event = stored(harness, target)[rid(outcome)]
    assert event.span == AllDaySpan(date.fromisoformat(first), date.fromisoformat(end_exclusive))
    (remote,) = harness.backend.list_tagged(target, *EVER)
    # All-day dates are placed in the backend's zone, as AllDaySpan.utc_bounds does.
    assert_utc(remote, wanted.span, harness)


# -- batches: order and isolation of failures -------------------------------------------------------


def test_a_mixed_batch_returns_outcomes_in_input_order(harness: BackendHarness) -> None:
    target = harness.target("anna@contoso.example")
    a, b, c = (spec(target, k) for k in "abc")
    ids = [rid(o) for o in apply_ok(harness, target, [create(a), create(b), create(c)])]

    new_a = spec(target, "a", subject="a, changed")
    new_c = spec(target, "c", subject="c, changed", span=all_day("2027-04-01"))
    d, e = spec(target, "d"), spec(target, "e")
    ops: list[Op] = [
        create(d),
        update(new_a, ids[0]),
        delete(target, "b", ids[1]),
        create(e),
        update(new_c, ids[2]),
    ]
    outcomes = harness.backend.apply(target, ops)

    assert len(outcomes) == len(ops)
    for outcome, op in zip(outcomes, ops, strict=True):
        assert outcome.op is op
        assert outcome.ok, outcome.error
    assert outcomes[1].remote_id == ids[0]
    assert outcomes[4].remote_id == ids[2]
    events = stored(harness, target)
    assert set(events) == {ids[0], ids[2], outcomes[0].remote_id, outcomes[3].remote_id}
    assert_holds(events[rid(outcomes[0])], d)
    assert_holds(events[ids[0]], new_a)
    assert_holds(events[rid(outcomes[3])], e)
    assert_holds(events[ids[2]], new_c)


def test_one_bad_op_fails_alone(harness: BackendHarness) -> None:
    target = harness.target("anna@contoso.example")
    keep = create_one(harness, target, spec(target, "keep"))
    drop = create_one(harness, target, spec(target, "drop"))
    missing = gone_id(harness, target)
    fresh = spec(target, "fresh")
    changed = spec(target, "keep", subject="keep, changed")

    outcomes = apply(
        harness,
        target,
        [
            create(fresh),
            update(spec(target, "ghost"), missing),
            update(changed, rid(keep)),
            delete(target, "drop", rid(drop)),
        ],
    )

    assert [o.ok for o in outcomes] == [True, False, True, True]
    assert isinstance(outcomes[1].error, EventNotFoundError)
    events = stored(harness, target)
    assert set(events) == {keep.remote_id, outcomes[0].remote_id}
    assert_holds(events[rid(keep)], changed)
    assert_holds(events[rid(outcomes[0])], fresh)


def test_an_event_ending_before_it_starts_is_bad_data_and_fails_alone(harness: BackendHarness) -> None:
    target = harness.target("anna@contoso.example")
    backwards = spec(target, "backwards", span=timed("2027-03-29T17:00", "2027-03-29T09:00"))
    good = spec(target, "good")

    outcomes = apply(harness, target, [create(backwards), create(good)])

    assert isinstance(outcomes[0].error, BadDataError)
    assert outcomes[1].ok
    assert [e.tag for e in harness.all_events(target)] == ["good"]


# -- update and delete ------------------------------------------------------------------------------


def test_update_replaces_content_and_changes_the_change_key(harness: BackendHarness) -> None:
    target = harness.target("anna@contoso.example")
    first = create_one(harness, target, spec(target, "k", subject="before", reminder_minutes=15))
    after = spec(
        target,
        "k",
        subject="after å 日本 😀",
        body=TEXT,
        location="Raum 2",
        categories=("Schedule", "Nacht"),
        span=timed("2027-03-30T22:00", "2027-03-31T06:00"),
        show_as=ShowAs.TENTATIVE,
        sensitivity=Sensitivity.CONFIDENTIAL,
        reminder_minutes=None,
    )

    (outcome,) = apply_ok(harness, target, [update(after, rid(first), first.change_key)])

    assert outcome.remote_id == first.remote_id
    assert outcome.change_key
    assert outcome.change_key != first.change_key
    events = stored(harness, target)
    assert list(events) == [first.remote_id]
    assert_holds(events[rid(first)], after)
    (remote,) = harness.backend.list_tagged(target, *EVER)
    assert (remote.change_key, remote.content_hash, remote.subject) == (
        outcome.change_key,
        after.content_hash,
        after.subject,
    )
    assert_utc(remote, after.span, harness)


def test_update_can_turn_a_timed_event_into_an_all_day_one_and_back(harness: BackendHarness) -> None:
    target = harness.target("anna@contoso.example")
    first = create_one(harness, target, spec(target, "k"))
    whole_day = spec(target, "k", span=all_day("2027-03-29"))
    apply_ok(harness, target, [update(whole_day, rid(first))])
    assert_holds(stored(harness, target)[rid(first)], whole_day)

    timed_again = spec(target, "k", span=timed("2027-03-29T12:00", "2027-03-29T13:00"))
    apply_ok(harness, target, [update(timed_again, rid(first))])
    assert_holds(stored(harness, target)[rid(first)], timed_again)


def test_delete_removes_and_deleting_again_is_event_not_found(harness: BackendHarness) -> None:
    target = harness.target("anna@contoso.example")
    first = create_one(harness, target, spec(target, "k"))
    remote_id = rid(first)

    (outcome,) = apply_ok(harness, target, [delete(target, "k", remote_id, first.change_key)])
    assert outcome.remote_id == remote_id
    assert harness.all_events(target) == []
    assert harness.backend.list_tagged(target, *EVER) == []

    (again,) = apply(harness, target, [delete(target, "k", remote_id)])
    assert isinstance(again.error, EventNotFoundError)


def test_update_of_a_missing_event_is_event_not_found_and_creates_nothing(harness: BackendHarness) -> None:
    target = harness.target("anna@contoso.example")
    missing = gone_id(harness, target)
    (outcome,) = apply(harness, target, [update(spec(target, "k"), missing)])
    assert isinstance(outcome.error, EventNotFoundError)
    assert harness.all_events(target) == []


# -- ownership: events without our tag --------------------------------------------------------------


def test_foreign_events_are_never_listed_found_or_touched(harness: BackendHarness) -> None:
    target = harness.target("anna@contoso.example")
    span = timed("2027-03-29T12:00", "2027-03-29T13:00")
    foreign_id = harness.add_foreign_event(target, "Lunch with Bea 😀", span)
    ours = create_one(harness, target, spec(target, "shift-1"))
    before = stored(harness, target)[foreign_id]
    assert before.tag is None

    assert [e.remote_id for e in harness.backend.list_tagged(target, *EVER)] == [ours.remote_id]
    found = harness.backend.find_tagged(target, ["shift-1", "", "Lunch with Bea 😀", foreign_id])
    assert [e.remote_id for e in found] == [ours.remote_id]

    outcomes = apply(
        harness,
        target,
        [
            update(spec(target, "shift-9", subject="hijacked"), foreign_id),
            delete(target, "shift-9", foreign_id),
        ],
    )

    assert all(isinstance(o.error, EventNotFoundError) for o in outcomes)
    assert stored(harness, target)[foreign_id] == before


def test_mailboxes_are_separate(harness: BackendHarness) -> None:
    anna = harness.target("anna@contoso.example")
    bob = harness.target("bob@contoso.example")
    annas = create_one(harness, anna, spec(anna, "shift-1"))

    assert harness.backend.list_tagged(bob, *EVER) == []
    assert harness.backend.find_tagged(bob, ["shift-1"]) == []
    (outcome,) = apply(harness, bob, [update(spec(bob, "shift-1", subject="x"), rid(annas))])
    assert isinstance(outcome.error, EventNotFoundError)
    assert_holds(stored(harness, anna)[rid(annas)], spec(anna, "shift-1"))


# -- list_tagged: overlap at the edges --------------------------------------------------------------


def test_list_tagged_uses_half_open_overlap_for_timed_events(harness: BackendHarness) -> None:
    target = harness.target("anna@contoso.example")
    start = datetime(2027, 4, 5, 0, 0, tzinfo=UTC)
    end = datetime(2027, 4, 6, 0, 0, tzinfo=UTC)
    cases = {
        "ends-at-start": ("2027-04-04T20:00", "2027-04-05T00:00", False),
        "starts-at-end": ("2027-04-06T00:00", "2027-04-06T01:00", False),
        "spans-window": ("2027-04-04T12:00", "2027-04-07T12:00", True),
        "over-start": ("2027-04-04T23:00", "2027-04-05T00:01", True),
        "over-end": ("2027-04-05T23:59", "2027-04-06T01:00", True),
        "inside": ("2027-04-05T09:00", "2027-04-05T17:00", True),
        "instant-at-start": ("2027-04-05T00:00", "2027-04-05T00:00", True),
        "instant-at-end": ("2027-04-06T00:00", "2027-04-06T00:00", False),
        "far-before": ("2027-03-01T09:00", "2027-03-01T10:00", False),
    }
    specs = {key: spec(target, key, span=timed(s, e, "UTC")) for key, (s, e, _) in cases.items()}
    outcomes = apply_ok(harness, target, [create(s) for s in specs.values()])
    key_of = {o.remote_id: s.source_key for o, s in zip(outcomes, specs.values(), strict=True)}

    found = listed(harness, target, start, end)

    assert {key_of[i] for i in found} == {key for key, (_, _, inside) in cases.items() if inside}
    for remote in found.values():
        assert remote.source_key == key_of[remote.remote_id]
        assert_utc(remote, specs[remote.source_key].span, harness)


def test_list_tagged_places_all_day_events_in_the_backend_zone(harness: BackendHarness) -> None:
    target = harness.target("anna@contoso.example")
    window = Window.around(date(2027, 4, 5), harness.zone, days_before=0, days_after=1)
    cases = {"day-before": "2027-04-04", "the-day": "2027-04-05", "day-after": "2027-04-06"}
    outcomes = apply_ok(
        harness, target, [create(spec(target, key, span=all_day(day))) for key, day in cases.items()]
    )
    key_of = {o.remote_id: key for o, key in zip(outcomes, cases, strict=True)}

    found = listed(harness, target, window.start, window.end)

    assert {key_of[i] for i in found} == {"the-day"}


def test_list_tagged_in_a_narrow_range_around_a_zone_offset(harness: BackendHarness) -> None:
    target = harness.target("anna@contoso.example")
    # 09:00-10:00 CEST is 07:00-08:00 UTC: a backend that ignores the zone would miss it.
    outcome = create_one(
        harness, target, spec(target, "k", span=timed("2027-06-01T09:00", "2027-06-01T10:00"))
    )
    hit = listed(
        harness, target, datetime(2027, 6, 1, 7, 30, tzinfo=UTC), datetime(2027, 6, 1, 7, 31, tzinfo=UTC)
    )
    miss = listed(
        harness, target, datetime(2027, 6, 1, 8, 0, tzinfo=UTC), datetime(2027, 6, 1, 9, 30, tzinfo=UTC)
    )
    assert list(hit) == [outcome.remote_id]
    assert miss == {}


# -- find_tagged ------------------------------------------------------------------------------------


def test_find_tagged_finds_by_key_anywhere_in_time_and_returns_duplicates(harness: BackendHarness) -> None:
    target = harness.target("anna@contoso.example")
    past = spec(target, "past", span=timed("2019-05-06T09:00", "2019-05-06T10:00"))
    future = spec(target, "future", span=all_day("2035-07-01"))
    dup = spec(target, "dup")
    other = spec(target, "other")
    # Two creates of the same key with different transaction ids: a duplicate a verifying sync must see.
    outcomes = apply_ok(
        harness, target, [create(past), create(future), create(dup), create(dup), create(other)]
    )

    found = harness.backend.find_tagged(target, ["past", "future", "dup", "never-created"])

    by_id = {e.remote_id: e for e in found}
    assert len(by_id) == len(found)
    assert set(by_id) == {o.remote_id for o in outcomes[:4]}
    assert sorted(e.source_key for e in found) == ["dup", "dup", "future", "past"]
    for outcome, wanted in zip(outcomes[:4], (past, future, dup, dup), strict=True):
        remote = by_id[rid(outcome)]
        assert (remote.source_key, remote.change_key) == (wanted.source_key, outcome.change_key)
        assert remote.content_hash == wanted.content_hash
        assert_utc(remote, wanted.span, harness)
    assert harness.backend.find_tagged(target, []) == []


# -- mailboxes that do not exist --------------------------------------------------------------------

CALLS: dict[str, Callable[[BackendHarness, Target], object]] = {
    "probe": lambda h, t: h.backend.probe(t),
    "apply": lambda h, t: h.backend.apply(t, [create(spec(t, "k"))]),
    "list_tagged": lambda h, t: h.backend.list_tagged(t, *EVER),
    "find_tagged": lambda h, t: h.backend.find_tagged(t, ["k"]),
}


@pytest.mark.parametrize("call", list(CALLS))
def test_an_unknown_mailbox_raises_mailbox_not_found(harness: BackendHarness, call: str) -> None:
    target = harness.unknown_target()
    with pytest.raises(MailboxNotFoundError) as caught:
        CALLS[call](harness, target)
    assert caught.value.message


# -- the person at Outlook --------------------------------------------------------------------------


def test_an_outlook_edit_changes_the_change_key_and_keeps_tag_and_hash(harness: BackendHarness) -> None:
    target = harness.target("anna@contoso.example")
    wanted = spec(target, "k", subject="as pushed")
    first = create_one(harness, target, wanted)

    harness.outlook_edit(target, rid(first), "edited by hand")

    (remote,) = harness.backend.list_tagged(target, *EVER)
    assert remote.change_key != first.change_key
    assert remote.subject == "edited by hand"
    assert (remote.source_key, remote.content_hash) == ("k", wanted.content_hash)


def test_update_with_a_stale_change_key_overwrites_an_outlook_edit(harness: BackendHarness) -> None:
    # The source is master: an update sent with the change key we last saw puts the event back.
    target = harness.target("anna@contoso.example")
    wanted = spec(target, "k", subject="as pushed")
    first = create_one(harness, target, wanted)
    harness.outlook_edit(target, rid(first), "edited by hand")

    (outcome,) = apply_ok(harness, target, [update(wanted, rid(first), first.change_key)])

    assert_holds(stored(harness, target)[rid(first)], wanted)
    (remote,) = harness.backend.list_tagged(target, *EVER)
    assert remote.change_key == outcome.change_key


def test_an_event_deleted_in_outlook_is_gone_for_every_call(harness: BackendHarness) -> None:
    target = harness.target("anna@contoso.example")
    first = create_one(harness, target, spec(target, "k"))
    harness.outlook_delete(target, rid(first))

    assert harness.backend.list_tagged(target, *EVER) == []
    assert harness.backend.find_tagged(target, ["k"]) == []
    outcomes = apply(
        harness, target, [update(spec(target, "k"), rid(first)), delete(target, "k", rid(first))]
    )
    assert all(isinstance(o.error, EventNotFoundError) for o in outcomes)
