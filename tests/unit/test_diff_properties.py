"""Property-based tests of the diff and the delete guard (DESIGN §4).

A tiny simulated calendar stands in for a backend: it holds our tagged events and the person's own,
applies a plan the way the sync engine does, and lets us check the rules after every step, over many
generated sources, store states, drifts and windows.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from connector.diff import diff
from connector.guard import DeleteGuard
from connector.models import (
    AllDaySpan,
    Create,
    Delete,
    EventSpec,
    MailboxPlan,
    RemoteEvent,
    Sensitivity,
    ShowAs,
    Span,
    StoredMapping,
    TimedSpan,
    Update,
)
from connector.render import content_hash
from connector.window import Window

PARIS = ZoneInfo("Europe/Paris")
TODAY = date(2027, 3, 20)  # a week before the spring DST change: windows straddle it
MAILBOX = "alex@contoso.example"
KEYS = [f"K{i}" for i in range(8)]


# -- generators -------------------------------------------------------------------------------------


@st.composite
def spans(draw: st.DrawFn) -> Span:
    day = TODAY + timedelta(days=draw(st.integers(-20, 40)))
    if draw(st.booleans()):
        return AllDaySpan(day, day + timedelta(days=draw(st.integers(1, 4))))
    start = datetime.combine(
        day, time(draw(st.integers(0, 23)), draw(st.sampled_from([0, 30]))), tzinfo=PARIS
    )
    return TimedSpan(start, start + timedelta(minutes=draw(st.integers(0, 72 * 60))), "Europe/Paris")


@st.composite
def specs(draw: st.DrawFn, key: str) -> EventSpec:
    spec = EventSpec(
        source_key=key,
        mailbox=MAILBOX,
        subject=draw(st.sampled_from(["Shift", "Früh", "会議", "Interview 🎤"])),
        body="",
        location="",
        span=draw(spans()),
        categories=("Planning",),
        show_as=ShowAs.BUSY,
        sensitivity=Sensitivity.NORMAL,
        reminder_minutes=None,
        content_hash="",
    )
    return replace(spec, content_hash=content_hash(spec))


@st.composite
def sources(draw: st.DrawFn) -> dict[str, EventSpec]:
    keys = draw(st.lists(st.sampled_from(KEYS), unique=True, max_size=len(KEYS)))
    return {key: draw(specs(key)) for key in keys}


windows = st.builds(
    lambda before, after, shift: Window.around(
        TODAY + timedelta(days=shift), PARIS, days_before=before, days_after=after
    ),
    st.integers(0, 5),
    st.integers(1, 30),
    st.integers(0, 10),
)


# -- the simulated calendar -------------------------------------------------------------------------


@dataclass
class Event:
    id: str
    tag: str | None  # None: the person's own event
    span: Span
    content_hash: str
    change_key: str

    def bounds(self) -> tuple[datetime, datetime]:
        return self.span.utc_bounds(PARIS)


class Calendar:
    def __init__(self) -> None:
        self.events: dict[str, Event] = {}
        self.store: dict[str, StoredMapping] = {}
        self._ids = itertools.count()

    def new_id(self) -> str:
        return f"id{next(self._ids)}"

    def add_foreign(self, span: Span) -> None:
        event_id = self.new_id()
        self.events[event_id] = Event(event_id, None, span, "", self.new_id())

    def tagged(self, window: Window) -> list[RemoteEvent]:
        out = []
        for e in self.events.values():
            start, end = e.bounds()
            if e.tag is not None and window.overlaps_utc(start, end):
                out.append(RemoteEvent(e.id, e.change_key, e.tag, start, end, e.content_hash))
        return out

    def apply(self, plan: MailboxPlan, window: Window) -> None:
        """Apply the plan as the engine does, checking on the way that no op breaks ownership or window."""
        for adopt in plan.adopt:
            r = adopt.remote
            self.store[adopt.source_key] = StoredMapping(
                MAILBOX, adopt.source_key, r.remote_id, r.change_key, r.content_hash, r.start_utc, r.end_utc
            )
        for key in plan.forget:
            self.store.pop(key, None)
        for op in plan.ops:
            if isinstance(op, Create):
                assert window.contains(op.spec.span), "a create outside the window"
                event = Event(
                    self.new_id(), op.spec.source_key, op.spec.span, op.spec.content_hash, self.new_id()
                )
                self.events[event.id] = event
                self._remember(event, op.spec)
                continue
            target = self.events.get(op.remote_id)
            assert target is not None, f"{op.kind} of an event that does not exist"
            assert target.tag == op.source_key, f"{op.kind} of an event without our tag"
            assert window.overlaps_utc(*target.bounds()), f"{op.kind} of an event outside the window"
            if isinstance(op, Update):
                target.span, target.content_hash, target.change_key = (
                    op.spec.span,
                    op.spec.content_hash,
                    self.new_id(),
                )
                self._remember(target, op.spec)
            elif isinstance(op, Delete):
                del self.events[op.remote_id]
                if (m := self.store.get(op.source_key)) is not None and m.remote_id == op.remote_id:
                    del self.store[op.source_key]

    def _remember(self, event: Event, spec: EventSpec) -> None:
        start, end = event.bounds()
        self.store[spec.source_key] = StoredMapping(
            MAILBOX, spec.source_key, event.id, event.change_key, spec.content_hash, start, end
        )

    def drift(self, data: st.DataObject) -> None:
        """What people do in Outlook: edit, delete, and (through crashes) duplicate our events."""
        for event in list(self.events.values()):
            if event.tag is None:
                continue
            action = data.draw(st.sampled_from(["keep", "keep", "edit", "delete", "duplicate"]))
            if action == "edit":
                event.change_key = self.new_id()
                event.span = data.draw(spans())
            elif action == "delete":
                del self.events[event.id]
            elif action == "duplicate":
                copy = replace(event, id=self.new_id(), change_key=self.new_id())
                self.events[copy.id] = copy


def plan_for(
    calendar: Calendar,
    desired: dict[str, EventSpec],
    window: Window,
    *,
    verify: bool,
    protected: frozenset[str] = frozenset(),
) -> MailboxPlan:
    return diff(
        MAILBOX,
        desired,
        dict(calendar.store),
        window,
        new_transaction_id=calendar.new_id,
        remote=calendar.tagged(window) if verify else None,
        protected=protected,
    )


def assert_converged(calendar: Calendar, desired: dict[str, EventSpec], window: Window) -> None:
    """Every in-window entry has exactly one tagged event in the window, with the wanted content."""
    in_window = {k: s for k, s in desired.items() if window.contains(s.span)}
    by_key: dict[str, list[RemoteEvent]] = {}
    for event in calendar.tagged(window):
        by_key.setdefault(event.source_key, []).append(event)
    for key, spec in in_window.items():
        found = by_key.get(key, [])
        assert len(found) == 1, f"{key}: {len(found)} events in the window"
        assert found[0].content_hash == spec.content_hash


# -- properties -------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(sources(), st.integers(0, 6)), min_size=1, max_size=5),
    st.integers(0, 5),
    st.integers(1, 30),
    st.booleans(),
)
def test_applying_a_plan_then_diffing_again_yields_nothing(rounds, before, after, verify) -> None:
    """Over several syncs, with the source changing arbitrarily and days passing between syncs."""
    calendar = Calendar()
    calendar.add_foreign(AllDaySpan(TODAY, TODAY + timedelta(days=1)))
    today = TODAY
    for desired, days_passed in rounds:
        today += timedelta(days=days_passed)
        window = Window.around(today, PARIS, days_before=before, days_after=after)
        calendar.apply(plan_for(calendar, desired, window, verify=verify), window)
        again = plan_for(calendar, desired, window, verify=verify)
        assert again.ops == () and again.adopt == () and again.forget == (), again
        assert_converged(calendar, desired, window)


@settings(max_examples=300, deadline=None)
@given(sources(), sources(), windows, st.data())
def test_verifying_sync_repairs_any_drift_and_never_touches_foreign_events(
    first, second, window, data
) -> None:
    calendar = Calendar()
    for _ in range(data.draw(st.integers(0, 3))):
        calendar.add_foreign(data.draw(spans()))
    foreign_before = {k: replace(v) for k, v in calendar.events.items() if v.tag is None}
    calendar.apply(plan_for(calendar, first, window, verify=False), window)
    calendar.drift(data)
    calendar.apply(plan_for(calendar, second, window, verify=True), window)
    assert_converged(calendar, second, window)
    # Tagged events in the window whose entry is gone have been removed.
    assert {e.source_key for e in calendar.tagged(window)} <= set(second)
    assert {k: v for k, v in calendar.events.items() if v.tag is None} == foreign_before
    assert plan_for(calendar, second, window, verify=True).is_empty


@settings(max_examples=200, deadline=None)
@given(sources(), windows, st.booleans())
def test_unchanged_source_means_zero_writes(desired, window, verify) -> None:
    calendar = Calendar()
    calendar.apply(plan_for(calendar, desired, window, verify=False), window)
    plan = plan_for(calendar, desired, window, verify=verify)
    assert plan.ops == ()
    assert plan.unchanged == sum(1 for s in desired.values() if window.contains(s.span))


@settings(max_examples=200, deadline=None)
@given(sources(), windows, st.integers(1, 10), st.booleans())
def test_events_that_left_the_window_are_never_touched(desired, window, days_later, verify) -> None:
    calendar = Calendar()
    calendar.apply(plan_for(calendar, desired, window, verify=False), window)
    later = Window(window.start + timedelta(days=days_later), window.end + timedelta(days=days_later), PARIS)
    # Whatever the source now says (here: nothing at all), events before the new window stay.
    before = {
        k: (e.span, e.content_hash)
        for k, e in calendar.events.items()
        if e.bounds()[1] <= later.start and not later.overlaps_utc(*e.bounds())
    }
    calendar.apply(plan_for(calendar, {}, later, verify=verify), later)
    after = {k: (e.span, e.content_hash) for k, e in calendar.events.items() if k in before}
    assert after == before


@settings(max_examples=200, deadline=None)
@given(sources(), windows, st.booleans(), st.data())
def test_quarantined_entries_keep_their_events(desired, window, verify, data) -> None:
    calendar = Calendar()
    calendar.apply(plan_for(calendar, desired, window, verify=False), window)
    broken = set(data.draw(st.lists(st.sampled_from(KEYS), unique=True))) & set(desired)
    remaining = {k: s for k, s in desired.items() if k not in broken}
    plan = plan_for(calendar, remaining, window, verify=verify, protected=frozenset(broken))
    assert not any(op.source_key in broken for op in plan.ops)


@settings(max_examples=200, deadline=None)
@given(sources(), windows, st.booleans(), st.booleans())
def test_an_empty_source_deletes_nothing_without_force(desired, window, verify, force) -> None:
    calendar = Calendar()
    calendar.apply(plan_for(calendar, desired, window, verify=False), window)
    plan = plan_for(calendar, {}, window, verify=verify)
    guarded = DeleteGuard().check(plan, managed_in_window=len(calendar.store), source_items=0, force=force)
    deletes = [op for op in plan.ops if isinstance(op, Delete)]
    if force:
        assert guarded.blocked_reason is None
    elif deletes:
        assert guarded.blocked_reason is not None and "--force" in guarded.blocked_reason
    else:
        assert guarded.blocked_reason is None


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 40), st.integers(0, 40), st.floats(0.1, 0.9))
def test_guard_holds_back_mass_deletes_only(managed, deletes, share) -> None:
    deletes = min(deletes, managed)
    plan = MailboxPlan(
        MAILBOX, ops=tuple(Delete(MAILBOX, f"K{i}", f"id{i}", None) for i in range(deletes)), unchanged=0
    )
    guard = DeleteGuard(max_share=share, min_deletes=5)
    checked = guard.check(plan, managed_in_window=managed, source_items=10, force=False)
    expected = deletes >= 5 and deletes / managed > share
    assert (checked.blocked_reason is not None) == expected


def test_a_lost_create_answer_is_adopted_not_duplicated() -> None:
    """The create reached the calendar but the answer was lost: the store holds only the intent."""
    window = Window.around(TODAY, PARIS, days_before=0, days_after=30)
    spec = EventSpec(
        "K1",
        MAILBOX,
        "Shift",
        "",
        "",
        TimedSpan(
            datetime(2027, 3, 22, 9, tzinfo=PARIS), datetime(2027, 3, 22, 17, tzinfo=PARIS), "Europe/Paris"
        ),
        ("Planning",),
        ShowAs.BUSY,
        Sensitivity.NORMAL,
        None,
        "",
    )
    spec = replace(spec, content_hash=content_hash(spec))
    calendar = Calendar()
    plan = plan_for(calendar, {"K1": spec}, window, verify=False)
    (create,) = plan.ops
    assert isinstance(create, Create)
    start, end = spec.span.utc_bounds(PARIS)
    calendar.events["x"] = Event("x", "K1", spec.span, spec.content_hash, "ck")
    calendar.store["K1"] = StoredMapping(
        MAILBOX, "K1", None, None, spec.content_hash, start, end, create.transaction_id
    )
    # Fast mode without resolution would retry with the *same* transaction id (server-side dedupe) ...
    retry = plan_for(calendar, {"K1": spec}, window, verify=False)
    assert [op.transaction_id for op in retry.ops if isinstance(op, Create)] == [create.transaction_id]
    # ... and a verifying sync adopts the event instead of creating a second one.
    verify = plan_for(calendar, {"K1": spec}, window, verify=True)
    assert verify.ops == () and [a.remote.remote_id for a in verify.adopt] == ["x"]


@settings(max_examples=100, deadline=None)
@given(st.lists(specs("x"), min_size=1, max_size=5), windows, st.booleans())
def test_a_quarantined_series_keeps_the_events_of_its_occurrences(occurrences, window, verify) -> None:
    # The iCalendar source keys an occurrence UID#start; a series whose rule breaks is quarantined
    # under its UID alone and yields no occurrence at all.
    desired = {
        f"series-1#{n}": replace(spec, source_key=f"series-1#{n}") for n, spec in enumerate(occurrences)
    }
    desired["series-10#0"] = replace(occurrences[0], source_key="series-10#0")
    calendar = Calendar()
    calendar.apply(plan_for(calendar, desired, window, verify=False), window)
    plan = plan_for(calendar, {}, window, verify=verify, protected=frozenset({"series-1"}))
    touched = {op.source_key for op in plan.ops}
    assert not any(key.startswith("series-1#") for key in touched)
    # Another series that merely starts with the same letters is not protected.
    assert touched <= {"series-10#0"}
