"""The sync engine end to end over real adapters: CSV source, SQLite state store, in-memory calendars."""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from adapters.memory import MemoryBackend, MemoryCalendar
from adapters.source.files import file_schedule_source, file_target_source
from adapters.state import SqlStateStore, open_store
from connector.backend import CalendarBackend, OpOutcome
from connector.errors import BadDataError, ConnectorError, PermissionDeniedError, TransientError
from connector.models import AllDaySpan, Create, Op, RemoteEvent, Target, TimedSpan
from connector.render import RenderRules
from connector.state import MailboxStatus, RunStatus, SyncMode
from connector.sync import RunReport, SyncEngine, SyncRequest
from connector.window import Window

PARIS = ZoneInfo("Europe/Paris")
TODAY = date(2027, 3, 22)
ALEX, BEA, ROOM = "alex@contoso.example", "bea@contoso.example", "room1@contoso.example"

TARGETS = [
    {"address": ALEX, "owner_key": "E1", "kind": "user", "enabled": "true", "display_name": "Alex Åström"},
    {"address": BEA, "owner_key": "E2", "kind": "user", "enabled": "true", "display_name": "Beata Łukasik"},
    {
        "address": ROOM,
        "owner_key": "R1",
        "kind": "room",
        "enabled": "true",
        "display_name": "Konferenzraum Süd",
    },
    {
        "address": "off@contoso.example",
        "owner_key": "E3",
        "kind": "user",
        "enabled": "false",
        "display_name": "",
    },
]


def row(key: str, owner: str, start: str, end: str, title: str = "Shift", **extra: str) -> dict[str, str]:
    return {"key": key, "owner": owner, "start": start, "end": end, "title": title, **extra}


def base_rows() -> list[dict[str, str]]:
    rows = [
        row(f"S{i:03}", "E1" if i % 2 else "E2", f"2027-03-{23 + i % 5}T08:00", f"2027-03-{23 + i % 5}T16:00")
        for i in range(10)
    ]
    rows += [
        row("DST", "E1", "2027-03-29T09:00", "2027-03-29T17:00", "Früh 日本 😀", timezone="Europe/Berlin"),
        row("NYE", "E2", "2027-12-31", "2027-12-31", "Silvester", all_day="true"),
        row("VAC", "E2", "2027-04-05", "2027-04-09", "Urlaub", all_day="true"),
        row("BOOK", "R1", "2027-03-24T10:00", "2027-03-24T11:00", "Sprint review"),
        row("OFF1", "E3", "2027-03-24T10:00", "2027-03-24T11:00", "disabled target"),
        row("BAD-END", "E1", "2027-03-24T10:00", "2027-03-24T09:00", "ends first"),
        row("BAD-ZONE", "E1", "2027-03-24T10:00", "2027-03-24T11:00", "zone", timezone="Mars/Olympus"),
        row("BAD-OWNER", "E404", "2027-03-24T10:00", "2027-03-24T11:00", "nobody"),
    ]
    return rows


def write_csv(path: Path, rows: Sequence[dict[str, str]]) -> None:
    fields: list[str] = ["key", "owner", "start", "end", "title"]
    for r in rows:
        fields += [k for k in r if k not in fields]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


class LosesAnswers:
    """A backend whose writes reach the calendar but whose answers are lost (connection dropped)."""

    def __init__(self, inner: MemoryBackend, times: int) -> None:
        self.inner, self.times = inner, times
        self.name, self.max_batch = inner.name, inner.max_batch

    def apply(self, target: Target, ops: Sequence[Op]) -> list[OpOutcome]:
        outcomes = self.inner.apply(target, ops)
        if self.times:
            self.times -= 1
            raise TransientError("connection reset after the request was sent")
        return outcomes

    def probe(self, target: Target) -> None:
        self.inner.probe(target)

    def list_tagged(self, target: Target, start: datetime, end: datetime) -> list[RemoteEvent]:
        return self.inner.list_tagged(target, start, end)

    def find_tagged(self, target: Target, source_keys: Sequence[str]) -> list[RemoteEvent]:
        return self.inner.find_tagged(target, source_keys)

    def close(self) -> None:
        self.inner.close()


