"""What only the memory backend does: idempotent creates by transaction id, the JSON file, the test hooks
(deny, fail_ops, writes) and thread safety. The shared behaviour is in tests/contract."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from adapters.memory import MemoryBackend, MemoryCalendar, StoredEvent
from connector.backend import CalendarBackend, OpOutcome
from connector.errors import (
    AuthError,
    BadDataError,
    ConnectorError,
    EventNotFoundError,
    MailboxNotFoundError,
    PermissionDeniedError,
    ThrottledError,
)
from connector.models import (
    AllDaySpan,
    Create,
    Delete,
    EventSpec,
    Op,
    Sensitivity,
    ShowAs,
    Span,
    Target,
    TimedSpan,
    Update,
)

BERLIN = ZoneInfo("Europe/Berlin")
ANNA = Target("anna@contoso.example", "anna")
BOB = Target("bob@contoso.example", "bob")
EVER = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))


def at(text: str, zone: ZoneInfo = BERLIN, fold: int = 0) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=zone, fold=fold)


def spec(
    key: str, *, subject: str = "Shift", span: Span | None = None, mailbox: str = ANNA.address
) -> EventSpec:
    return EventSpec(
        source_key=key,
        mailbox=mailbox,
        subject=subject,
        body="",
        location="",
        span=span or TimedSpan(at("2027-03-29T09:00"), at("2027-03-29T17:00"), "Europe/Berlin"),
        categories=("Schedule",),
        show_as=ShowAs.BUSY,
        sensitivity=Sensitivity.NORMAL,
        reminder_minutes=None,
        content_hash=f"hash-{key}-{subject}",
    )


def create(
    key: str, transaction_id: str | None = None, *, subject: str = "Shift", mailbox: str = ANNA.address
) -> Create:
    return Create(
        spec(key, subject=subject, mailbox=mailbox), transaction_id=transaction_id or uuid.uuid4().hex
    )


def apply(backend: MemoryBackend, target: Target, ops: list[Op]) -> list[OpOutcome]:
    return backend.apply(target, ops)


def only_id(outcomes: list[OpOutcome]) -> str:
    (outcome,) = outcomes
    assert outcome.ok, outcome.error
    assert outcome.remote_id
    return outcome.remote_id


@pytest.fixture
def calendar() -> MemoryCalendar:
    return MemoryCalendar(BERLIN, mailboxes=[ANNA.address, BOB.address])


@pytest.fixture
def backend(calendar: MemoryCalendar) -> MemoryBackend:
    return MemoryBackend(calendar)


def test_it_is_a_calendar_backend_named_memory(backend: MemoryBackend) -> None:
    port: CalendarBackend = backend
    assert port.name == "memory"
    assert port.max_batch == 20


# -- transaction ids ---------------------------------------------------------------------------------


def test_a_retried_create_with_the_same_transaction_id_returns_the_first_event(
    backend: MemoryBackend, calendar: MemoryCalendar
) -> None:
    first = apply(backend, ANNA, [create("k", "txn-1")])
    retry = apply(backend, ANNA, [create("k", "txn-1")])

    assert (retry[0].remote_id, retry[0].change_key) == (first[0].remote_id, first[0].change_key)
    assert len(calendar.events(ANNA.address)) == 1
    assert calendar.events(ANNA.address)[0].transaction_id == "txn-1"


def test_transaction_ids_are_per_mailbox(backend: MemoryBackend, calendar: MemoryCalendar) -> None:
    anna_id = only_id(apply(backend, ANNA, [create("k", "txn-1")]))
    bob_id = only_id(apply(backend, BOB, [create("k", "txn-1")]))
    assert anna_id != bob_id
    assert len(calendar.events(BOB.address)) == 1


def test_a_transaction_id_whose_event_was_deleted_creates_again(
    backend: MemoryBackend, calendar: MemoryCalendar
) -> None:
    first = only_id(apply(backend, ANNA, [create("k", "txn-1")]))
    calendar.outlook_delete(ANNA.address, first)
    second = only_id(apply(backend, ANNA, [create("k", "txn-1")]))
    assert second != first
    assert [e.id for e in calendar.events(ANNA.address)] == [second]


# -- persistence -------------------------------------------------------------------------------------


def test_the_json_file_round_trips_wall_clock_zone_and_dates_exactly(tmp_path: Path) -> None:
    path = tmp_path / "var" / "calendar.json"
    calendar = MemoryCalendar(BERLIN, mailboxes=[ANNA.address])
    backend = MemoryBackend(calendar, path=path)
    spans: list[Span] = [
        TimedSpan(at("2027-03-29T09:00"), at("2027-03-29T17:00"), "Europe/Berlin"),
        # 02:30 happens twice on 2026-10-25 in Berlin; fold=1 is the second, in CET.
        TimedSpan(at("2026-10-25T02:30", fold=1), at("2026-10-25T03:30"), "Europe/Berlin"),
        TimedSpan(
            at("2027-01-04T08:00", ZoneInfo("Asia/Tokyo")),
            at("2027-01-04T09:00", ZoneInfo("UTC")),
            "Asia/Tokyo",
        ),
        AllDaySpan(date(2026, 12, 31), date(2027, 1, 1)),
    ]
    ops: list[Op] = [
        Create(spec(f"k{i}", subject=f"å ä ö ß ł 日本 😀\n{i}", span=s), transaction_id=f"t{i}")
        for i, s in enumerate(spans)
    ]
    # Hooks do not save; the apply after it does.
    calendar.add_foreign_event(ANNA.address, "Lunch", spans[0])
    apply(backend, ANNA, ops)

    loaded = MemoryCalendar.load(path, BERLIN)

    before, after = calendar.events(ANNA.address), loaded.events(ANNA.address)
    assert after == before
    for old, new in zip(before, after, strict=True):
        assert_identical_span(new.span, old.span)
    assert not loaded.accepts_any_mailbox
    with pytest.raises(MailboxNotFoundError):
        loaded.check(BOB.address)
    # The transaction index is rebuilt, so a retry after a restart still does not duplicate.
    again = MemoryBackend(loaded).apply(ANNA, [Create(spec("k0"), transaction_id="t0")])
    assert again[0].remote_id == before[1].id
    assert sorted(p.name for p in path.parent.iterdir()) == ["calendar.json"], "temp file left behind"


def assert_identical_span(actual: Span, wanted: Span) -> None:
    assert type(actual) is type(wanted)
    if isinstance(actual, TimedSpan) and isinstance(wanted, TimedSpan):
        assert actual.timezone == wanted.timezone
        for got, want in ((actual.start, wanted.start), (actual.end, wanted.end)):
            # Equality of aware datetimes ignores fold and wall clock; check each part.
            assert got.replace(tzinfo=None) == want.replace(tzinfo=None)
            assert got.fold == want.fold
            assert got.utcoffset() == want.utcoffset()
            assert str(got.tzinfo) == str(want.tzinfo)
    else:
        assert actual == wanted


def test_the_file_is_saved_after_every_apply(tmp_path: Path) -> None:
    path = tmp_path / "calendar.json"
    backend = MemoryBackend(MemoryCalendar(BERLIN), path=path)
    remote_id = only_id(backend.apply(ANNA, [create("k")]))
    assert [e.id for e in MemoryCalendar.load(path).events(ANNA.address)] == [remote_id]

    backend.apply(ANNA, [Delete(ANNA.address, "k", remote_id, None)])
    assert MemoryCalendar.load(path).events(ANNA.address) == []


def test_loading_a_missing_file_gives_an_empty_calendar_open_to_any_mailbox(tmp_path: Path) -> None:
    calendar = MemoryCalendar.load(tmp_path / "absent.json", BERLIN)
    assert calendar.accepts_any_mailbox
    assert calendar.zone is BERLIN
    assert calendar.mailboxes() == []


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[]",
        '{"format": "something-else/9"}',
        '{"format": "memory-calendar/1", "open": true}',
        "",
    ],
)
def test_a_corrupt_file_names_the_file_and_says_it_can_be_deleted(tmp_path: Path, content: str) -> None:
    path = tmp_path / "calendar.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConnectorError) as caught:
        MemoryCalendar.load(path, BERLIN)
    assert str(path) in caught.value.message
    assert caught.value.fix is not None
    assert "delete" in caught.value.fix
    assert str(path) in caught.value.fix


@pytest.mark.parametrize(
    ("field", "value"),
    [("zone", "Mars/Olympus_Mons"), ("at", "yesterday"), ("at", "2027-03-29T09:00:00")],
)
def test_a_damaged_event_in_the_file_is_reported_as_corrupt(tmp_path: Path, field: str, value: str) -> None:
    path = tmp_path / "calendar.json"
    backend = MemoryBackend(MemoryCalendar(BERLIN), path=path)
    backend.apply(ANNA, [create("k")])
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc["mailboxes"][0]["events"][0]["span"]["start"][field] = value
    path.write_text(json.dumps(doc), encoding="utf-8")

    with pytest.raises(ConnectorError, match="corrupt"):
        MemoryCalendar.load(path, BERLIN)


def test_a_save_that_cannot_write_raises_a_connector_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    with pytest.raises(ConnectorError, match="cannot save"):
        MemoryCalendar(BERLIN).save(blocker / "calendar.json")


# -- deny and fail_ops -------------------------------------------------------------------------------


def test_deny_makes_every_call_on_that_mailbox_raise_until_allowed(
    backend: MemoryBackend, calendar: MemoryCalendar
) -> None:
    remote_id = only_id(backend.apply(ANNA, [create("k")]))
    refused = PermissionDeniedError("no access to anna@contoso.example", fix="grant the app access")
    calendar.deny(ANNA.address, refused)

    for call in (
        lambda: backend.probe(ANNA),
        lambda: backend.apply(ANNA, [create("j")]),
        lambda: backend.list_tagged(ANNA, *EVER),
        lambda: backend.find_tagged(ANNA, ["k"]),
    ):
        with pytest.raises(PermissionDeniedError) as caught:
            call()
        assert caught.value is refused
    backend.probe(BOB)  # other mailboxes are unaffected
    assert [e.id for e in calendar.events(ANNA.address)] == [remote_id]  # the hooks still see everything

    calendar.allow(ANNA.address)
    backend.probe(ANNA)
    assert len(backend.list_tagged(ANNA, *EVER)) == 1


def test_fail_ops_fails_chosen_ops_alone_and_they_are_not_written(
    backend: MemoryBackend, calendar: MemoryCalendar
) -> None:
    def rule(op: Op) -> ConnectorError | None:
        if op.source_key == "bad":
            return BadDataError("subject too long", field="subject")
        if op.source_key == "busy":
            return ThrottledError("slow down", retry_after=2.0)
        return None

    calendar.fail_ops(rule)
    outcomes = backend.apply(ANNA, [create("ok-1"), create("bad"), create("busy"), create("ok-2")])

    assert [o.ok for o in outcomes] == [True, False, False, True]
    assert isinstance(outcomes[1].error, BadDataError)
    assert isinstance(outcomes[2].error, ThrottledError)
    assert outcomes[2].error.retry_after == 2.0
    assert sorted(e.tag or "" for e in calendar.events(ANNA.address)) == ["ok-1", "ok-2"]
    assert calendar.writes(ANNA.address) == 2

    calendar.fail_ops(None)
    assert backend.apply(ANNA, [create("bad")])[0].ok


def test_a_mailbox_wide_error_from_fail_ops_is_raised_mid_batch(tmp_path: Path) -> None:
    # Like a token expiring mid-batch: the first op happened, but its outcome never reaches the caller.
    path = tmp_path / "calendar.json"
    calendar = MemoryCalendar(BERLIN)
    backend = MemoryBackend(calendar, path=path)
    calendar.fail_ops(lambda op: AuthError("token expired") if op.source_key == "second" else None)

    with pytest.raises(AuthError):
        backend.apply(ANNA, [create("first"), create("second"), create("third")])

    assert [e.tag for e in calendar.events(ANNA.address)] == ["first"]
    assert [e.tag for e in MemoryCalendar.load(path).events(ANNA.address)] == ["first"]


# -- the write counter -------------------------------------------------------------------------------


def test_writes_count_successful_ops_only(backend: MemoryBackend, calendar: MemoryCalendar) -> None:
    assert calendar.writes(ANNA.address) == 0
    remote_id = only_id(backend.apply(ANNA, [create("k")]))
    backend.apply(ANNA, [Update(spec("k", subject="new"), remote_id, None)])
    backend.list_tagged(ANNA, *EVER)
    backend.find_tagged(ANNA, ["k"])
    backend.probe(ANNA)
    foreign = calendar.add_foreign_event(ANNA.address, "Lunch", spec("x").span)
    calendar.outlook_edit(ANNA.address, remote_id, subject="by hand")
    assert calendar.writes(ANNA.address) == 2

    failed = backend.apply(ANNA, [Update(spec("x"), foreign, None), Delete(ANNA.address, "x", "nope", None)])
    assert all(isinstance(o.error, EventNotFoundError) for o in failed)
    assert calendar.writes(ANNA.address) == 2

    backend.apply(ANNA, [Delete(ANNA.address, "k", remote_id, None)])
    assert calendar.writes(ANNA.address) == 3
    assert calendar.writes(BOB.address) == 0
    assert calendar.writes("nobody@contoso.example") == 0


# -- mailboxes ---------------------------------------------------------------------------------------


def test_addresses_compare_case_insensitively() -> None:
    calendar = MemoryCalendar(BERLIN, mailboxes=["Anna@Contoso.Example"])
    backend = MemoryBackend(calendar)
    shouting = Target("ANNA@CONTOSO.EXAMPLE", "anna")

    backend.probe(shouting)
    remote_id = only_id(backend.apply(shouting, [create("k")]))

    assert [e.id for e in calendar.events("anna@contoso.example")] == [remote_id]
    assert [e.remote_id for e in backend.find_tagged(ANNA, ["k"])] == [remote_id]
    assert calendar.writes("aNNa@contoso.example") == 1
    assert calendar.mailboxes() == ["Anna@Contoso.Example"]


def test_an_open_calendar_creates_mailboxes_on_first_use_case_insensitively() -> None:
    calendar = MemoryCalendar()
    backend = MemoryBackend(calendar)
    backend.apply(Target("Bob@Example.org", "bob"), [create("k")])
    backend.probe(Target("someone-new@example.org", "new"))

    assert len(backend.list_tagged(Target("bob@example.org", "bob"), *EVER)) == 1
    assert calendar.events("never-seen@example.org") == []
    assert len(calendar.mailboxes()) == 2


def test_an_unknown_mailbox_names_the_address_and_the_targets_list(backend: MemoryBackend) -> None:
    with pytest.raises(MailboxNotFoundError) as caught:
        backend.probe(Target("typo@contoso.example", "typo"))
    assert "typo@contoso.example" in str(caught.value)
    assert "targets list" in str(caught.value)


# -- batches, untagged events, hooks -----------------------------------------------------------------


def test_more_ops_than_max_batch_is_refused_before_any_write(calendar: MemoryCalendar) -> None:
    backend = MemoryBackend(calendar, max_batch=2)
    with pytest.raises(ValueError, match="at most 2"):
        backend.apply(ANNA, [create("a"), create("b"), create("c")])
    assert calendar.events(ANNA.address) == []
    with pytest.raises(ValueError, match="max_batch"):
        MemoryBackend(calendar, max_batch=0)


def test_an_untagged_event_is_reported_as_not_ours_and_left_untouched(
    backend: MemoryBackend, calendar: MemoryCalendar
) -> None:
    foreign = calendar.add_foreign_event(ANNA.address, "Dentist", spec("x").span)
    before = calendar.events(ANNA.address)

    (outcome,) = backend.apply(ANNA, [Delete(ANNA.address, "x", foreign, None)])

    assert isinstance(outcome.error, EventNotFoundError)
    assert "untouched" in str(outcome.error)
    assert calendar.events(ANNA.address) == before


def test_an_all_day_event_must_cover_a_day(backend: MemoryBackend) -> None:
    empty = spec("k", span=AllDaySpan(date(2027, 1, 1), date(2027, 1, 1)))
    (outcome,) = backend.apply(ANNA, [Create(empty, transaction_id="t")])
    assert isinstance(outcome.error, BadDataError)
    assert outcome.error.field == "end"


def test_outlook_edit_keeps_tag_and_hash_and_refuses_hidden_fields(
    backend: MemoryBackend, calendar: MemoryCalendar
) -> None:
    remote_id = only_id(backend.apply(ANNA, [create("k")]))
    (before,) = calendar.events(ANNA.address)

    edited = calendar.outlook_edit(ANNA.address, remote_id, subject="moved", reminder_minutes=5)

    assert (edited.subject, edited.reminder_minutes) == ("moved", 5)
    assert (edited.tag, edited.content_hash, edited.id) == (before.tag, before.content_hash, before.id)
    assert edited.change_key != before.change_key
    with pytest.raises(ValueError, match="tag"):
        calendar.outlook_edit(ANNA.address, remote_id, tag="stolen")
    with pytest.raises(KeyError):
        calendar.outlook_edit(ANNA.address, "no-such-id", subject="x")
    with pytest.raises(KeyError):
        calendar.outlook_delete(ANNA.address, "no-such-id")


def test_timestamps_come_from_the_clock() -> None:
    ticks = iter([datetime(2027, 1, 1, 8, tzinfo=UTC), datetime(2027, 1, 2, 8, tzinfo=UTC)])
    calendar = MemoryCalendar(BERLIN, clock=lambda: next(ticks))
    backend = MemoryBackend(calendar)
    remote_id = only_id(backend.apply(ANNA, [create("k")]))
    backend.apply(ANNA, [Update(spec("k", subject="later"), remote_id, None)])

    (event,) = calendar.events(ANNA.address)
    assert event.created_at == datetime(2027, 1, 1, 8, tzinfo=UTC)
    assert event.modified_at - event.created_at == timedelta(days=1)


def test_list_tagged_wants_aware_datetimes(backend: MemoryBackend) -> None:
    with pytest.raises(ValueError, match="aware"):
        backend.list_tagged(ANNA, datetime(2027, 1, 1), datetime(2027, 2, 1))


# -- threads -----------------------------------------------------------------------------------------


def test_concurrent_applies_lose_no_event(tmp_path: Path) -> None:
    path = tmp_path / "calendar.json"
    calendar = MemoryCalendar(BERLIN)
    backend = MemoryBackend(calendar, path=path, max_batch=10)
    targets = [ANNA, BOB]
    threads_per_target, batches, batch_size = 4, 10, 10
    errors: list[BaseException] = []
    start = threading.Barrier(threads_per_target * len(targets) + 1)

    def worker(target: Target, worker_no: int) -> None:
        try:
            start.wait()
            for batch in range(batches):
                ops: list[Op] = [
                    create(f"{target.owner_key}-{worker_no}-{batch}-{i}", mailbox=target.address)
                    for i in range(batch_size)
                ]
                outcomes = backend.apply(target, ops)
                assert all(o.ok for o in outcomes)
                backend.list_tagged(target, *EVER)
        except BaseException as exc:  # collected: an exception in a thread would otherwise vanish
            errors.append(exc)

    threads = [
        threading.Thread(target=worker, args=(target, n))
        for target in targets
        for n in range(threads_per_target)
    ]
    for thread in threads:
        thread.start()
    start.wait()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    per_target = threads_per_target * batches * batch_size
    for target in targets:
        events: list[StoredEvent] = calendar.events(target.address)
        assert len(events) == per_target
        assert len({e.id for e in events}) == per_target
        assert len({e.tag for e in events}) == per_target
        assert calendar.writes(target.address) == per_target
        assert len(MemoryCalendar.load(path).events(target.address)) == per_target
