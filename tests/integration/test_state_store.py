"""The sqlmodel StateStore against SQLite and PostgreSQL: every test runs on both (see conftest)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from adapters.state import SqlStateStore
from connector.models import StoredMapping
from connector.state import (
    Counts,
    MailboxResult,
    MailboxStatus,
    QuarantineEntry,
    RunStatus,
    StateStore,
    SyncMode,
)

T0 = datetime(2026, 3, 29, 8, 0, tzinfo=UTC)
UNICODE = "å ä ö ß ł 日本 😀"


def mapping(
    source_key: str = "k1", *, mailbox: str = "anna@example.com", remote_id: str | None = "AAMk-1"
) -> StoredMapping:
    return StoredMapping(
        mailbox=mailbox,
        source_key=source_key,
        remote_id=remote_id,
        change_key=None if remote_id is None else "CK-1",
        content_hash="hash-1",
        start_utc=T0,
        end_utc=T0 + timedelta(hours=1),
        transaction_id="tx-1",
        last_pushed=None if remote_id is None else T0 - timedelta(minutes=5),
    )


def result(
    mailbox: str,
    status: MailboxStatus = MailboxStatus.OK,
    *,
    counts: Counts | None = None,
    finished_at: datetime = T0,
    error_code: str | None = None,
    error: str | None = None,
) -> MailboxResult:
    return MailboxResult(
        mailbox=mailbox,
        status=status,
        counts=counts or Counts(),
        started_at=finished_at - timedelta(seconds=30),
        finished_at=finished_at,
        error_code=error_code,
        error=error,
        op_errors=(("k9", "end before start"),) if status is MailboxStatus.OK else (),
    )


def start(store: SqlStateStore, total: int = 2) -> int:
    return store.start_run(trigger="cli", mode=SyncMode.FAST, forced=False, mailboxes_total=total)


def test_the_store_implements_the_port(store: SqlStateStore) -> None:
    port: StateStore = store  # mypy checks every method's signature against the Protocol here
    assert port.recent_runs() == []
    assert port.health() == []
    assert port.quarantine() == []


# -- mappings -------------------------------------------------------------------------------------


def test_saved_mappings_read_back_field_for_field(store: SqlStateStore) -> None:
    saved = [mapping("k1"), mapping("k2", remote_id=None)]

    store.save_mappings(saved)

    assert store.mappings("anna@example.com") == {"k1": saved[0], "k2": saved[1]}


def test_intent_is_replaced_by_the_mapping_of_the_created_event(store: SqlStateStore) -> None:
    intent = mapping("k1", remote_id=None)
    store.save_mappings([intent])
    assert store.mappings("anna@example.com")["k1"].is_intent

    created = mapping("k1", remote_id="AAMk-created")
    store.save_mappings([created])

    assert store.mappings("anna@example.com") == {"k1": created}


def test_save_mappings_upserts_every_field(store: SqlStateStore) -> None:
    store.save_mappings([mapping("k1"), mapping("k2")])
    changed = dataclasses.replace(
        mapping("k1"),
        change_key="CK-2",
        content_hash="hash-2",
        start_utc=T0 + timedelta(days=1),
        end_utc=T0 + timedelta(days=1, hours=2),
        transaction_id=None,
        last_pushed=T0,
    )

    store.save_mappings([changed, mapping("k3")])

    assert store.mappings("anna@example.com") == {"k1": changed, "k2": mapping("k2"), "k3": mapping("k3")}


def test_a_key_given_twice_in_one_call_keeps_the_last(store: SqlStateStore) -> None:
    last = dataclasses.replace(mapping("k1"), content_hash="second")

    store.save_mappings([mapping("k1"), last])

    assert store.mappings("anna@example.com") == {"k1": last}


def test_delete_mappings_removes_only_the_named_keys_of_that_mailbox(store: SqlStateStore) -> None:
    other = mapping("k1", mailbox="room-1@example.com")
    store.save_mappings([mapping("k1"), mapping("k2"), mapping("k3"), other])

    store.delete_mappings("anna@example.com", ["k1", "k3", "never-there"])

    assert set(store.mappings("anna@example.com")) == {"k2"}
    assert store.mappings("room-1@example.com") == {"k1": other}


def test_mappings_returns_only_that_mailboxs_rows(store: SqlStateStore) -> None:
    store.save_mappings([mapping("k1"), mapping("k2", mailbox="bo@example.com")])

    assert set(store.mappings("anna@example.com")) == {"k1"}
    assert set(store.mappings("bo@example.com")) == {"k2"}
    assert store.mappings("nobody@example.com") == {}


# -- runs -----------------------------------------------------------------------------------------


def test_run_lifecycle_sums_the_mailbox_results(store: SqlStateStore) -> None:
    run_id = start(store)
    running = store.run(run_id)
    assert running is not None
    assert (running.status, running.mailboxes_done, running.finished_at) == (RunStatus.RUNNING, 0, None)
    assert running.mode is SyncMode.FAST
    assert running.counts == Counts()

    first = result("anna@example.com", counts=Counts(created=3, unchanged=5, quarantined=1))
    second = result(
        "bo@example.com",
        MailboxStatus.FAILED,
        counts=Counts(updated=1, failed=2),
        finished_at=T0 + timedelta(seconds=1),
        error_code="permission",
        error="no delegate rights",
    )
    store.record_mailbox_result(run_id, first)
    store.record_mailbox_result(run_id, second)
    midway = store.run(run_id)
    assert midway is not None
    assert midway.mailboxes_done == 2
    assert midway.counts == Counts(created=3, updated=1, unchanged=5, failed=2, quarantined=1)

    finished = store.finish_run(run_id, status=RunStatus.PARTIAL, error="1 mailbox failed")

    assert finished.status is RunStatus.PARTIAL
    assert finished.error == "1 mailbox failed"
    assert finished.finished_at is not None
    assert finished.finished_at >= finished.started_at
    assert finished.counts == first.counts + second.counts
    assert finished.results == (first, second)
    assert store.run(run_id) == finished


def test_a_redelivered_result_replaces_the_first_instead_of_counting_twice(store: SqlStateStore) -> None:
    run_id = start(store)
    store.record_mailbox_result(run_id, result("anna@example.com", counts=Counts(created=2)))

    retry = result("anna@example.com", counts=Counts(unchanged=2), finished_at=T0 + timedelta(minutes=1))
    store.record_mailbox_result(run_id, retry)

    record = store.run(run_id)
    assert record is not None
    assert record.mailboxes_done == 1
    assert record.counts == Counts(unchanged=2)
    assert record.results == (retry,)


def test_results_for_an_unknown_run_are_refused(store: SqlStateStore) -> None:
    with pytest.raises(ValueError, match="no run with id 4711"):
        store.record_mailbox_result(4711, result("anna@example.com"))
    with pytest.raises(ValueError, match="no run with id 4711"):
        store.finish_run(4711, status=RunStatus.FAILED)
    assert store.health() == []
    assert store.run(4711) is None


def test_recent_runs_are_newest_first_and_limited(store: SqlStateStore) -> None:
    ids = [start(store) for _ in range(4)]
    store.finish_run(ids[1], status=RunStatus.SUCCEEDED)

    recent = store.recent_runs(limit=3)

    assert [r.id for r in recent] == [ids[3], ids[2], ids[1]]
    assert recent[2].status is RunStatus.SUCCEEDED
    assert [r.id for r in store.recent_runs()] == list(reversed(ids))


def test_run_keeps_trigger_mode_and_forced(store: SqlStateStore) -> None:
    run_id = store.start_run(trigger="nightly", mode=SyncMode.VERIFY, forced=True, mailboxes_total=7)

    record = store.run(run_id)

    assert record is not None
    assert (record.trigger, record.mode, record.forced, record.mailboxes_total) == (
        "nightly",
        SyncMode.VERIFY,
        True,
        7,
    )


# -- health ---------------------------------------------------------------------------------------


def test_health_keeps_last_success_through_a_failure_and_clears_the_error_on_recovery(
    store: SqlStateStore,
) -> None:
    run1, run2, run3 = start(store), start(store), start(store)
    store.record_mailbox_result(run1, result("anna@example.com", counts=Counts(created=1)))

    failed_at = T0 + timedelta(hours=1)
    store.record_mailbox_result(
        run2,
        result(
            "anna@example.com",
            MailboxStatus.FAILED,
            counts=Counts(failed=4),
            finished_at=failed_at,
            error_code="auth",
            error="secret expired",
        ),
    )
    [failing] = store.health()
    assert failing.status is MailboxStatus.FAILED
    assert (failing.last_run_id, failing.last_run_at, failing.last_success_at) == (run2, failed_at, T0)
    assert (failing.error_code, failing.error) == ("auth", "secret expired")
    assert failing.last_counts == Counts(failed=4)

    healed_at = T0 + timedelta(hours=2)
    store.record_mailbox_result(
        run3, result("anna@example.com", counts=Counts(updated=1), finished_at=healed_at)
    )
    [healed] = store.health()
    assert healed.status is MailboxStatus.OK
    assert (healed.last_run_id, healed.last_run_at, healed.last_success_at) == (run3, healed_at, healed_at)
    assert (healed.error_code, healed.error) == (None, None)
    assert healed.last_counts == Counts(updated=1)


def test_health_is_per_mailbox_and_a_blocked_mailbox_never_succeeded(store: SqlStateStore) -> None:
    run_id = start(store)
    store.record_mailbox_result(run_id, result("bo@example.com"))
    store.record_mailbox_result(
        run_id,
        result("anna@example.com", MailboxStatus.BLOCKED, error_code="guard", error="would delete 80%"),
    )

    anna, bo = store.health()

    assert (anna.mailbox, anna.status, anna.last_success_at, anna.error) == (
        "anna@example.com",
        MailboxStatus.BLOCKED,
        None,
        "would delete 80%",
    )
    assert (bo.mailbox, bo.status, bo.last_success_at) == ("bo@example.com", MailboxStatus.OK, T0)


def test_a_late_older_result_does_not_overwrite_newer_health(store: SqlStateStore) -> None:
    newer, older = start(store), start(store)
    store.record_mailbox_result(newer, result("anna@example.com", finished_at=T0 + timedelta(hours=1)))

    store.record_mailbox_result(
        older, result("anna@example.com", MailboxStatus.FAILED, error="stale", finished_at=T0)
    )

    [health] = store.health()
    assert (health.status, health.last_run_id, health.error) == (MailboxStatus.OK, newer, None)
    older_run = store.run(older)
    assert older_run is not None
    assert older_run.mailboxes_done == 1


# -- quarantine -----------------------------------------------------------------------------------


def entry(source_key: str, owner: str = "anna", reason: str = "end before start") -> QuarantineEntry:
    return QuarantineEntry(
        source_key=source_key, owner=owner, reason=reason, mailbox=f"{owner}@example.com", origin="a.csv:3"
    )


def by_key(entries: list[QuarantineEntry]) -> dict[tuple[str, str], QuarantineEntry]:
    return {(e.owner, e.source_key): e for e in entries}


def test_replace_quarantine_for_all_owners_keeps_first_seen_of_known_entries(store: SqlStateStore) -> None:
    store.replace_quarantine([entry("a"), entry("b", owner="bo")], owners=None)
    before = by_key(store.quarantine())

    store.replace_quarantine([entry("b", owner="bo"), entry("c")], owners=None)

    after = by_key(store.quarantine())
    assert set(after) == {("bo", "b"), ("anna", "c")}
    kept, new = after["bo", "b"], after["anna", "c"]
    assert kept.first_seen == before["bo", "b"].first_seen
    assert kept.last_seen is not None
    assert before["bo", "b"].last_seen is not None
    assert kept.last_seen > before["bo", "b"].last_seen
    assert new.first_seen == new.last_seen == kept.last_seen
    assert (new.reason, new.mailbox, new.origin) == ("end before start", "anna@example.com", "a.csv:3")


def test_a_new_reason_for_the_same_key_is_a_new_entry(store: SqlStateStore) -> None:
    store.replace_quarantine([entry("a", reason="end before start")], owners=None)
    first = store.quarantine()[0]

    store.replace_quarantine([entry("a", reason="unknown zone")], owners=None)

    [now] = store.quarantine()
    assert now.reason == "unknown zone"
    assert now.first_seen is not None
    assert first.first_seen is not None
    assert now.first_seen > first.first_seen


def test_replace_quarantine_for_some_owners_leaves_the_others_untouched(store: SqlStateStore) -> None:
    store.replace_quarantine([entry("a1"), entry("a2"), entry("b1", owner="bo")], owners=None)
    before = by_key(store.quarantine())

    store.replace_quarantine([entry("a2"), entry("a3")], owners=["anna"])

    after = by_key(store.quarantine())
    assert set(after) == {("anna", "a2"), ("anna", "a3"), ("bo", "b1")}
    assert after["bo", "b1"] == before["bo", "b1"]
    assert after["anna", "a2"].first_seen == before["anna", "a2"].first_seen


def test_replace_quarantine_for_owners_with_no_entries_clears_just_them(store: SqlStateStore) -> None:
    store.replace_quarantine([entry("a1"), entry("b1", owner="bo")], owners=None)

    store.replace_quarantine([], owners=["anna", "carl"])

    assert list(by_key(store.quarantine())) == [("bo", "b1")]


def test_an_entry_outside_the_listed_owners_is_refused(store: SqlStateStore) -> None:
    store.replace_quarantine([entry("a1")], owners=None)

    with pytest.raises(ValueError, match="bo"):
        store.replace_quarantine([entry("b1", owner="bo")], owners=["anna"])

    assert list(by_key(store.quarantine())) == [("anna", "a1")]


# -- values ---------------------------------------------------------------------------------------


def test_datetimes_come_back_as_the_same_instant_in_utc(store: SqlStateStore) -> None:
    stockholm = ZoneInfo("Europe/Stockholm")
    start_local = datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=stockholm)  # the repeated DST hour
    saved = dataclasses.replace(
        mapping(),
        start_utc=start_local,
        end_utc=start_local + timedelta(hours=1),
        last_pushed=datetime(2026, 7, 1, 12, 0, 0, 123456, tzinfo=stockholm),
    )

    store.save_mappings([saved])

    loaded = store.mappings("anna@example.com")["k1"]
    for value, original in [
        (loaded.start_utc, saved.start_utc),
        (loaded.end_utc, saved.end_utc),
        (loaded.last_pushed, saved.last_pushed),
    ]:
        assert value is not None
        assert original is not None
        assert value.tzinfo is UTC
        # Not ``value == original``: by PEP 495 an ambiguous local time never equals another zone's.
        assert value == original.astimezone(UTC)
    assert loaded.start_utc == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    assert loaded.last_pushed == datetime(2026, 7, 1, 10, 0, 0, 123456, tzinfo=UTC)


def test_run_and_health_times_are_aware_utc(store: SqlStateStore) -> None:
    run_id = start(store, total=1)
    store.record_mailbox_result(run_id, result("anna@example.com"))
    record = store.finish_run(run_id, status=RunStatus.SUCCEEDED)
    [health] = store.health()

    stamps = [record.started_at, record.finished_at, health.last_run_at, health.last_success_at]
    stamps += [record.results[0].started_at, record.results[0].finished_at]
    assert all(stamp is not None and stamp.tzinfo is UTC for stamp in stamps)


def test_a_naive_datetime_is_refused_and_nothing_is_written(store: SqlStateStore) -> None:
    naive = dataclasses.replace(mapping("k2"), start_utc=datetime(2026, 3, 29, 8, 0))

    with pytest.raises(ValueError, match="naive datetime"):
        store.save_mappings([mapping("k1"), naive])

    assert store.mappings("anna@example.com") == {}


def test_a_naive_datetime_in_a_result_is_refused(store: SqlStateStore) -> None:
    run_id = start(store)
    naive = dataclasses.replace(result("anna@example.com"), finished_at=datetime(2026, 3, 29, 8, 0))

    with pytest.raises(ValueError, match="naive datetime"):
        store.record_mailbox_result(run_id, naive)

    record = store.run(run_id)
    assert record is not None
    assert (record.mailboxes_done, record.results, store.health()) == (0, (), [])


def test_any_unicode_text_round_trips(store: SqlStateStore) -> None:
    mailbox, key = f"{UNICODE}@example.com", f"key {UNICODE}"
    saved = dataclasses.replace(
        mapping(key, mailbox=mailbox), remote_id=UNICODE, change_key=UNICODE, content_hash=UNICODE
    )
    store.save_mappings([saved])
    run_id = store.start_run(trigger=UNICODE, mode=SyncMode.FAST, forced=False, mailboxes_total=1)
    outcome = dataclasses.replace(
        result(mailbox, MailboxStatus.FAILED, error_code=UNICODE, error=UNICODE),
        op_errors=((key, UNICODE), ('"quoted" \\ [json]', "line\nbreak\ttab")),
    )
    store.record_mailbox_result(run_id, outcome)
    quarantined = QuarantineEntry(
        source_key=key, owner=UNICODE, reason=UNICODE, mailbox=mailbox, origin=UNICODE
    )
    store.replace_quarantine([quarantined], owners=None)

    assert store.mappings(mailbox) == {key: saved}
    record = store.finish_run(run_id, status=RunStatus.FAILED, error=UNICODE)
    assert (record.trigger, record.error, record.results) == (UNICODE, UNICODE, (outcome,))
    [health] = store.health()
    assert (health.mailbox, health.error_code, health.error) == (mailbox, UNICODE, UNICODE)
    [back] = store.quarantine()
    assert dataclasses.replace(back, first_seen=None, last_seen=None) == quarantined