@dataclass
class World:
    tmp: Path
    calendar: MemoryCalendar
    store: SqlStateStore
    rows: list[dict[str, str]]
    today: date = TODAY
    backend: CalendarBackend | None = None

    @property
    def source_path(self) -> Path:
        return self.tmp / "schedule.csv"

    def engine(self, **kwargs: object) -> SyncEngine:
        write_csv(self.source_path, self.rows)
        backend = self.backend or MemoryBackend(self.calendar, max_batch=4)
        return SyncEngine(
            source=file_schedule_source(self.source_path, "Europe/Paris"),
            targets=file_target_source(self.tmp / "targets.csv"),
            store=self.store,
            backend=backend,
            rules=RenderRules(host_app="Planning"),
            window=lambda: Window.around(self.today, PARIS, days_before=0, days_after=300),
            **kwargs,  # type: ignore[arg-type]
        )

    def sync(self, mode: SyncMode = SyncMode.FAST, **request: object) -> RunReport:
        return self.engine().run(SyncRequest(mode=mode, **request))  # type: ignore[arg-type]

    def tagged(self, mailbox: str) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for event in self.calendar.events(mailbox):
            if event.tag:
                out.setdefault(event.tag, []).append(event.id)
        return out

    def writes(self) -> int:
        return sum(self.calendar.writes(m) for m in (ALEX, BEA, ROOM))


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    write_csv(tmp_path / "targets.csv", TARGETS)
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    yield World(tmp_path, MemoryCalendar(PARIS), store, base_rows())
    store.close()


def test_first_sync_creates_every_valid_entry_and_quarantines_the_rest(world: World) -> None:
    report = world.sync()
    counts = report.run.counts
    assert report.run.status is RunStatus.SUCCEEDED
    assert (counts.created, counts.updated, counts.deleted, counts.failed) == (14, 0, 0, 0)
    assert {len(v) for v in world.tagged(ALEX).values()} == {1}
    assert set(world.tagged(ROOM)) == {"BOOK"}
    reasons = {q.source_key: q.reason for q in world.store.quarantine()}
    assert set(reasons) == {"BAD-END", "BAD-ZONE", "BAD-OWNER"}
    assert "before it starts" in reasons["BAD-END"]
    assert "Mars/Olympus" in reasons["BAD-ZONE"]
    assert "E404" in reasons["BAD-OWNER"] and "target directory" in reasons["BAD-OWNER"]
    assert world.calendar.events("off@contoso.example") == []  # disabled: opt-in means untouched


def test_a_second_sync_of_an_unchanged_source_writes_nothing(world: World) -> None:
    world.sync()
    writes = world.writes()
    for mode in (SyncMode.FAST, SyncMode.VERIFY):
        counts = world.sync(mode).run.counts
        assert (counts.created, counts.updated, counts.deleted) == (0, 0, 0)
        assert counts.unchanged == 14
    assert world.writes() == writes


def test_editing_one_entry_plans_and_makes_exactly_one_update(world: World) -> None:
    world.sync()
    world.rows[0]["title"] = "Late shift"
    _, previews = world.engine().preview(SyncRequest())
    ops = [op for p in previews for op in p.plan.ops]
    assert [(op.kind.value, op.source_key) for op in ops] == [("update", "S000")]
    counts = world.sync().run.counts
    assert (counts.created, counts.updated, counts.deleted) == (0, 1, 0)
    (event,) = [e for e in world.calendar.events(BEA) if e.tag == "S000"]
    assert event.subject == "Late shift"


def test_removed_and_cancelled_entries_are_deleted_but_foreign_events_never(world: World) -> None:
    foreign = world.calendar.add_foreign_event(
        ALEX, "Dentist", AllDaySpan(date(2027, 3, 24), date(2027, 3, 25))
    )
    world.sync()
    world.rows = [r for r in world.rows if r["key"] != "S001"]
    world.rows[0]["status"] = "cancelled"
    counts = world.sync().run.counts
    assert counts.deleted == 2
    assert "S001" not in world.tagged(ALEX) and "S000" not in world.tagged(BEA)
    assert [e.subject for e in world.calendar.events(ALEX) if e.id == foreign] == ["Dentist"]


def test_a_synced_entry_that_becomes_invalid_keeps_its_event(world: World) -> None:
    world.sync()
    world.rows[1]["end"] = "2027-03-20T00:00"  # now ends before it starts
    report = world.sync()
    assert report.run.counts.deleted == 0
    assert "S001" in world.tagged(ALEX)
    assert any(q.source_key == "S001" for q in world.store.quarantine())


def test_a_failing_mailbox_is_unhealthy_with_its_reason_and_the_others_sync(world: World) -> None:
    world.calendar.deny(BEA, PermissionDeniedError("the app may not reach bea", fix="scope the app"))
    report = world.sync()
    assert report.run.status is RunStatus.PARTIAL
    by_mailbox = {r.mailbox: r for r in report.run.results}
    assert by_mailbox[BEA].status is MailboxStatus.FAILED and by_mailbox[BEA].error_code == "permission"
    assert by_mailbox[ALEX].status is MailboxStatus.OK and by_mailbox[ALEX].counts.created > 0
    health = {h.mailbox: h for h in world.store.health()}
    assert "scope the app" in (health[BEA].error or "")
    assert health[ALEX].error is None
    world.calendar.allow(BEA)
    world.sync()
    assert {h.mailbox: h.error for h in world.store.health()}[BEA] is None


def test_one_bad_op_fails_alone_and_is_retried_next_time_without_duplicates(world: World) -> None:
    world.calendar.fail_ops(
        lambda op: BadDataError("subject rejected", field="subject") if op.source_key == "S003" else None
    )
    report = world.sync()
    assert report.run.counts.failed == 1 and report.run.counts.created == 13
    (alex,) = [r for r in report.run.results if r.mailbox == ALEX]
    assert alex.op_errors[0][0] == "S003" and "subject rejected" in alex.op_errors[0][1]
    world.calendar.fail_ops(None)
    assert world.sync().run.counts.created == 1
    assert all(len(ids) == 1 for ids in world.tagged(ALEX).values())


def test_lost_create_answers_never_duplicate_an_event(world: World) -> None:
    lossy = world.backend = LosesAnswers(MemoryBackend(world.calendar, max_batch=4), times=2)
    first = world.sync()
    assert first.run.status is RunStatus.PARTIAL  # the lost answers are reported as failures
    lossy.times = 0
    world.sync()
    for mailbox in (ALEX, BEA, ROOM):
        assert all(len(ids) == 1 for ids in world.tagged(mailbox).values()), world.tagged(mailbox)
    assert sum(len(world.tagged(m)) for m in (ALEX, BEA, ROOM)) == 14
    assert world.sync().run.counts.writes == 0


def test_verifying_sync_repairs_outlook_edits_and_deletions(world: World) -> None:
    world.sync()
    events = {e.tag: e for e in world.calendar.events(ALEX)}
    world.calendar.outlook_edit(ALEX, events["S001"].id, subject="my own title")
    world.calendar.outlook_delete(ALEX, events["S003"].id)
    assert world.sync().run.counts.writes == 0  # a fast sync trusts the store
    counts = world.sync(SyncMode.VERIFY).run.counts
    assert (counts.created, counts.updated, counts.deleted) == (1, 1, 0)
    fixed = {e.tag: e for e in world.calendar.events(ALEX)}
    assert fixed["S001"].subject == "Shift" and "S003" in fixed
    assert world.sync(SyncMode.VERIFY).run.counts.writes == 0


def test_fast_sync_recreates_an_event_deleted_in_outlook_when_its_entry_changes(world: World) -> None:
    world.sync()
    (event,) = [e for e in world.calendar.events(ALEX) if e.tag == "S001"]
    world.calendar.outlook_delete(ALEX, event.id)
    world.rows[1]["title"] = "Changed"
    counts = world.sync().run.counts
    assert counts.created == 1 and counts.failed == 0
    assert [e.subject for e in world.calendar.events(ALEX) if e.tag == "S001"] == ["Changed"]


def test_after_losing_the_state_store_a_verifying_sync_adopts_everything_without_writing(
    world: World, tmp_path: Path
) -> None:
    world.sync()
    writes = world.writes()
    world.store.close()
    world.store = open_store(f"sqlite:///{tmp_path / 'restored.db'}")
    counts = world.sync(SyncMode.VERIFY).run.counts
    assert counts.adopted == 14 and counts.writes == 0
    assert world.writes() == writes
    assert world.sync().run.counts.writes == 0


def test_the_delete_guard_holds_back_an_emptied_source_until_forced(world: World) -> None:
    world.sync()
    world.rows = []
    report = world.sync()
    assert report.run.status is RunStatus.BLOCKED and report.run.counts.deleted == 0
    assert all("--force" in (r.error or "") for r in report.run.results if r.status is MailboxStatus.BLOCKED)
    assert len(world.tagged(ALEX)) > 0
    forced = world.sync(force=True)
    assert forced.run.counts.deleted == 14 and world.tagged(ALEX) == {}


def test_dst_and_all_day_entries_keep_wall_clock_and_dates_through_render_and_store(world: World) -> None:
    world.sync()
    events = {e.tag: e for m in (ALEX, BEA) for e in world.calendar.events(m)}
    dst = events["DST"].span
    assert isinstance(dst, TimedSpan) and dst.timezone == "Europe/Berlin"
    assert (dst.start.hour, dst.start.minute, dst.end.hour) == (9, 0, 17)
    assert dst.start.utcoffset() == timedelta(hours=2)  # summer time: the Monday after the change
    nye = events["NYE"].span
    assert nye == AllDaySpan(date(2027, 12, 31), date(2028, 1, 1))
    stored = world.store.mappings(ALEX)["DST"]
    assert (stored.start_utc, stored.end_utc) == (
        datetime(2027, 3, 29, 7, tzinfo=UTC),
        datetime(2027, 3, 29, 15, tzinfo=UTC),
    )
    nye_stored = world.store.mappings(BEA)["NYE"]
    assert nye_stored.start_utc == datetime(2027, 12, 30, 23, tzinfo=UTC)  # midnight in Paris
    # Reloading the calendars from their file changes nothing either.
    path = world.tmp / "calendars.json"
    world.calendar.save(path)
    reloaded = {e.tag: e for e in MemoryCalendar.load(path, PARIS).events(ALEX)}
    assert reloaded["DST"].span == dst and events["DST"].subject == "Früh 日本 😀"


def test_a_partial_run_touches_only_the_named_mailbox(world: World) -> None:
    report = world.sync(users=("E1",))
    assert [r.mailbox for r in report.run.results] == [ALEX]
    assert world.tagged(BEA) == {}
    with pytest.raises(ConnectorError, match="not in the target directory"):
        world.engine().load(SyncRequest(users=("nobody@contoso.example",)))
    with pytest.raises(ConnectorError, match="disabled"):
        world.engine().load(SyncRequest(users=("E3",)))


def test_an_unreadable_source_fails_the_run_and_deletes_nothing(world: World) -> None:
    world.sync()
    engine = world.engine()
    world.source_path.unlink()
    report = engine.run(SyncRequest())
    assert report.run.status is RunStatus.FAILED and report.run.error
    assert "schedule.csv" in report.run.error
    assert len(world.tagged(ALEX)) > 0


def test_the_body_says_the_event_is_managed_and_no_reminder_is_set(world: World) -> None:
    world.sync()
    (event,) = [e for e in world.calendar.events(ROOM) if e.tag == "BOOK"]
    assert "managed by Planning" in event.body and "overwritten" in event.body
    assert event.reminder_minutes is None
    assert event.categories[0] == "Planning"
    assert event.show_as.value == "busy"


def test_creates_are_recorded_as_intents_before_the_remote_call(world: World) -> None:
    seen: list[int] = []

    class Spy(MemoryBackend):
        def apply(self, target: Target, ops: Sequence[Op]) -> list[OpOutcome]:
            intents = [m for m in world.store.mappings(target.address).values() if m.is_intent]
            seen.append(len(intents))
            assert len(intents) == sum(isinstance(op, Create) for op in ops)
            return super().apply(target, ops)

    world.backend = Spy(world.calendar, max_batch=4)
    world.sync()
    assert seen and max(seen) > 0
    assert not any(m.is_intent for mb in (ALEX, BEA, ROOM) for m in world.store.mappings(mb).values())
